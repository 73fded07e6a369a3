//! The middleware every listener gets, from tower-http where it has the piece:
//! the `Authorization` header kept out of logs, a request id kept or created
//! and returned, a span per request, a JSON 500 for a handler that panics, a
//! bound on a whole request, and — last line of the error contract — any error
//! a lower layer answered without our JSON shape (the router's 400 for a bad
//! path…) rewritten into it. (The 1 MiB body limit is `body::read`'s, where
//! bodies are read.)

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::{Instrument, Span};

use super::{ApiError, REQUEST_ID_HEADER};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::{HttpLabels, interned, method_label};
use crate::telemetry::otlp;
use crate::telemetry::trace::{self, TraceContext};

/// Where a router sits. The public edge logs what it serves at `info`; a
/// service behind it only at `debug` (the edge already logs the request). A
/// service called in the gateway's own process gets only its span, its
/// metrics and its own routes: the gateway's stack already did the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Public,
    Internal,
    InProcess,
}

/// What a listener is: its service's name (in every span and metric), whether
/// it is the public edge, its bound on a request, and where it counts.
#[derive(Clone)]
pub struct Listener {
    pub service: &'static str,
    pub edge: Edge,
    /// A request (its body upload included) gets at most this.
    pub timeout: Duration,
    pub metrics: Arc<Metrics>,
}

/// The route of a request as a template, set by a handler that routes by
/// itself (the gateway's proxy) for the metrics to read.
#[derive(Debug, Clone, Copy)]
pub struct RouteTemplate(pub &'static str);

/// `router` with the whole stack, and `GET /metrics`.
pub fn standard(router: Router, listener: Listener) -> Router {
    let Listener { service, edge, timeout, metrics } = listener;
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    // The request's span is `traced`'s; the trace layer logs what it served in it.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|_: &Request<_>| Span::current())
        .on_request(())
        .on_response(move |response: &Response<_>, latency: Duration, _: &Span| {
            let status = response.status().as_u16();
            let ms = latency.as_secs_f64() * 1000.0;
            match edge {
                Edge::Public => tracing::info!(status, ms, "served"),
                Edge::Internal | Edge::InProcess => tracing::debug!(status, ms, "served"),
            }
        })
        .on_failure(());
    let counted = router.layer(axum::middleware::from_fn_with_state((service, metrics.clone()), count));
    if edge == Edge::InProcess {
        return counted.layer(trace).layer(axum::middleware::from_fn_with_state((service, edge), traced));
    }
    let exposition = metrics;
    // The last layer added is the outermost: read from the bottom up.
    counted
        .route("/metrics", get(move || metrics_text(exposition.clone())))
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::map_response(json_errors))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(axum::middleware::from_fn_with_state((service, edge), traced))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_odd_request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
}

async fn metrics_text(metrics: Arc<Metrics>) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The request's span, as a hop of the caller's trace (or of the hop being
/// handled, for a service called in-process; or of a new one): the span's
/// `trace_id`, the header the request carries on to the calls it makes, and
/// the current context for whatever reads it (the outbox) while it is handled.
async fn traced(State((service, edge)): State<(&'static str, Edge)>, mut req: Request, next: Next) -> Response {
    let request_id: Option<Arc<str>> =
        req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(Arc::from);
    let span = tracing::info_span!(
        "request",
        service,
        request_id = %request_id.as_deref().unwrap_or_default(),
        trace_id = tracing::field::Empty,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let caller = match edge {
        Edge::InProcess => None,
        Edge::Public | Edge::Internal => {
            req.headers().get(trace::HEADER).and_then(|v| v.to_str().ok()).and_then(TraceContext::parse)
        }
    };
    let ctx = otlp::hop(&span, caller);
    span.record("trace_id", tracing::field::display(ctx.trace_id()));
    if let Ok(value) = HeaderValue::from_str(&ctx.to_string()) {
        req.headers_mut().insert(trace::HEADER, value);
    }
    let mut response = ctx.scope(request_id, next.run(req)).instrument(span).await;
    if edge == Edge::Public
        && let Ok(value) = HeaderValue::from_str(&ctx.to_string())
    {
        response.headers_mut().insert(trace::HEADER, value);
    }
    response
}

/// `agora_http_requests_total` and `agora_http_request_duration_seconds`, by route template.
async fn count(State((service, metrics)): State<(&'static str, Arc<Metrics>)>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let matched = req.extensions().get::<MatchedPath>().map(|m| interned(m.as_str()));
    let response = next.run(req).await;
    let route = matched.or_else(|| response.extensions().get::<RouteTemplate>().map(|r| r.0)).unwrap_or("unmatched");
    let labels = HttpLabels { service, route, method, status: response.status().as_u16() };
    metrics.http_duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    metrics.http_requests.get_or_create(&labels).inc();
    response
}

/// A request id we would not want in logs or headers is replaced by a fresh one.
async fn drop_odd_request_id(mut req: Request) -> Request {
    let sane = |v: &HeaderValue| !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(u8::is_ascii_graphic);
    if req.headers().get(REQUEST_ID_HEADER).is_some_and(|v| !sane(v)) {
        req.headers_mut().remove(REQUEST_ID_HEADER);
    }
    req
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    ApiError::Internal(anyhow::anyhow!("handler panicked: {what}")).into_response()
}

/// An error answer that is not JSON came from a layer below our handlers: give
/// it the contract's shape, keeping its status and headers (e.g. `Allow`).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let (replacement, body) = ApiError::for_status(status).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(replacement.headers);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn listener() -> Listener {
        Listener { service: "test", edge: Edge::Internal, timeout: Duration::from_secs(5), metrics: Metrics::new() }
    }

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
        let response = app.oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (parts.status, serde_json::from_slice(&body).unwrap(), parts.headers)
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500() {
        let app = standard(
            Router::new().route(
                "/boom",
                get(|| async {
                    let v: Vec<u8> = Vec::new();
                    v[1].to_string()
                }),
            ),
            listener(),
        );
        let (status, json, _) = call(app, Request::get("/boom").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json["code"], "INTERNAL");
        assert!(!json["message"].as_str().unwrap().contains("index"), "no internals leak: {json}");
    }

    #[tokio::test]
    async fn a_bare_rejection_becomes_the_json_error() {
        let app = standard(
            Router::new().route("/p/{id}", get(|axum::extract::Path(id): axum::extract::Path<String>| async { id })),
            listener(),
        );
        let (status, json, _) = call(app, Request::get("/p/%ff").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["success"], false);
        assert_eq!(json["code"], "BAD_REQUEST");
    }

    #[tokio::test]
    async fn request_ids_are_kept_when_sane_and_made_otherwise() {
        let app = standard(Router::new().route("/", get(|| async { "ok" })), listener());
        let kept = app.clone().oneshot(Request::get("/").header("x-request-id", "abc-1").body(Body::empty()).unwrap());
        assert_eq!(kept.await.unwrap().headers()["x-request-id"], "abc-1");
        let odd = Request::get("/").header("x-request-id", "a b").body(Body::empty()).unwrap();
        let made = app.oneshot(odd).await.unwrap();
        let id = made.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
}
