//! The API gateway: the only public entry. In order, for each request: a
//! request id and a span; the global per-IP rate limit (all but `/health` and
//! `/ready`); route resolution; authentication through the users service (with
//! a short-lived cache); identity headers; forwarding to the service.
//!
//! `routes` is the route table, `client_ip` who is asking, `rate_limit` and
//! `auth` the two guards, `proxy` the forwarding, `context` request ids and logs.

pub mod auth;
pub mod client_ip;
pub mod context;
pub mod proxy;
pub mod rate_limit;
pub mod routes;

use std::sync::Arc;

use axum::Router;
use axum::middleware;

use crate::config::GatewayConfig;
use crate::http::health::{self, Check};
use crate::http::upstream::Upstream;
use crate::ports::auth::TokenValidator;
use crate::ports::rate_limit::RateLimiter;

/// Everything the gateway talks to.
pub struct GatewayDeps {
    pub users: Upstream,
    pub products: Upstream,
    pub carts: Upstream,
    pub limiter: Arc<dyn RateLimiter>,
    pub validator: Arc<dyn TokenValidator>,
}

pub fn router(config: &GatewayConfig, deps: GatewayDeps) -> Router {
    let checks = vec![
        Check::new("rate_limiter", deps.limiter.clone()),
        Check::new("users", Arc::new(deps.users.clone())),
        Check::new("products", Arc::new(deps.products.clone())),
        Check::new("carts", Arc::new(deps.carts.clone())),
    ];
    let limits = Arc::new(rate_limit::Limits::new(config, deps.limiter));
    let proxy = Arc::new(proxy::Proxy {
        users: deps.users,
        products: deps.products,
        carts: deps.carts,
        auth: auth::AuthCache::new(deps.validator, config.auth_cache_ttl_secs),
    });
    let limited = Router::new()
        .merge(crate::openapi::routes())
        .fallback(proxy::forward)
        .with_state(proxy)
        .layer(middleware::from_fn_with_state(limits, rate_limit::enforce));
    limited
        .merge(health::routes(checks))
        .method_not_allowed_fallback(|| async { crate::http::ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(context::request_context))
}
