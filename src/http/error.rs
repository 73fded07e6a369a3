//! The error every route answers with, in the one shape of the contract:
//! `{"success": false, "code", "message", "details"?}`. This module knows the
//! failures common to all services (bad input, auth, limits, dependencies);
//! a service's own refusals (`EMAIL_TAKEN`, `PRODUCT_NOT_FOUND`…) are mapped
//! to a `Refusal` by that service, at its edge. Internal detail is logged, never sent.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::kernel::validation::FieldError;
use crate::ports::PortError;

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
    #[error("request timeout")]
    RequestTimeout,
    #[error("not ready: {0}")]
    NotReady(String),
    /// A refusal a service defines for itself.
    #[error("{}: {}", .0.code, .0.message)]
    Refused(Refusal),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A service's own outcome that is not a success: its status, stable code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Refused(Refusal { status, code, message: message.into() })
    }

    /// The error for a bare status that some lower layer (the router, a body
    /// limit, a timeout) produced without our shape.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => ApiError::RouteNotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN => ApiError::Forbidden,
            StatusCode::GATEWAY_TIMEOUT => ApiError::UpstreamTimeout,
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(String::new()),
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited { retry_after: Duration::from_secs(1) },
            s if s.is_server_error() => ApiError::Internal(anyhow::anyhow!("a lower layer answered {s}")),
            s => ApiError::refused(s, "BAD_REQUEST", "The request could not be understood"),
        }
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            Validation(_) => (StatusCode::BAD_REQUEST, "VALIDATION"),
            MalformedJson(_) => (StatusCode::BAD_REQUEST, "MALFORMED_JSON"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Forbidden => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            RouteNotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT"),
            RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT"),
            NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "NOT_READY"),
            Refused(r) => (r.status, r.code),
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
            RouteNotFound => "No such route".into(),
            MethodNotAllowed => "This method is not allowed on this route".into(),
            RateLimited { retry_after } => format!("Too many requests; retry in {} s", ceil_secs(*retry_after)),
            Unavailable(_) => "A service this request needs is temporarily unavailable; try again shortly".into(),
            UpstreamTimeout => "A service this request needs did not answer in time".into(),
            RequestTimeout => "The request took too long".into(),
            NotReady(what) => format!("Not ready: {what}"),
            Refused(r) => r.message.clone(),
            Internal(_) => "Something went wrong on our side".into(),
        }
    }
}

/// The error shape, as documented in the OpenAPI document.
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

impl From<super::body::BodyError> for ApiError {
    fn from(e: super::body::BodyError) -> Self {
        match e {
            super::body::BodyError::TooLarge => ApiError::PayloadTooLarge,
            super::body::BodyError::Unreadable => ApiError::MalformedJson("the body could not be read".into()),
        }
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
