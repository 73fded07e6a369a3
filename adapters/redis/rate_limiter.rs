//! `RateLimiter` on Redis: GCRA (as `ports::rate_limit::gcra`), one number per
//! key (when its budget is whole again), checked and updated by one Lua script
//! — atomic, one round trip — on the server's clock, so every gateway sharing
//! the server shares one exact budget. Times are microseconds; the arithmetic
//! is the same as the port's, in floating point.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::err;
use crate::ports::rate_limit::{RateDecision, RateLimiter};
use crate::ports::{PortError, Probe};

/// KEYS[1] the key; ARGV: limit, window in µs.
/// Returns {allowed (0|1), remaining, µs until the budget is whole, µs until one more is allowed}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if limit == 0 then return {0, 0, window, window} end
local cost = window / limit
local tolerance = cost * (limit - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance + 0.001 then
  return {0, 0, math.ceil(tat - now), math.ceil(tat - tolerance - now)}
end
local nxt = tat + cost
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
local room = math.floor((now + tolerance + cost - nxt) / cost + 0.000001)
if room > limit - 1 then room = limit - 1 end
if room < 0 then room = 0 end
return {1, room, math.ceil(nxt - now), 0}
"#;

#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    script: Script,
}

impl RedisRateLimiter {
    pub fn new(conn: ConnectionManager) -> Self {
        RedisRateLimiter { conn, script: Script::new(GCRA) }
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
        let window_us = window.as_micros().max(1) as u64;
        let (allowed, remaining, reset_us, retry_us): (u8, i64, i64, i64) =
            self.script.key(key).arg(limit).arg(window_us).invoke_async(&mut conn).await.map_err(err)?;
        let micros = |us: i64| Duration::from_micros(us.max(0) as u64);
        Ok(RateDecision {
            allowed: allowed == 1,
            limit,
            remaining: remaining.clamp(0, i64::from(limit)) as u32,
            reset_after: micros(reset_us),
            retry_after: micros(retry_us),
        })
    }
}
