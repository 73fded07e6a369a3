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

/// Create and update bodies: every field optional here; a create requires
/// `name`, `price` and `stock`. Other fields are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductBody {
    pub name: Option<String>,
    pub description: Option<String>,
    /// At most two decimals, not negative.
    #[schema(value_type = Option<f64>, example = 19.99)]
    pub price: Option<Amount>,
    #[schema(value_type = Option<i64>)]
    pub stock: Option<Whole>,
    pub category: Option<String>,
    pub image_url: Option<String>,
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
    /// Up to 100 product ids.
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
#[utoipa::path(get, path = "/api/products", tag = "products",
    params(("page" = Option<u32>, Query, description = "from 1"), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("category" = Option<String>, Query), ("q" = Option<String>, Query, description = "text in name or description"),
        ("minPrice" = Option<f64>, Query), ("maxPrice" = Option<f64>, Query),
        ("sort" = Option<String>, Query, description = "price, -price, name, -name, createdAt, -createdAt (default)")),
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

#[utoipa::path(get, path = "/api/products/{id}", tag = "products", params(("id" = Uuid, Path)),
    responses((status = 200, body = Product), (status = 404, description = "PRODUCT_NOT_FOUND", body = ErrorBody)))]
pub async fn get_one(
    State(products): State<Arc<ProductService>>,
    Path(id): Path<String>,
) -> Result<Data<Product>, ApiError> {
    Ok(Data(products.get(product_id(&id)?).await?))
}

/// The products found among `ids`, in request order.
#[utoipa::path(post, path = "/api/products/batch", tag = "products", request_body = BatchBody,
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
#[utoipa::path(post, path = "/api/products", tag = "products", security(("bearer" = [])), request_body = ProductBody,
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
#[utoipa::path(put, path = "/api/products/{id}", tag = "products", security(("bearer" = [])), params(("id" = Uuid, Path)),
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
#[utoipa::path(delete, path = "/api/products/{id}", tag = "products", security(("bearer" = [])), params(("id" = Uuid, Path)),
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
