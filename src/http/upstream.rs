//! How one service calls another: an `Upstream` is a boxed tower service, either
//! a service's `Router` in the same process (the all-in-one runtime) or a pooled
//! HTTP client to its URL (the production topology). Callers cannot tell which;
//! both are bounded by a timeout and guarded by a circuit breaker.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

use super::ApiError;
use crate::kernel::breaker::Breaker;
use crate::ports::PortError;
use crate::telemetry::Metrics;
use crate::telemetry::metrics::UpstreamLabels;
use crate::telemetry::trace::{self, TraceContext};

type Inner = BoxCloneSyncService<Request<Body>, Response<Body>, UpstreamError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0} is unavailable: {1}")]
    Unavailable(&'static str, String),
    #[error("{0} did not answer in time")]
    Timeout(&'static str),
    #[error("{0} is failing: its circuit is open")]
    CircuitOpen(&'static str),
}

/// Whichever way a service cannot be reached, its routes answer 503.
impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<UpstreamError> for PortError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Unavailable(name, _) | UpstreamError::Timeout(name) | UpstreamError::CircuitOpen(name) => {
                PortError::Unavailable { dependency: name, reason: e.to_string() }
            }
        }
    }
}

/// Largest answer a caller reads into memory.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Upstream {
    name: &'static str,
    service: Inner,
    timeout: Duration,
    breaker: Arc<Breaker>,
    metrics: Option<Arc<Metrics>>,
}

impl Upstream {
    /// A service in this process: its router, called without a socket.
    pub fn in_process(name: &'static str, router: Router, timeout: Duration) -> Self {
        let service = ServiceBuilder::new()
            .map_err(|never: Infallible| match never {})
            .service(router.into_service::<Body>())
            .map_response(|r: Response<Body>| r);
        Upstream { name, service: BoxCloneSyncService::new(service), timeout, breaker: Arc::default(), metrics: None }
    }

    /// A service at `base_url` (`http://host:port`), over pooled HTTP/1 connections.
    pub fn http(name: &'static str, base_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let base: Uri = base_url.trim_end_matches('/').parse()?;
        let (Some(scheme), Some(authority)) = (base.scheme().cloned(), base.authority().cloned()) else {
            anyhow::bail!("{name} URL '{base_url}' must look like http://host:port");
        };
        if scheme.as_str() != "http" {
            anyhow::bail!("{name} URL '{base_url}': only http:// is supported between services");
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build(connector);
        let service = tower::service_fn(move |mut req: Request<Body>| {
            let client = client.clone();
            let (scheme, authority) = (scheme.clone(), authority.clone());
            async move {
                let path = req.uri().path_and_query().cloned();
                let mut parts = axum::http::uri::Parts::default();
                parts.scheme = Some(scheme);
                parts.authority = Some(authority);
                parts.path_and_query = path;
                *req.uri_mut() = Uri::from_parts(parts).map_err(|e| UpstreamError::Unavailable(name, e.to_string()))?;
                req.headers_mut().remove(header::HOST);
                let response =
                    client.request(req).await.map_err(|e| UpstreamError::Unavailable(name, e.to_string()))?;
                Ok::<_, UpstreamError>(response.map(Body::new))
            }
        });
        Ok(Upstream {
            name,
            service: BoxCloneSyncService::new(service),
            timeout,
            breaker: Arc::default(),
            metrics: None,
        })
    }

    /// Counts this upstream's failures and circuit state in `metrics`.
    pub fn observed(mut self, metrics: Arc<Metrics>) -> Self {
        metrics.set_circuit(self.name, self.breaker.state());
        self.metrics = Some(metrics);
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The state of this upstream's circuit: `closed`, `open` or `half_open`.
    pub fn circuit(&self) -> &'static str {
        self.breaker.state()
    }

    /// Runs `call` within the timeout, through the breaker.
    async fn guarded<T>(&self, call: impl Future<Output = Result<T, UpstreamError>>) -> Result<T, UpstreamError> {
        let result = match self.breaker.admit() {
            None => Err(UpstreamError::CircuitOpen(self.name)),
            Some(admission) => {
                let result = match tokio::time::timeout(self.timeout, call).await {
                    Ok(result) => result,
                    Err(_) => Err(UpstreamError::Timeout(self.name)),
                };
                admission.record(result.is_ok());
                result
            }
        };
        if let Some(metrics) = &self.metrics {
            if let Err(e) = &result {
                let kind = match e {
                    UpstreamError::Unavailable(..) => "unavailable",
                    UpstreamError::Timeout(_) => "timeout",
                    UpstreamError::CircuitOpen(_) => "circuit_open",
                };
                metrics.upstream_errors.get_or_create(&UpstreamLabels { upstream: self.name, kind }).inc();
            }
            metrics.set_circuit(self.name, self.breaker.state());
        }
        result
    }

    /// Sends a request; the answer's head must come within the timeout.
    pub async fn call(&self, req: Request<Body>) -> Result<Response<Body>, UpstreamError> {
        self.guarded(self.service.clone().oneshot(req)).await
    }

    /// A whole exchange with a JSON body (or none), read fully within the timeout.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), UpstreamError> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(h) = builder.headers_mut() {
            *h = headers;
            // The call is made by the hop being handled: it is the callee's parent.
            if let Some(ctx) = TraceContext::current()
                && let Ok(v) = header::HeaderValue::from_str(&ctx.to_string())
            {
                h.insert(trace::HEADER, v);
            }
            if body.is_some() {
                h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
            }
        }
        let req = builder
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .map_err(|e| UpstreamError::Unavailable(self.name, e.to_string()))?;
        let read = async {
            let response = self.service.clone().oneshot(req).await?;
            let status = response.status();
            let limited = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE);
            let bytes = limited.collect().await.map_err(|e| UpstreamError::Unavailable(self.name, e.to_string()))?;
            Ok((status, bytes.to_bytes()))
        };
        self.guarded(read).await
    }
}

/// An upstream is ready when its own `/ready` says so.
#[async_trait::async_trait]
impl crate::ports::Probe for Upstream {
    async fn ping(&self) -> Result<(), PortError> {
        let (status, _) = self.exchange(Method::GET, "/ready", HeaderMap::new(), None).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(PortError::unavailable(self.name, format!("/ready answered {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_unavailable_at_once() {
        let upstream = Upstream::http("carts service", "http://127.0.0.1:1", Duration::from_secs(5)).unwrap();
        let started = std::time::Instant::now();
        let err = upstream.exchange(Method::GET, "/health", HeaderMap::new(), None).await.unwrap_err();
        assert!(matches!(err, UpstreamError::Unavailable(..)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(ApiError::from(err).status_and_code().1, "SERVICE_UNAVAILABLE");
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(Upstream::http("x", "https://example.com", Duration::from_secs(1)).is_err());
        assert!(Upstream::http("x", "not a url", Duration::from_secs(1)).is_err());
    }
}
