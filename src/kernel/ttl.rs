//! Per-entry time to live for moka caches: a value carries its own TTL, which
//! the cache honours from the moment the entry is written.

use std::time::{Duration, Instant};

use moka::Expiry;

/// A cached value and how long it may live.
#[derive(Debug, Clone)]
pub struct Timed<V> {
    pub value: V,
    pub ttl: Duration,
}

/// The policy reading `Timed::ttl`; a rewrite restarts the clock.
pub struct PerEntryTtl;

impl<K, V> Expiry<K, Timed<V>> for PerEntryTtl {
    fn expire_after_create(&self, _: &K, value: &Timed<V>, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(&self, _: &K, value: &Timed<V>, _: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(value.ttl)
    }
}
