//! The global rate limit, per client IP, through the `RateLimiter` port (so
//! every gateway sharing one Redis shares one budget). Every limited response
//! carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client_ip::client_ip;
use crate::config::{GatewayConfig, TrustedProxies};
use crate::http::ApiError;
use crate::http::error::ceil_secs;
use crate::ports::rate_limit::{RateDecision, RateLimiter};

pub struct Limits {
    limiter: Arc<dyn RateLimiter>,
    requests: u32,
    window: Duration,
    trusted: TrustedProxies,
    namespace: String,
}

impl Limits {
    pub fn new(config: &GatewayConfig, namespace: &str, limiter: Arc<dyn RateLimiter>) -> Self {
        Limits {
            limiter,
            requests: config.rate_limit.requests,
            window: config.rate_window(),
            trusted: config.trusted_proxies.clone(),
            namespace: namespace.to_string(),
        }
    }
}

pub async fn enforce(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let Some(peer) = peer else {
        // Without a socket (in-process calls) there is no client to limit.
        return next.run(req).await;
    };
    let ip = client_ip(peer, req.headers(), &limits.trusted);
    let decision = match limits
        .limiter
        .check(&format!("{}:ratelimit:{ip}", limits.namespace), limits.requests, limits.window)
        .await
    {
        Ok(d) => d,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut response = if decision.allowed {
        next.run(req).await
    } else {
        ApiError::RateLimited { retry_after: decision.retry_after }.into_response()
    };
    set_headers(response.headers_mut(), &decision);
    response
}

fn set_headers(headers: &mut HeaderMap, d: &RateDecision) {
    let mut put = |name: &'static str, value: u64| {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, v);
        }
    };
    put("ratelimit-limit", u64::from(d.limit));
    put("ratelimit-remaining", u64::from(d.remaining));
    put("ratelimit-reset", ceil_secs(d.reset_after));
}
