//! Authentication at the gateway: the users service decides (through the
//! `TokenValidator` port); its yes is remembered for at most
//! `gateway.auth_cache_ttl_secs` and never past the token's own expiry. A
//! logout through this gateway forgets the token at once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;

use crate::adapters::memory::TtlMap;
use crate::ports::auth::{Identity, TokenError, TokenValidator};

pub struct AuthCache {
    validator: Arc<dyn TokenValidator>,
    ttl: Duration,
    known: TtlMap<String, Identity>,
}

impl AuthCache {
    pub fn new(validator: Arc<dyn TokenValidator>, ttl_secs: u64) -> Self {
        AuthCache { validator, ttl: Duration::from_secs(ttl_secs), known: TtlMap::new() }
    }

    pub async fn identify(&self, token: &str) -> Result<Identity, TokenError> {
        if let Some(identity) = self.known.get(&token.to_string()) {
            return Ok(identity);
        }
        let identity = self.validator.validate(token).await?;
        let ttl = self.ttl.min(until_expiry(token).unwrap_or_default());
        if !ttl.is_zero() {
            self.known.insert(token.to_string(), identity.clone(), ttl);
        }
        Ok(identity)
    }

    pub fn forget(&self, token: &str) {
        self.known.remove(&token.to_string());
    }
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
