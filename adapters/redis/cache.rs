//! `Cache` on Redis: MGET for a whole cart in one round trip, a pipelined
//! SET … PX per entry, DEL.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::err;
use crate::ports::cache::Cache;
use crate::ports::{PortError, Probe};

#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
}

impl RedisCache {
    pub fn new(conn: ConnectionManager) -> Self {
        RedisCache { conn }
    }
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
        redis::cmd("MGET").arg(keys).query_async(&mut conn).await.map_err(err)
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> Result<(), PortError> {
        if entries.is_empty() {
            return Ok(());
        }
        let millis = ttl.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        for (key, value) in entries {
            pipe.cmd("SET").arg(key).arg(value).arg("PX").arg(millis).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(err)
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL").arg(key).query_async::<()>(&mut conn).await.map_err(err)
    }
}
