//! The global rate limit, per client (an IPv4 address, an IPv6 /64), through
//! the `RateLimiter` port, so every gateway sharing one Redis shares one
//! budget. Every limited response carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`.
//!
//! While the shared limiter cannot answer (Redis down), each gateway limits
//! with the same numbers on its own: never a 5xx because of it; the outage is
//! logged once when it starts and once when it ends, and a breaker keeps
//! requests from waiting on the shared limiter meanwhile (one tries it again
//! each second).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client_ip::client_ip;
use crate::config::{Config, TrustedProxies};
use crate::http::ApiError;
use crate::http::error::ceil_secs;
use crate::kernel::breaker::Breaker;
use crate::ports::rate_limit::{RateDecision, RateLimiter};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::DecisionLabels;

pub struct Limits {
    limiter: Arc<dyn RateLimiter>,
    fallback: Arc<dyn RateLimiter>,
    requests: u32,
    window: Duration,
    trusted: TrustedProxies,
    namespace: String,
    /// Whether the shared limiter is failing (so its outage is logged once).
    degraded: AtomicBool,
    breaker: Breaker,
    metrics: Arc<Metrics>,
}

impl Limits {
    pub fn new(
        config: &Config,
        limiter: Arc<dyn RateLimiter>,
        fallback: Arc<dyn RateLimiter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Limits {
            limiter,
            fallback,
            requests: config.gateway.rate_limit.requests,
            window: config.gateway.rate_window(),
            trusted: config.gateway.trusted_proxies.clone(),
            namespace: config.redis.namespace.clone(),
            degraded: AtomicBool::new(false),
            breaker: Breaker::new(1, Duration::from_secs(1)),
            metrics,
        }
    }

    /// The shared decision, or this instance's own while the shared one fails.
    /// The decision, counted by which limiter made it.
    async fn decide(&self, key: &str) -> Result<RateDecision, ApiError> {
        let (decision, limiter) = self.decide_by(key).await?;
        let decided = if decision.allowed { "allowed" } else { "refused" };
        self.metrics.rate_limit.get_or_create(&DecisionLabels { decision: decided, limiter }).inc();
        Ok(decision)
    }

    async fn decide_by(&self, key: &str) -> Result<(RateDecision, &'static str), ApiError> {
        if let Some(admission) = self.breaker.admit() {
            match self.limiter.check(key, self.requests, self.window).await {
                Ok(decision) => {
                    admission.record(true);
                    if self.degraded.swap(false, Ordering::Relaxed) {
                        tracing::info!("the shared rate limiter answers again; per-instance limiting ends");
                    }
                    return Ok((decision, "shared"));
                }
                Err(e) => {
                    admission.record(false);
                    if !self.degraded.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "the shared rate limiter is unavailable; limiting per instance");
                    }
                }
            }
        }
        Ok((self.fallback.check(key, self.requests, self.window).await?, "local"))
    }
}

/// Whom a budget belongs to: an IPv4 address, or the /64 of an IPv6 one (a
/// single client usually holds a whole /64).
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

pub async fn enforce(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let Some(peer) = peer else {
        // Without a socket (in-process calls) there is no client to limit.
        return next.run(req).await;
    };
    let client = client_key(client_ip(peer, req.headers(), &limits.trusted));
    let decision = match limits.decide(&format!("{}:ratelimit:{client}", limits.namespace)).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        assert_eq!(client_key("10.1.2.3".parse().unwrap()), "10.1.2.3");
    }
}
