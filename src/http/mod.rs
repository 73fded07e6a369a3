//! HTTP plumbing shared by the gateway and the services: the JSON envelope and
//! error shape, the body extractor, identity headers, health routes, and the
//! `Upstream` through which one service calls another.

pub mod envelope;
pub mod error;
pub mod health;
pub mod identity;
pub mod json;
pub mod panic;
pub mod upstream;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use envelope::{Created, Data, Listing, Meta};
pub use error::ApiError;
pub use json::JsonBody;

/// Largest request body any route accepts.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub const USER_ID_HEADER: &str = "x-user-id";
pub const USER_ROLE_HEADER: &str = "x-user-role";
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What every service router gets: JSON 404/405, the body limit, and a JSON
/// 500 for a handler that panics.
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(panic::catch_panic))
}
