//! `Cache` on Redis: MGET for a whole cart in one round trip; writes and
//! invalidations as Lua scripts, so each decides atomically against what the
//! key holds. A key holds `V<version>|<value>`, or `F<version>|` for an
//! invalidation (no value, a floor for later writes).

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::err;
use crate::ports::cache::{Cache, Slot, Versioned};
use crate::ports::{PortError, Probe};

/// The version in what a key holds, and whether it is a value (`V`) or a floor (`F`).
const HELD: &str = r#"
local function held(key)
  local cur = redis.call('GET', key)
  if not cur then return nil end
  local bar = string.find(cur, '|', 2, true)
  return string.sub(cur, 1, 1), tonumber(string.sub(cur, 2, bar - 1))
end
"#;

/// KEYS: the keys; ARGV[1]: ttl in ms; then a version and a value per key.
const PUT: &str = r#"
for i, key in ipairs(KEYS) do
  local v = tonumber(ARGV[2 * i])
  local kind, at = held(key)
  if not kind or (kind == 'V' and v > at) or (kind == 'F' and v >= at) then
    redis.call('SET', key, 'V' .. ARGV[2 * i] .. '|' .. ARGV[2 * i + 1], 'PX', ARGV[1])
  end
end
return 0
"#;

/// KEYS[1]: the key; ARGV: the announced version, ttl in ms.
const INVALIDATE: &str = r#"
local kind, at = held(KEYS[1])
if not kind or at < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], 'F' .. ARGV[1] .. '|', 'PX', ARGV[2])
end
return 0
"#;

#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    put: Script,
    invalidate: Script,
}

impl RedisCache {
    pub fn new(conn: ConnectionManager) -> Self {
        RedisCache {
            conn,
            put: Script::new(&format!("{HELD}{PUT}")),
            invalidate: Script::new(&format!("{HELD}{INVALIDATE}")),
        }
    }
}

/// What a key holds, read back; `None` for anything unreadable (treated as a miss).
fn slot(raw: &[u8]) -> Option<Slot> {
    let bar = raw.iter().position(|b| *b == b'|')?;
    let version: u64 = std::str::from_utf8(raw.get(1..bar)?).ok()?.parse().ok()?;
    match raw.first()? {
        b'V' => Some(Slot::Value { version, value: raw[bar + 1..].to_vec() }),
        b'F' => Some(Slot::Floor { version }),
        _ => None,
    }
}

fn millis(ttl: Duration) -> u64 {
    ttl.as_millis().max(1) as u64
}

#[async_trait]
impl Probe for RedisCache {
    async fn ping(&self) -> Result<(), PortError> {
        super::ping(&self.conn).await
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, PortError> {
        if keys.is_empty() {
            // MGET with no key is an error in Redis.
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let raw: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(keys).query_async(&mut conn).await.map_err(err)?;
        Ok(raw.into_iter().map(|r| r.as_deref().and_then(slot).and_then(Slot::value)).collect())
    }

    async fn put_many(&self, entries: &[Versioned], ttl: Duration) -> Result<(), PortError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut invocation = self.put.prepare_invoke();
        invocation.arg(millis(ttl));
        for e in entries {
            invocation.key(&e.key).arg(e.version).arg(&e.value);
        }
        let mut conn = self.conn.clone();
        invocation.invoke_async::<()>(&mut conn).await.map_err(err)
    }

    async fn invalidate(&self, key: &str, version: u64, ttl: Duration) -> Result<(), PortError> {
        let mut conn = self.conn.clone();
        self.invalidate.key(key).arg(version).arg(millis(ttl)).invoke_async::<()>(&mut conn).await.map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_values_read_back() {
        assert_eq!(slot(b"V12|{\"a\":1}"), Some(Slot::Value { version: 12, value: b"{\"a\":1}".to_vec() }));
        assert_eq!(slot(b"V3|a|b"), Some(Slot::Value { version: 3, value: b"a|b".to_vec() }));
        assert_eq!(slot(b"F7|"), Some(Slot::Floor { version: 7 }));
        assert_eq!(slot(b"garbage"), None);
        assert_eq!(slot(b"Vx|1"), None);
    }
}
