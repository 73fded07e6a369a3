//! The products service's routes (`/api/products*`), their JSON shapes, and
//! the mapping of the service's errors to the contract's codes. Writes take an
//! `Admin`: the role is checked before anything else of the request.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ProductService;
use super::domain::{Product, ProductFields, ProductQuery};
use super::service::ProductError;
use crate::contracts::service_api::{MAX_BATCH, PRODUCTS_BATCH_PATH};
use crate::http::caller::Admin;
use crate::http::error::ErrorBody;
use crate::http::json::{Amount, Whole};
use crate::http::{ApiError, Created, Data, JsonBody, Listing, Meta};
use crate::kernel::validation::FieldError;

impl From<ProductError> for ApiError {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::Validation(d) => ApiError::Validation(d),
            ProductError::NotFound => ApiError::refused(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND", "No such product"),
            ProductError::Conflict => {
                ApiError::refused(StatusCode::CONFLICT, "CONFLICT", "The resource changed meanwhile; try again")
            }
            ProductError::Port(p) => p.into(),
        }
    }
}

pub fn router(service: Arc<ProductService>) -> Router {
    Router::new()
        .route("/api/products", get(list).post(create))
        .route(PRODUCTS_BATCH_PATH, post(batch))
        .route("/api/products/{id}", get(get_one).put(update).delete(delete))
        .with_state(service)
}

/// Create and update bodies: any subset of the fields (an update must change
/// one at least); a create requires `name`, `price` and `stock`. Other fields
/// are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductBody {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// At most two decimals, not negative.
    #[schema(value_type = Option<f64>, example = 19.99, minimum = 0, maximum = 1000000000, multiple_of = 0.01)]
    pub price: Option<Amount>,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1000000000)]
    pub stock: Option<Whole>,
    /// Default `general`.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub category: Option<String>,
    /// An http(s) URL or an absolute path.
    #[schema(min_length = 1, max_length = 2048, pattern = r"^(https?://|/)\S*$")]
    pub image_url: Option<String>,
}

/// A product to create: `name`, `price` and `stock` required (the document's
/// view of `ProductBody` for a create).
#[derive(utoipa::ToSchema)]
#[schema(as = NewProduct)]
#[allow(dead_code)]
pub struct NewProduct {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[schema(max_length = 5000)]
    description: Option<String>,
    #[schema(value_type = f64, example = 19.99, minimum = 0, maximum = 1000000000, multiple_of = 0.01)]
    price: Amount,
    #[schema(value_type = i64, minimum = 0, maximum = 1000000000)]
    stock: Whole,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    category: Option<String>,
    #[schema(min_length = 1, max_length = 2048, pattern = r"^(https?://|/)\S*$")]
    #[schema(rename = "imageUrl")]
    image_url: Option<String>,
}

/// The orders of a listing.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum SortParam {
    #[schema(rename = "price")]
    Price,
    #[schema(rename = "-price")]
    PriceDesc,
    #[schema(rename = "name")]
    Name,
    #[schema(rename = "-name")]
    NameDesc,
    #[schema(rename = "createdAt")]
    CreatedAt,
    #[schema(rename = "-createdAt")]
    CreatedAtDesc,
}

impl From<ProductBody> for ProductFields {
    fn from(b: ProductBody) -> Self {
        ProductFields {
            name: b.name,
            description: b.description,
            price: b.price.map(|a| a.0),
            stock: b.stock.map(|w| w.0),
            category: b.category,
            image_url: b.image_url,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BatchBody {
    /// Up to 100 product ids; ids of no product are left out of the answer.
    #[schema(required = true, max_items = 100)]
    pub ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub id: Uuid,
    pub deleted: bool,
}

/// An id that is not a UUID names no product.
fn product_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ProductError::NotFound.into())
}

/// Browse the catalogue.
#[utoipa::path(get, path = "/api/products", tag = "products", operation_id = "listProducts",
    params(("page" = Option<u32>, Query, minimum = 1, maximum = 1000000, description = "from 1"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
        ("category" = Option<String>, Query, description = "exact match, any case"), ("q" = Option<String>, Query, description = "text in name or description"),
        ("minPrice" = Option<f64>, Query, minimum = 0, maximum = 1000000000, multiple_of = 0.01),
        ("maxPrice" = Option<f64>, Query, minimum = 0, maximum = 1000000000, multiple_of = 0.01, description = "not below minPrice"),
        ("sort" = Option<SortParam>, Query, description = "default -createdAt")),
    responses((status = 200, description = "products and `meta`", body = Vec<Product>), (status = 400, description = "VALIDATION", body = ErrorBody)))]
