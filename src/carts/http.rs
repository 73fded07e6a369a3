//! The carts service's routes (`/api/cart*`), their JSON shapes, and the
//! mapping of the service's errors to the contract's codes.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::Deserialize;
use uuid::Uuid;

use super::CartService;
use super::domain::CartView;
use super::service::{CartError, quantity};
use crate::http::caller::Caller;
use crate::http::error::ErrorBody;
use crate::http::json::Whole;
use crate::http::{ApiError, Data, JsonBody};
use crate::kernel::validation::FieldError;

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::Validation(d) => ApiError::Validation(d),
            CartError::ProductNotFound => {
                ApiError::refused(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND", "No such product")
            }
            CartError::ItemNotFound => {
                ApiError::refused(StatusCode::NOT_FOUND, "CART_ITEM_NOT_FOUND", "This product is not in the cart")
            }
            CartError::InsufficientStock { available } => ApiError::refused(
                StatusCode::CONFLICT,
                "INSUFFICIENT_STOCK",
                format!("Not enough stock: {available} available"),
            ),
            CartError::Port(p) => p.into(),
        }
    }
}

pub fn router(service: Arc<CartService>) -> Router {
    Router::new()
        .route("/api/cart", get(view).delete(clear))
        .route("/api/cart/add", post(add))
        .route("/api/cart/items/{product_id}", put(set_quantity).delete(remove))
        .with_state(service)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddBody {
    #[schema(required = true, format = Uuid)]
    pub product_id: Option<String>,
    /// 1 to 999, default 1.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 999, default = 1)]
    pub quantity: Option<Whole>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct QuantityBody {
    /// 0 to 999; 0 removes the line.
    #[schema(value_type = Option<i64>, required = true, minimum = 0, maximum = 999)]
    pub quantity: Option<Whole>,
}

fn line_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| CartError::ItemNotFound.into())
}

#[utoipa::path(get, path = "/api/cart", tag = "cart", operation_id = "viewCart", security(("bearer" = [])),
    responses((status = 200, body = CartView), (status = 401, description = "UNAUTHORIZED", body = ErrorBody)))]
pub async fn view(State(carts): State<Arc<CartService>>, caller: Caller) -> Result<Data<CartView>, ApiError> {
    Ok(Data(carts.view(caller.user_id).await?))
}

/// Add a product; quantities of the same product add up.
#[utoipa::path(post, path = "/api/cart/add", tag = "cart", operation_id = "addToCart", security(("bearer" = [])), request_body = AddBody,
    responses((status = 200, body = CartView), (status = 400, description = "VALIDATION", body = ErrorBody),
        (status = 404, description = "PRODUCT_NOT_FOUND", body = ErrorBody), (status = 409, description = "INSUFFICIENT_STOCK", body = ErrorBody)))]
pub async fn add(
    State(carts): State<Arc<CartService>>,
    caller: Caller,
    JsonBody(body): JsonBody<AddBody>,
) -> Result<Data<CartView>, ApiError> {
    let qty = quantity(body.quantity.map(|w| w.0), Some(1), false);
    let Some(raw_id) = body.product_id else {
        let mut details = vec![FieldError { field: "productId".into(), message: "is required".into() }];
        if let Err(CartError::Validation(d)) = qty {
            details.extend(d);
        }
        return Err(ApiError::Validation(details));
    };
    let qty = qty?;
    let product_id = Uuid::parse_str(raw_id.trim()).map_err(|_| ApiError::from(CartError::ProductNotFound))?;
    Ok(Data(carts.add(caller.user_id, product_id, qty).await?))
}

/// Set a line's quantity; 0 removes it.
#[utoipa::path(put, path = "/api/cart/items/{productId}", tag = "cart", operation_id = "setCartQuantity", security(("bearer" = [])),
    params(("productId" = Uuid, Path)), request_body = QuantityBody,
    responses((status = 200, body = CartView), (status = 400, description = "VALIDATION", body = ErrorBody),
        (status = 404, description = "CART_ITEM_NOT_FOUND", body = ErrorBody), (status = 409, description = "INSUFFICIENT_STOCK", body = ErrorBody)))]
pub async fn set_quantity(
    State(carts): State<Arc<CartService>>,
    caller: Caller,
    Path(product_id): Path<String>,
    JsonBody(body): JsonBody<QuantityBody>,
) -> Result<Data<CartView>, ApiError> {
    let qty = quantity(body.quantity.map(|w| w.0), None, true)?;
    Ok(Data(carts.set_quantity(caller.user_id, line_id(&product_id)?, qty).await?))
}

#[utoipa::path(delete, path = "/api/cart/items/{productId}", tag = "cart", operation_id = "removeFromCart", security(("bearer" = [])),
    params(("productId" = Uuid, Path)),
    responses((status = 200, body = CartView), (status = 404, description = "CART_ITEM_NOT_FOUND", body = ErrorBody)))]
pub async fn remove(
    State(carts): State<Arc<CartService>>,
    caller: Caller,
    Path(product_id): Path<String>,
) -> Result<Data<CartView>, ApiError> {
    Ok(Data(carts.remove(caller.user_id, line_id(&product_id)?).await?))
}

#[utoipa::path(delete, path = "/api/cart", tag = "cart", operation_id = "clearCart", security(("bearer" = [])),
    responses((status = 200, body = CartView)))]
pub async fn clear(State(carts): State<Arc<CartService>>, caller: Caller) -> Result<Data<CartView>, ApiError> {
    Ok(Data(carts.clear(caller.user_id).await?))
}
