//! HTTP plumbing shared by the gateway and the services; it knows no service.
//! The JSON envelope and error shape, the body extractor, the caller's
//! identity, health routes, the standard middleware, and the `Upstream`
//! through which one service calls another.

pub mod body;
pub mod caller;
pub mod envelope;
pub mod error;
pub mod health;
pub mod json;
pub mod middleware;
pub mod trust;
pub mod upstream;

use axum::Router;

pub use envelope::{Created, Data, Listing, Meta};
pub use error::ApiError;
pub use json::JsonBody;
pub use middleware::{Edge, Listener};

/// Largest request body any route accepts.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub const USER_ID_HEADER: &str = "x-user-id";
pub const USER_ROLE_HEADER: &str = "x-user-role";
pub use crate::telemetry::trace::REQUEST_ID_HEADER;

/// A service's router as it is served: JSON 404/405, identity trusted only
/// with the gateway's proof, and the standard middleware.
pub fn service(router: Router, key: trust::InternalKey, listener: Listener) -> Router {
    let router = router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(key, trust::require_proof));
    middleware::standard(router, listener)
}
