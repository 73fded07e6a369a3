//! The in-memory cache: the `Cache` port on a `TtlMap`, for tests and single-process runs.

use std::time::Duration;

use async_trait::async_trait;

use super::ttl_map::TtlMap;
use crate::ports::cache::Cache;
use crate::ports::{PortError, Probe};

#[derive(Default)]
pub struct MemoryCache {
    entries: TtlMap<String, Vec<u8>>,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Probe for MemoryCache {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, PortError> {
        Ok(keys.iter().map(|key| self.entries.get(key.as_str())).collect())
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> Result<(), PortError> {
        for (key, value) in entries {
            self.entries.insert(key.clone(), value.clone(), ttl);
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.entries.remove(key);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn long_ttl_outlives_short_one() {
        let cache = MemoryCache::new();
        let day = Duration::from_secs(24 * 3600);
        cache.set_many(&[("long".into(), b"l".to_vec())], day).await.unwrap();
        cache.set_many(&[("short".into(), b"s".to_vec())], Duration::from_secs(60)).await.unwrap();
        let keys = ["long".to_string(), "short".to_string()];

        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(cache.get_many(&keys).await.unwrap(), [Some(b"l".to_vec()), Some(b"s".to_vec())]);

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get_many(&keys).await.unwrap(), [Some(b"l".to_vec()), None]);

        tokio::time::advance(day - Duration::from_secs(61)).await;
        assert_eq!(cache.get_many(&keys).await.unwrap(), [Some(b"l".to_vec()), None]);

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get_many(&keys).await.unwrap(), [None, None]);
    }
}
