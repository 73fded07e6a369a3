//! The in-memory cache: the `Cache` port on a moka cache with a TTL per entry,
//! for tests and single-process runs (bounded, so it cannot grow without end).

use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache as Moka;

use crate::kernel::ttl::{PerEntryTtl, Timed};
use crate::ports::cache::Cache;
use crate::ports::{PortError, Probe};

/// Most entries kept; the least useful go first beyond it.
const CAPACITY: u64 = 1_000_000;

pub struct MemoryCache {
    entries: Moka<String, Timed<Vec<u8>>>,
}

impl MemoryCache {
    pub fn new() -> Self {
        MemoryCache { entries: Moka::builder().max_capacity(CAPACITY).expire_after(PerEntryTtl).build() }
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
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
        Ok(keys.iter().map(|key| self.entries.get(key).map(|e| e.value)).collect())
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> Result<(), PortError> {
        for (key, value) in entries {
            self.entries.insert(key.clone(), Timed { value: value.clone(), ttl });
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.entries.invalidate(key);
        Ok(())
    }
}
