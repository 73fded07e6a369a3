//! `RateLimiter` on Redis: a sliding-window log in a sorted set, checked and
//! updated by one Lua script (atomic, one round trip) on the server's clock,
//! so every gateway sharing the server shares one exact budget.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::err;
use crate::ports::rate_limit::{RateDecision, RateLimiter};
use crate::ports::{PortError, Probe};

/// KEYS[1] the window's key; ARGV: limit, window in ms, a unique member.
/// Returns {allowed (0|1), requests counted in the window, ms until the oldest leaves}.
const SLIDING_WINDOW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local reset = window
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
  reset = tonumber(oldest[2]) + window - now
end
return {allowed, count, reset}
"#;

#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    script: Script,
}

impl RedisRateLimiter {
    pub fn new(conn: ConnectionManager) -> Self {
        RedisRateLimiter { conn, script: Script::new(SLIDING_WINDOW) }
    }
}

#[async_trait]
impl Probe for RedisRateLimiter {
    async fn ping(&self) -> Result<(), PortError> {
        super::ping(&self.conn).await
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision, PortError> {
        let mut conn = self.conn.clone();
        let window_ms = window.as_millis().max(1) as u64;
        let (allowed, count, reset_ms): (u8, u64, i64) = self
            .script
            .key(key)
            .arg(limit)
            .arg(window_ms)
            .arg(Uuid::new_v4().to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let reset_after = Duration::from_millis(reset_ms.max(0) as u64);
        Ok(RateDecision {
            allowed: allowed == 1,
            limit,
            remaining: limit.saturating_sub(count.min(u64::from(u32::MAX)) as u32),
            reset_after,
            retry_after: if allowed == 1 { Duration::ZERO } else { reset_after },
        })
    }
}
