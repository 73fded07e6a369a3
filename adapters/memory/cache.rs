//! The in-memory cache: the `Cache` port on a moka cache with a TTL per entry,
//! for tests and single-process runs (bounded, so it cannot grow without end).
//! Each write is decided atomically against what the key holds.

use std::time::Duration;

use async_trait::async_trait;
use moka::ops::compute::Op;
use moka::sync::Cache as Moka;

use crate::kernel::ttl::{PerEntryTtl, Timed};
use crate::ports::cache::{Cache, Slot, Versioned};
use crate::ports::{PortError, Probe};

/// Most entries kept; the least useful go first beyond it.
const CAPACITY: u64 = 1_000_000;

pub struct MemoryCache {
    entries: Moka<String, Timed<Slot>>,
}

impl MemoryCache {
    pub fn new() -> Self {
        MemoryCache { entries: Moka::builder().max_capacity(CAPACITY).expire_after(PerEntryTtl).build() }
    }

    /// Writes `slot` for `ttl` when `allowed` says so of what the key holds.
    fn write_if(&self, key: &str, slot: Slot, ttl: Duration, allowed: impl FnOnce(&Slot) -> bool) {
        self.entries.entry(key.to_string()).and_compute_with(|held| match held {
            Some(held) if !allowed(&held.value().value) => Op::Nop,
            _ => Op::Put(Timed { value: slot, ttl }),
        });
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
        Ok(keys.iter().map(|key| self.entries.get(key).and_then(|e| e.value.value())).collect())
    }

    async fn put_many(&self, entries: &[Versioned], ttl: Duration) -> Result<(), PortError> {
        for e in entries {
            let slot = Slot::Value { version: e.version, value: e.value.clone() };
            self.write_if(&e.key, slot, ttl, |held| held.accepts(e.version));
        }
        Ok(())
    }

    async fn invalidate(&self, key: &str, version: u64, ttl: Duration) -> Result<(), PortError> {
        self.write_if(key, Slot::Floor { version }, ttl, |held| held.outdated_by(version));
        Ok(())
    }
}
