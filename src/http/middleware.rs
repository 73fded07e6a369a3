//! The middleware every listener gets, from tower-http where it has the piece:
//! the `Authorization` header kept out of logs, a request id kept or created
//! and returned, a span per request, a JSON 500 for a handler that panics, a
//! bound on a whole request, and — last line of the error contract — any error
//! a lower layer answered without our JSON shape (the router's 400 for a bad
//! path…) rewritten into it. (The 1 MiB body limit is `body::read`'s, where
//! bodies are read.)

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::{ApiError, REQUEST_ID_HEADER};

/// Whether a listener's "served" lines are worth `info` (the public edge) or
/// only `debug` (a service behind it, whose requests the edge already logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Public,
    Internal,
}

/// `router` with the whole stack; `service` names it in every span; a request
/// (its body upload included) gets at most `timeout`.
pub fn standard(router: Router, service: &'static str, edge: Edge, timeout: Duration) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let trace = TraceLayer::new_for_http()
        .make_span_with(move |req: &Request<_>| {
            let id = req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            tracing::info_span!("request", service, request_id = %id, method = %req.method(), path = %req.uri().path())
        })
        .on_request(())
        .on_response(move |response: &Response<_>, latency: Duration, _: &Span| {
            let status = response.status().as_u16();
            let ms = latency.as_secs_f64() * 1000.0;
            match edge {
                Edge::Public => tracing::info!(status, ms, "served"),
                Edge::Internal => tracing::debug!(status, ms, "served"),
            }
        })
        .on_failure(());
    // The last layer added is the outermost: read from the bottom up.
    router
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::map_response(json_errors))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_odd_request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
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
            "test",
            Edge::Internal,
            Duration::from_secs(5),
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
            "test",
            Edge::Internal,
            Duration::from_secs(5),
        );
        let (status, json, _) = call(app, Request::get("/p/%ff").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["success"], false);
        assert_eq!(json["code"], "BAD_REQUEST");
    }

    #[tokio::test]
    async fn request_ids_are_kept_when_sane_and_made_otherwise() {
        let app =
            standard(Router::new().route("/", get(|| async { "ok" })), "test", Edge::Internal, Duration::from_secs(5));
        let kept = app.clone().oneshot(Request::get("/").header("x-request-id", "abc-1").body(Body::empty()).unwrap());
        assert_eq!(kept.await.unwrap().headers()["x-request-id"], "abc-1");
        let odd = Request::get("/").header("x-request-id", "a b").body(Body::empty()).unwrap();
        let made = app.oneshot(odd).await.unwrap();
        let id = made.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
}
