//! Authentication at the gateway: the users service decides (through the
//! `TokenValidator` port); its yes is remembered for at most
//! `gateway.auth_cache_ttl_secs` and never past the token's own expiry. A
//! logout through this gateway forgets the token at once, and no validation
//! still in flight can bring it back.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use moka::sync::Cache;

use super::ports::{TokenError, TokenValidator};
use crate::kernel::identity::Identity;
use crate::kernel::ttl::{PerEntryTtl, Timed};

/// Bound on remembered tokens (each a few hundred bytes).
const CAPACITY: u64 = 100_000;

pub struct AuthCache {
    validator: Arc<dyn TokenValidator>,
    ttl: Duration,
    known: Cache<String, Timed<Identity>>,
    /// Tokens logged out through this gateway, until they expire.
    revoked: Cache<String, Timed<()>>,
}

impl AuthCache {
    pub fn new(validator: Arc<dyn TokenValidator>, ttl_secs: u64) -> Self {
        AuthCache { validator, ttl: Duration::from_secs(ttl_secs), known: bounded(), revoked: bounded() }
    }

    pub async fn identify(&self, token: &str) -> Result<Identity, TokenError> {
        if self.revoked.contains_key(token) {
            return Err(TokenError::Invalid);
        }
        if let Some(known) = self.known.get(token) {
            return Ok(known.value);
        }
        let identity = self.validator.validate(token).await?;
        let ttl = self.ttl.min(until_expiry(token).unwrap_or_default());
        if !ttl.is_zero() {
            self.known.insert(token.to_string(), Timed { value: identity.clone(), ttl });
            // A logout that ran while we asked: take back what we just wrote.
            if self.revoked.contains_key(token) {
                self.known.invalidate(token);
                return Err(TokenError::Invalid);
            }
        }
        Ok(identity)
    }

    /// The token was logged out: never trust it again here.
    pub fn forget(&self, token: &str) {
        let ttl = until_expiry(token).unwrap_or_default().max(self.ttl);
        self.revoked.insert(token.to_string(), Timed { value: (), ttl });
        self.known.invalidate(token);
    }
}

fn bounded<V: Clone + Send + Sync + 'static>() -> Cache<String, Timed<V>> {
    Cache::builder().max_capacity(CAPACITY).expire_after(PerEntryTtl).build()
}

/// Time left before the token's `exp`. Read without checking the signature:
/// only ever used for a token the users service has just accepted.
fn until_expiry(token: &str) -> Option<Duration> {
    #[derive(serde::Deserialize)]
    struct Exp {
        exp: i64,
    }
    let payload = token.split('.').nth(1)?;
    let exp: Exp = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let left = exp.exp - Utc::now().timestamp();
    (left > 0).then(|| Duration::from_secs(left as u64))
}
