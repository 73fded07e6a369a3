//! The one place where failures become HTTP: every error any route can give is
//! an `ApiError`, rendered as
//! `{"success": false, "code", "message", "details"?}`. Internal detail is logged,
//! never sent.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::carts::service::CartError;
use crate::ports::PortError;
use crate::products::service::ProductError;
use crate::users::service::UserError;
use crate::validation::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("authentication required")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("email taken")]
    EmailTaken,
    #[error("product not found")]
    ProductNotFound,
    #[error("cart item not found")]
    CartItemNotFound,
    #[error("insufficient stock: {available} available")]
    InsufficientStock { available: u32 },
    #[error("conflict")]
    Conflict,
    #[error("route not found")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    #[error("{0}")]
    Unavailable(String),
    #[error("upstream timeout")]
    UpstreamTimeout,
    #[error("not ready: {0}")]
    NotReady(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Always false.
    pub success: bool,
    /// Stable machine-readable code, e.g. `VALIDATION`.
    pub code: &'static str,
    pub message: String,
    /// Only for `VALIDATION`: one entry per offending field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
}

impl ApiError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            Validation(_) => (StatusCode::BAD_REQUEST, "VALIDATION"),
            MalformedJson(_) => (StatusCode::BAD_REQUEST, "MALFORMED_JSON"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Forbidden => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            InvalidCredentials => (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS"),
            EmailTaken => (StatusCode::CONFLICT, "EMAIL_TAKEN"),
            ProductNotFound => (StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND"),
            CartItemNotFound => (StatusCode::NOT_FOUND, "CART_ITEM_NOT_FOUND"),
            InsufficientStock { .. } => (StatusCode::CONFLICT, "INSUFFICIENT_STOCK"),
            Conflict => (StatusCode::CONFLICT, "CONFLICT"),
            RouteNotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT"),
            NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "NOT_READY"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }

    fn message(&self) -> String {
        use ApiError::*;
        match self {
            Validation(_) => "The request is invalid; see details".into(),
            MalformedJson(why) => format!("The request body is not valid JSON: {why}"),
            UnsupportedMediaType => "The request body must be JSON (Content-Type: application/json)".into(),
            PayloadTooLarge => "The request body is larger than 1 MiB".into(),
            Unauthorized => "A valid bearer token is required".into(),
            Forbidden => "You are not allowed to do this".into(),
            InvalidCredentials => "Email or password is wrong".into(),
            EmailTaken => "An account with this email already exists".into(),
            ProductNotFound => "No such product".into(),
            CartItemNotFound => "This product is not in the cart".into(),
            InsufficientStock { available } => format!("Not enough stock: {available} available"),
            Conflict => "The resource changed meanwhile; try again".into(),
            RouteNotFound => "No such route".into(),
            MethodNotAllowed => "This method is not allowed on this route".into(),
            RateLimited { retry_after } => format!("Too many requests; retry in {} s", ceil_secs(*retry_after)),
            Unavailable(_) => "A service this request needs is temporarily unavailable; try again shortly".into(),
            UpstreamTimeout => "A service this request needs did not answer in time".into(),
            NotReady(what) => format!("Not ready: {what}"),
            Internal(_) => "Something went wrong on our side".into(),
        }
    }
}

pub fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            ApiError::Unavailable(why) => tracing::warn!(%why, "dependency unavailable"),
            _ => tracing::debug!(code, "request refused"),
        }
        let details = match &self {
            ApiError::Validation(d) => Some(d.clone()),
            _ => None,
        };
        let body = ErrorBody { success: false, code, message: self.message(), details };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::RateLimited { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&ceil_secs(retry_after).max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Unavailable { .. } => ApiError::Unavailable(e.to_string()),
            PortError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Validation(d) => ApiError::Validation(d),
            UserError::EmailTaken => ApiError::EmailTaken,
            UserError::InvalidCredentials => ApiError::InvalidCredentials,
            UserError::InvalidToken => ApiError::Unauthorized,
            UserError::Port(p) => p.into(),
            UserError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<ProductError> for ApiError {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::Validation(d) => ApiError::Validation(d),
            ProductError::NotFound => ApiError::ProductNotFound,
            ProductError::Forbidden => ApiError::Forbidden,
            ProductError::Conflict => ApiError::Conflict,
            ProductError::Port(p) => p.into(),
        }
    }
}

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::Validation(d) => ApiError::Validation(d),
            CartError::ProductNotFound => ApiError::ProductNotFound,
            CartError::ItemNotFound => ApiError::CartItemNotFound,
            CartError::InsufficientStock { available } => ApiError::InsufficientStock { available },
            CartError::Port(p) => p.into(),
        }
    }
}
