//! The API gateway: the only public entry. In order, for each request: a
//! request id and a span (the standard middleware); the global per-IP rate
//! limit (all but `/health` and `/ready`); route resolution; authentication
//! through the users service (with a short-lived cache); identity headers;
//! forwarding to the service.
//!
//! `routes` is the route table, `client_ip` who is asking, `rate_limit` and
//! `auth` the two guards, `ports` what the gateway asks of the users service,
//! `proxy` the forwarding.

pub mod auth;
pub mod client_ip;
pub mod idempotency;
pub mod ports;
pub mod proxy;
pub mod rate_limit;
pub mod routes;

use std::sync::Arc;

use axum::Router;
use axum::middleware;

use std::time::Duration;

use self::ports::{IdempotencyStore, TokenValidator};
use crate::config::Config;
use crate::http::health::{self, Check, Lifecycle};
use crate::http::trust::InternalKey;
use crate::http::upstream::Upstream;
use crate::http::{ApiError, Listener};
use crate::ports::rate_limit::RateLimiter;

/// Everything the gateway talks to, and the API documentation it serves.
pub struct GatewayDeps {
    pub users: Upstream,
    pub products: Upstream,
    pub carts: Upstream,
    pub limiter: Arc<dyn RateLimiter>,
    /// Limits each client in this instance alone while `limiter` cannot answer.
    pub fallback_limiter: Arc<dyn RateLimiter>,
    /// Keeps the answers of retried writes.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// This instance's own, while `idempotency` cannot answer.
    pub fallback_idempotency: Arc<dyn IdempotencyStore>,
    pub validator: Arc<dyn TokenValidator>,
    /// Signs the identity forwarded to the services.
    pub key: InternalKey,
    /// Routes the gateway answers itself (the API documentation), rate-limited like the rest.
    pub docs: Router,
    /// The process's shutdown state, which `/ready` reports.
    pub lifecycle: Lifecycle,
    /// This listener's name, bounds and metrics.
    pub listener: Listener,
}

/// `namespace` prefixes the rate-limit keys (`<namespace>:ratelimit:<ip>`).
pub fn router(config: &Config, deps: GatewayDeps) -> Router {
    let checks = vec![
        // Without it the gateway limits per instance: degraded, still ready.
        Check::degradable("rate_limiter", deps.limiter.clone()),
        Check::new("users", Arc::new(deps.users.clone())),
        Check::new("products", Arc::new(deps.products.clone())),
        Check::new("carts", Arc::new(deps.carts.clone())),
    ];
    let metrics = deps.listener.metrics.clone();
    let limits = Arc::new(rate_limit::Limits::new(config, deps.limiter, deps.fallback_limiter, metrics.clone()));
    let proxy = Arc::new(proxy::Proxy {
        users: deps.users,
        products: deps.products,
        carts: deps.carts,
        auth: auth::AuthCache::new(deps.validator, config.gateway.auth_cache_ttl_secs, metrics),
        key: deps.key,
        idempotency: idempotency::Idempotency::new(
            deps.idempotency,
            deps.fallback_idempotency,
            // A request holds its key at most this long (then a retry may run again).
            Duration::from_secs(config.gateway.upstream_timeout_secs.max(1) + 5),
            &config.redis.namespace,
        ),
    });
    let limited = Router::new()
        .fallback(proxy::forward)
        .with_state(proxy)
        .merge(deps.docs)
        .layer(middleware::from_fn_with_state(limits, rate_limit::enforce));
    let router = limited
        .merge(health::routes(checks, deps.lifecycle))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    crate::http::middleware::standard(router, deps.listener)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::adapters::memory::{MemoryIdempotencyStore, MemoryRateLimiter};
    use crate::gateway::ports::TokenError;
    use crate::kernel::identity::Identity;
    use crate::ports::{PortError, Probe};

    struct NoTokens;

    #[async_trait::async_trait]
    impl Probe for NoTokens {
        async fn ping(&self) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl TokenValidator for NoTokens {
        async fn validate(&self, _: &str) -> Result<Identity, TokenError> {
            Err(TokenError::Invalid)
        }
    }

    /// A gateway whose products service hangs and whose carts service is not listening.
    fn gateway() -> Router {
        let slow = Router::new().route(
            "/api/products",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let timeout = Duration::from_millis(100);
        // Port 1 on loopback: nothing listens there, so connecting fails at once.
        let dead = Upstream::http("carts service", "http://127.0.0.1:1", timeout).unwrap();
        let deps = GatewayDeps {
            users: Upstream::in_process("users service", Router::new(), timeout),
            products: Upstream::in_process("products service", slow, timeout),
            carts: dead,
            limiter: Arc::new(MemoryRateLimiter::new()),
            fallback_limiter: Arc::new(MemoryRateLimiter::new()),
            idempotency: Arc::new(MemoryIdempotencyStore::new()),
            fallback_idempotency: Arc::new(MemoryIdempotencyStore::new()),
            validator: Arc::new(NoTokens),
            key: InternalKey::new("test-secret-test-secret-test-secret"),
            docs: Router::new(),
            lifecycle: Lifecycle::default(),
            listener: Listener {
                service: "gateway",
                edge: crate::http::Edge::Public,
                timeout: Duration::from_secs(30),
                metrics: crate::telemetry::Metrics::new(),
            },
        };
        router(&crate::config::Config::default(), deps)
    }

    async fn call(path: &str) -> (StatusCode, serde_json::Value) {
        call_on(&gateway(), path).await
    }

    async fn call_on(gateway: &Router, path: &str) -> (StatusCode, serde_json::Value) {
        let response = gateway.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_hanging_service_gives_a_json_503_in_time() {
        let started = std::time::Instant::now();
        let (status, body) = call("/api/products").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn repeated_failures_open_the_circuit_and_answer_at_once() {
        let gateway = gateway();
        for _ in 0..crate::kernel::breaker::THRESHOLD {
            let (status, _) = call_on(&gateway, "/api/products").await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        }
        let started = std::time::Instant::now();
        let (status, body) = call_on(&gateway, "/api/products").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(started.elapsed() < Duration::from_millis(50), "open: no wait for the timeout");
        // Other routes are untouched: the users service still answers (404 from it, not 503).
        let (status, _) = call_on(&gateway, "/api/users/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn readiness_reports_a_service_that_is_down_fast() {
        let started = std::time::Instant::now();
        let (status, body) = call("/ready").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "NOT_READY");
        let (status, body) = call("/api/products").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
