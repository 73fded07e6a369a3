//! Trust between services: a service believes `x-user-id` / `x-user-role`
//! only from the gateway. The gateway signs what it forwards — HMAC-SHA256
//! with `internal.secret` over the identity, the method, the path and the
//! time — in `x-agora-proof: <unix seconds>.<signature>`; a service drops
//! identity headers whose proof is missing, wrong or older than a minute, so a
//! request that reaches it directly acts as nobody.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{USER_ID_HEADER, USER_ROLE_HEADER};

pub const PROOF_HEADER: &str = "x-agora-proof";
/// How far (seconds) a proof's time may be from the receiver's clock.
const VALID_FOR_SECS: i64 = 60;

/// The key both sides derive from `internal.secret`.
#[derive(Clone)]
pub struct InternalKey(Arc<Hmac<Sha256>>);

impl InternalKey {
    pub fn new(secret: &str) -> Self {
        // HMAC takes a key of any length.
        let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
        InternalKey(Arc::new(mac))
    }

    fn mac(&self, at: i64, method: &Method, path: &str, user: &str, role: &str) -> Hmac<Sha256> {
        let mut mac = (*self.0).clone();
        for part in [at.to_string().as_str(), method.as_str(), path, user, role] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// The proof of `user`/`role` for this request, made at `at` (unix seconds).
    pub fn prove(&self, at: i64, method: &Method, path: &str, user: &str, role: &str) -> HeaderValue {
        let signature = URL_SAFE_NO_PAD.encode(self.mac(at, method, path, user, role).finalize().into_bytes());
        HeaderValue::from_str(&format!("{at}.{signature}")).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }

    /// Whether the identity headers of this request carry a valid proof at `now`.
    pub fn verify(&self, now: i64, method: &Method, path: &str, headers: &HeaderMap) -> bool {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(proof), Some(user), Some(role)) = (text(PROOF_HEADER), text(USER_ID_HEADER), text(USER_ROLE_HEADER))
        else {
            return false;
        };
        let Some((at, signature)) = proof.split_once('.') else { return false };
        let (Ok(at), Ok(signature)) = (at.parse::<i64>(), URL_SAFE_NO_PAD.decode(signature)) else { return false };
        (now - at).abs() <= VALID_FOR_SECS && self.mac(at, method, path, user, role).verify_slice(&signature).is_ok()
    }
}

/// Drops identity headers that lack a valid proof, before any handler reads them.
pub async fn require_proof(State(key): State<InternalKey>, mut req: Request, next: Next) -> Response {
    let claims_identity = req.headers().contains_key(USER_ID_HEADER) || req.headers().contains_key(USER_ROLE_HEADER);
    if claims_identity {
        let now = chrono::Utc::now().timestamp();
        if !key.verify(now, req.method(), req.uri().path(), req.headers()) {
            tracing::warn!(path = req.uri().path(), "identity headers without a valid gateway proof: ignored");
            let headers = req.headers_mut();
            headers.remove(USER_ID_HEADER);
            headers.remove(USER_ROLE_HEADER);
        }
    }
    req.headers_mut().remove(PROOF_HEADER);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &InternalKey, at: i64, path: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(USER_ID_HEADER, HeaderValue::from_static("u-1"));
        h.insert(USER_ROLE_HEADER, HeaderValue::from_static("admin"));
        h.insert(PROOF_HEADER, key.prove(at, &Method::POST, path, "u-1", "admin"));
        h
    }

    #[test]
    fn a_proof_holds_for_its_request_only_and_for_a_minute() {
        let key = InternalKey::new("0123456789abcdef0123456789abcdef");
        let h = signed(&key, 1000, "/api/products");
        assert!(key.verify(1000, &Method::POST, "/api/products", &h));
        assert!(key.verify(1060, &Method::POST, "/api/products", &h));
        assert!(!key.verify(1061, &Method::POST, "/api/products", &h), "expired");
        assert!(!key.verify(1000, &Method::DELETE, "/api/products", &h), "another method");
        assert!(!key.verify(1000, &Method::POST, "/api/products/x", &h), "another path");
        let mut other_role = h.clone();
        other_role.insert(USER_ROLE_HEADER, HeaderValue::from_static("user"));
        assert!(!key.verify(1000, &Method::POST, "/api/products", &other_role), "another identity");
        let stranger = InternalKey::new("another-secret-another-secret-00");
        assert!(!stranger.verify(1000, &Method::POST, "/api/products", &h), "another key");
        let mut bare = h.clone();
        bare.remove(PROOF_HEADER);
        assert!(!key.verify(1000, &Method::POST, "/api/products", &bare));
        bare.insert(PROOF_HEADER, HeaderValue::from_static("1000.bm9wZQ"));
        assert!(!key.verify(1000, &Method::POST, "/api/products", &bare));
    }
}