pub async fn list(
    State(products): State<Arc<ProductService>>,
    RawQuery(raw): RawQuery,
) -> Result<Listing<Product>, ApiError> {
    let params: HashMap<String, String> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).map_err(|_| {
            ApiError::Validation(vec![FieldError {
                field: "query".into(),
                message: "is not a valid query string".into(),
            }])
        })?;
    let query = ProductQuery::parse(&params).map_err(ApiError::Validation)?;
    let page = products.list(&query).await?;
    Ok(Listing { items: page.items, meta: Meta::new(query.page, query.limit, page.total) })
}

#[utoipa::path(get, path = "/api/products/{id}", tag = "products", operation_id = "getProduct", params(("id" = Uuid, Path)),
    responses((status = 200, body = Product), (status = 404, description = "PRODUCT_NOT_FOUND", body = ErrorBody)))]
pub async fn get_one(
    State(products): State<Arc<ProductService>>,
    Path(id): Path<String>,
) -> Result<Data<Product>, ApiError> {
    Ok(Data(products.get(product_id(&id)?).await?))
}

/// The products found among `ids`, in request order.
#[utoipa::path(post, path = "/api/products/batch", tag = "products", operation_id = "productsBatch", request_body = BatchBody,
    responses((status = 200, body = Vec<Product>), (status = 400, description = "VALIDATION", body = ErrorBody)))]
pub async fn batch(
    State(products): State<Arc<ProductService>>,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Data<Vec<Product>>, ApiError> {
    let ids = body
        .ids
        .ok_or_else(|| ApiError::Validation(vec![FieldError { field: "ids".into(), message: "is required".into() }]))?;
    if ids.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![FieldError {
            field: "ids".into(),
            message: format!("must hold at most {MAX_BATCH} ids"),
        }]));
    }
    // An id that is not a UUID names no product: it is simply not found.
    let ids: Vec<Uuid> = ids.iter().filter_map(|s| Uuid::parse_str(s.trim()).ok()).collect();
    Ok(Data(products.batch(&ids).await?))
}

/// Admin only.
#[utoipa::path(post, path = "/api/products", tag = "products", operation_id = "createProduct", security(("bearer" = [])),
    request_body = NewProduct,
    responses((status = 201, body = Product), (status = 400, description = "VALIDATION", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody), (status = 403, description = "FORBIDDEN", body = ErrorBody)))]
pub async fn create(
    State(products): State<Arc<ProductService>>,
    _: Admin,
    JsonBody(body): JsonBody<ProductBody>,
) -> Result<Created<Product>, ApiError> {
    Ok(Created(products.create(body.into()).await?))
}

/// Admin only; any subset of the create fields; the version goes up by one.
#[utoipa::path(put, path = "/api/products/{id}", tag = "products", operation_id = "updateProduct", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = ProductBody,
    responses((status = 200, body = Product), (status = 400, description = "VALIDATION", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody), (status = 404, description = "PRODUCT_NOT_FOUND", body = ErrorBody)))]
pub async fn update(
    State(products): State<Arc<ProductService>>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ProductBody>,
) -> Result<Data<Product>, ApiError> {
    Ok(Data(products.update(product_id(&id)?, body.into()).await?))
}

/// Admin only.
#[utoipa::path(delete, path = "/api/products/{id}", tag = "products", operation_id = "deleteProduct", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Deleted), (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "PRODUCT_NOT_FOUND", body = ErrorBody)))]
pub async fn delete(
    State(products): State<Arc<ProductService>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Data<Deleted>, ApiError> {
    let id = product_id(&id)?;
    products.delete(id).await?;
    Ok(Data(Deleted { id, deleted: true }))
}
