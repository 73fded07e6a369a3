//! Authentication at the gateway: the users service decides (through the
//! `TokenValidator` port); its yes is remembered for at most
//! `gateway.auth_cache_ttl_secs` and never past the token's own expiry.
//!
//! What goes through this gateway takes effect here at once: a logout forgets
//! the token, a profile change (a new password revokes every older token)
//! forgets every token of that user — and a validation that was in flight at
//! that moment cannot bring one back, since an answer counts only if it was
//! asked for after the last such change.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use moka::sync::Cache;
use tokio::time::Instant;
use uuid::Uuid;

use super::ports::{TokenError, TokenValidator};
use crate::kernel::identity::Identity;
use crate::kernel::ttl::{PerEntryTtl, Timed};
use crate::telemetry::Metrics;

/// Bound on remembered tokens (each a few hundred bytes).
const CAPACITY: u64 = 100_000;

/// A validated identity and when the question that got it was asked.
#[derive(Clone)]
struct Known {
    identity: Identity,
    asked_at: Instant,
}

pub struct AuthCache {
    validator: Arc<dyn TokenValidator>,
    ttl: Duration,
    known: Cache<String, Timed<Known>>,
    /// Tokens logged out through this gateway, until they expire.
    logged_out: Cache<String, Timed<()>>,
    /// Users whose credentials changed through this gateway, and when.
    changed: Cache<Uuid, Timed<Instant>>,
    metrics: Arc<Metrics>,
}

fn bounded<K, V>() -> Cache<K, Timed<V>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder().max_capacity(CAPACITY).expire_after(PerEntryTtl).build()
}

impl AuthCache {
    pub fn new(validator: Arc<dyn TokenValidator>, ttl_secs: u64, metrics: Arc<Metrics>) -> Self {
        AuthCache {
            validator,
            ttl: Duration::from_secs(ttl_secs),
            known: bounded(),
            logged_out: bounded(),
            changed: bounded(),
            metrics,
        }
    }

    /// Whether an answer asked for at `asked_at` about `identity` still counts.
    fn still_valid(&self, token: &str, identity: &Identity, asked_at: Instant) -> bool {
        !self.logged_out.contains_key(token) && self.changed.get(&identity.user_id).is_none_or(|c| asked_at > c.value)
    }

    pub async fn identify(&self, token: &str) -> Result<Identity, TokenError> {
        if self.logged_out.contains_key(token) {
            return Err(TokenError::Invalid);
        }
        if let Some(known) = self.known.get(token) {
            if self.still_valid(token, &known.value.identity, known.value.asked_at) {
                Metrics::cache_lookup(&self.metrics.auth_cache, 1, 0);
                return Ok(known.value.identity);
            }
            self.known.invalidate(token);
        }
        Metrics::cache_lookup(&self.metrics.auth_cache, 0, 1);
        let asked_at = Instant::now();
        let identity = self.validator.validate(token).await?;
        let ttl = self.ttl.min(until_expiry(token).unwrap_or_default());
        if !ttl.is_zero() {
            let known = Known { identity: identity.clone(), asked_at };
            self.known.insert(token.to_string(), Timed { value: known, ttl });
        }
        // A logout or a change made while we asked: the answer is already stale.
        if !self.still_valid(token, &identity, asked_at) {
            self.known.invalidate(token);
            return Err(TokenError::Invalid);
        }
        Ok(identity)
    }

    /// The token was logged out: never trust it again here.
    pub fn forget(&self, token: &str) {
        let ttl = until_expiry(token).unwrap_or_default().max(self.ttl);
        self.logged_out.insert(token.to_string(), Timed { value: (), ttl });
        self.known.invalidate(token);
    }

    /// The user's credentials changed: ask again about every token of theirs.
    pub fn forget_user(&self, user: Uuid) {
        // Kept as long as any answer about them may be remembered.
        let ttl = self.ttl.max(Duration::from_secs(1));
        self.changed.insert(user, Timed { value: Instant::now(), ttl });
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;
    use crate::kernel::identity::Role;
    use crate::ports::{PortError, Probe};

    /// A users service that holds each answer until told to give it.
    #[derive(Default)]
    struct Pausing {
        asked: Notify,
        answer: Notify,
        calls: AtomicUsize,
        user: Uuid,
    }

    #[async_trait::async_trait]
    impl Probe for Pausing {
        async fn ping(&self) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl TokenValidator for Pausing {
        async fn validate(&self, _: &str) -> Result<Identity, TokenError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.asked.notify_one();
            self.answer.notified().await;
            Ok(Identity { user_id: self.user, email: "a@b.co".into(), role: Role::User })
        }
    }

    /// A JWT-shaped token (unsigned: the gateway only reads its `exp`).
    fn token() -> String {
        let exp = Utc::now().timestamp() + 3600;
        let payload = URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{exp},\"n\":\"{}\"}}", Uuid::new_v4()));
        format!("e30.{payload}.sig")
    }

    async fn race(
        change: impl FnOnce(&AuthCache, &str, Uuid),
    ) -> (Result<Identity, TokenError>, Arc<Pausing>, Arc<AuthCache>, String) {
        let users = Arc::new(Pausing { user: Uuid::new_v4(), ..Default::default() });
        let cache = Arc::new(AuthCache::new(users.clone(), 30, Metrics::new()));
        let token = token();
        let asking = {
            let (cache, token) = (cache.clone(), token.clone());
            tokio::spawn(async move { cache.identify(&token).await })
        };
        users.asked.notified().await;
        change(&cache, &token, users.user);
        users.answer.notify_one();
        (asking.await.unwrap(), users, cache, token)
    }

    #[tokio::test]
    async fn a_logout_during_a_validation_is_not_undone() {
        let (answer, users, cache, token) = race(|cache, token, _| cache.forget(token)).await;
        assert!(matches!(answer, Err(TokenError::Invalid)), "the in-flight validation was believed");
        assert!(matches!(cache.identify(&token).await, Err(TokenError::Invalid)));
        assert_eq!(users.calls.load(Ordering::SeqCst), 1, "refused here, without asking again");
    }

    #[tokio::test]
    async fn a_credentials_change_during_a_validation_is_not_undone() {
        let (answer, _, _, _) = race(|cache, _, user| cache.forget_user(user)).await;
        assert!(matches!(answer, Err(TokenError::Invalid)), "an answer asked for before the change was believed");
    }

    #[tokio::test]
    async fn after_a_credentials_change_remembered_answers_are_asked_again() {
        let (answer, users, cache, token) = race(|cache, _, _| cache.forget_user(Uuid::nil())).await;
        assert!(answer.is_ok(), "another user's change does not matter");
        assert!(cache.identify(&token).await.is_ok(), "remembered");
        assert_eq!(users.calls.load(Ordering::SeqCst), 1);
        cache.forget_user(users.user);
        let again = {
            let (cache, token) = (cache.clone(), token.clone());
            tokio::spawn(async move { cache.identify(&token).await })
        };
        users.asked.notified().await;
        users.answer.notify_one();
        assert!(again.await.unwrap().is_ok());
        assert_eq!(users.calls.load(Ordering::SeqCst), 2, "the remembered answer was older than the change");
    }
}
