//! Request ids and request logs: `x-request-id` is kept (if sane) or created,
//! passed to the services, returned to the client, and on every log line of
//! the request through its span.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

use crate::http::REQUEST_ID_HEADER;

pub async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    async move {
        let mut response = next.run(req).await;
        tracing::info!(status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "served");
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
        response
    }
    .instrument(span)
    .await
}
