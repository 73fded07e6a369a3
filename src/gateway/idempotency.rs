//! Writes that can be retried: `POST /api/cart/add`, `POST /api/products` and
//! `POST /api/users/register` accept an `Idempotency-Key` (1–255 visible ASCII
//! characters). The same key from the same caller (the user; for register,
//! anyone) with the same request within 24 h gets the first answer again and
//! changes nothing; with another request, 422 `IDEMPOTENCY_KEY_REUSED`; while
//! its twin is still being handled, 409 `REQUEST_IN_PROGRESS`. An answer of
//! 5xx is not kept, so a retry runs again.
//!
//! The keys live in the `IdempotencyStore` port (Redis: every gateway sees
//! them); while it cannot answer, each gateway keeps them on its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::ports::{Claim, IdempotencyStore, KeptAnswer};
use crate::http::ApiError;
use crate::kernel::breaker::Breaker;
use crate::kernel::validation::FieldError;
use crate::ports::PortError;

pub const HEADER: &str = "idempotency-key";
/// How long an answer is kept for retries.
const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// Most of an answer kept (cart views, products: far less).
const MAX_ANSWER: usize = 1024 * 1024;

pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    /// This gateway's own keys, while `store` cannot answer.
    fallback: Arc<dyn IdempotencyStore>,
    breaker: Breaker,
    degraded: AtomicBool,
    /// How long a request may hold its key before a retry may run it again.
    lease: Duration,
    namespace: String,
}

/// A request that holds its key: its answer is kept when it comes.
pub struct Ticket {
    key: String,
    fingerprint: String,
    store: Arc<dyn IdempotencyStore>,
}

pub enum Decision {
    /// Handle the request; give its answer to `end`.
    Proceed(Ticket),
    /// Answer this instead (the first answer again, or a refusal).
    Answer(Response),
}

/// The key of a request, checked: `None` when it has none.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut all = headers.get_all(HEADER).iter();
    let Some(value) = all.next() else { return Ok(None) };
    let bad = || {
        ApiError::Validation(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "must be one header of 1 to 255 visible ASCII characters".into(),
        }])
    };
    let bytes = value.as_bytes();
    if all.next().is_some() || bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(bad());
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut sha = Sha256::new();
    for part in [method.as_str().as_bytes(), path.as_bytes(), body] {
        sha.update((part.len() as u64).to_be_bytes());
        sha.update(part);
    }
    URL_SAFE_NO_PAD.encode(sha.finalize())
}

impl Idempotency {
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        fallback: Arc<dyn IdempotencyStore>,
        lease: Duration,
        namespace: &str,
    ) -> Self {
        let breaker = Breaker::new(1, Duration::from_secs(1));
        Idempotency { store, fallback, breaker, degraded: AtomicBool::new(false), lease, namespace: namespace.into() }
    }

    /// Claims `key` of `scope` for this request, or says how to answer it.
    pub async fn begin(
        &self,
        scope: &str,
        key: &str,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Result<Decision, ApiError> {
        let key = format!("{}:idempotency:{scope}:{key}", self.namespace);
        let fingerprint = fingerprint(method, path, body);
        let (claim, store) = self.claim(&key, &fingerprint).await?;
        Ok(match claim {
            Claim::Claimed => Decision::Proceed(Ticket { key, fingerprint, store }),
            Claim::Answered(kept) => Decision::Answer(replay(kept)),
            Claim::InProgress => Decision::Answer(
                ApiError::refused(
                    StatusCode::CONFLICT,
                    "REQUEST_IN_PROGRESS",
                    "The same request is still being handled; retry in a moment",
                )
                .into_response(),
            ),
            Claim::OtherRequest => Decision::Answer(
                ApiError::refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "IDEMPOTENCY_KEY_REUSED",
                    "This Idempotency-Key was used for another request",
                )
                .into_response(),
            ),
        })
    }

    /// Through the shared store while it answers, else this gateway's own.
    async fn claim(&self, key: &str, fingerprint: &str) -> Result<(Claim, Arc<dyn IdempotencyStore>), PortError> {
        if let Some(admission) = self.breaker.admit() {
            match self.store.claim(key, fingerprint, self.lease).await {
                Ok(claim) => {
                    admission.record(true);
                    if self.degraded.swap(false, Ordering::Relaxed) {
                        tracing::info!("the idempotency store answers again");
                    }
                    return Ok((claim, self.store.clone()));
                }
                Err(e) => {
                    admission.record(false);
                    if !self.degraded.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "the idempotency store is unavailable; keeping keys per instance");
                    }
                }
            }
        }
        Ok((self.fallback.claim(key, fingerprint, self.lease).await?, self.fallback.clone()))
    }

    /// Keeps the answer (unless a 5xx: then frees the key) and gives it on.
    pub async fn end(&self, ticket: Ticket, response: Response) -> Response {
        let status = response.status();
        if status.is_server_error() {
            if let Err(e) = ticket.store.release(&ticket.key, &ticket.fingerprint).await {
                tracing::warn!(error = %e, "could not free an idempotency key; it frees itself when its lease ends");
            }
            return response;
        }
        let (parts, body) = response.into_parts();
        let bytes = match http_body_util::Limited::new(body, MAX_ANSWER).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                let _ = ticket.store.release(&ticket.key, &ticket.fingerprint).await;
                return ApiError::Unavailable(format!("reading the answer: {e}")).into_response();
            }
        };
        let kept = KeptAnswer { status: status.as_u16(), body: bytes.to_vec() };
        if let Err(e) = ticket.store.finish(&ticket.key, &ticket.fingerprint, &kept, KEEP_FOR).await {
            tracing::warn!(error = %e, "could not keep an answer for retries");
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// The first answer, again.
fn replay(kept: KeptAnswer) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, kept.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        let mut h = HeaderMap::new();
        assert_eq!(key_of(&h).unwrap(), None);
        h.insert(HEADER, HeaderValue::from_static("order-42"));
        assert_eq!(key_of(&h).unwrap().as_deref(), Some("order-42"));
        for bad in ["", "has space", &"x".repeat(256)] {
            h.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            assert!(key_of(&h).is_err(), "{bad:?}");
        }
        h.insert(HEADER, HeaderValue::from_static("a"));
        h.append(HEADER, HeaderValue::from_static("b"));
        assert!(key_of(&h).is_err(), "two keys");
    }

    #[test]
    fn the_fingerprint_is_the_whole_request() {
        let a = fingerprint(&Method::POST, "/api/cart/add", b"{\"q\":1}");
        assert_eq!(a, fingerprint(&Method::POST, "/api/cart/add", b"{\"q\":1}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/cart/add", b"{\"q\":2}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/products", b"{\"q\":1}"));
    }
}
