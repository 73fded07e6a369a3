//! `IdempotencyStore` on Redis, shared by every gateway: a key holds
//! `P|<fingerprint>` while its request runs and `D|<fingerprint>|<status>|<body>`
//! once answered; each step is one Lua script, so it decides atomically.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::err;
use crate::gateway::ports::{Claim, IdempotencyStore, KeptAnswer};
use crate::ports::{PortError, Probe};

/// KEYS[1]; ARGV: fingerprint, lease in ms. Returns the key's value when it
/// was taken already, nothing when this call claimed it.
const CLAIM: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], 'P|' .. ARGV[1], 'PX', ARGV[2])
return false
"#;

/// KEYS[1]; ARGV: fingerprint, status, body, ttl in ms.
const FINISH: &str = r#"
if redis.call('GET', KEYS[1]) == 'P|' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'D|' .. ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3], 'PX', ARGV[4])
end
return 0
"#;

/// KEYS[1]; ARGV: fingerprint.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == 'P|' .. ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"#;

#[derive(Clone)]
pub struct RedisIdempotencyStore {
    conn: ConnectionManager,
    claim: Script,
    finish: Script,
    release: Script,
}

impl RedisIdempotencyStore {
    pub fn new(conn: ConnectionManager) -> Self {
        RedisIdempotencyStore {
            conn,
            claim: Script::new(CLAIM),
            finish: Script::new(FINISH),
            release: Script::new(RELEASE),
        }
    }
}

/// What a taken key holds, for a request of `fingerprint`.
fn held(value: &[u8], fingerprint: &str) -> Claim {
    let mut parts = value.splitn(4, |b| *b == b'|');
    let (kind, fp) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if fp != fingerprint.as_bytes() {
        return Claim::OtherRequest;
    }
    match kind {
        b"D" => {
            let status = parts.next().and_then(|s| std::str::from_utf8(s).ok()?.parse().ok()).unwrap_or(500);
            Claim::Answered(KeptAnswer { status, body: parts.next().unwrap_or_default().to_vec() })
        }
        _ => Claim::InProgress,
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

#[async_trait]
impl Probe for RedisIdempotencyStore {
    async fn ping(&self) -> Result<(), PortError> {
        super::ping(&self.conn).await
    }
}

#[async_trait]
impl IdempotencyStore for RedisIdempotencyStore {
    async fn claim(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<Claim, PortError> {
        let mut conn = self.conn.clone();
        let taken: Option<Vec<u8>> =
            self.claim.key(key).arg(fingerprint).arg(millis(lease)).invoke_async(&mut conn).await.map_err(err)?;
        Ok(taken.map_or(Claim::Claimed, |value| held(&value, fingerprint)))
    }

    async fn finish(&self, key: &str, fingerprint: &str, answer: &KeptAnswer, ttl: Duration) -> Result<(), PortError> {
        let mut conn = self.conn.clone();
        self.finish
            .key(key)
            .arg(fingerprint)
            .arg(answer.status)
            .arg(&answer.body)
            .arg(millis(ttl))
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(err)
    }

    async fn release(&self, key: &str, fingerprint: &str) -> Result<(), PortError> {
        let mut conn = self.conn.clone();
        self.release.key(key).arg(fingerprint).invoke_async::<()>(&mut conn).await.map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_key_holds_reads_back() {
        assert_eq!(held(b"P|abc", "abc"), Claim::InProgress);
        assert_eq!(held(b"P|abc", "abd"), Claim::OtherRequest);
        assert_eq!(
            held(b"D|abc|201|{\"a\":\"x|y\"}", "abc"),
            Claim::Answered(KeptAnswer { status: 201, body: b"{\"a\":\"x|y\"}".to_vec() })
        );
    }
}
