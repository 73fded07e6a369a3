//! Products by id, kept in this process in front of a store that is a round
//! trip away (MySQL), and exact. This service's own writes replace or end
//! their entries as they commit; the product events, which every instance's
//! writes publish, announce the others' changes (`cache_follower`). An entry
//! is a versioned `Slot`, so it never goes back in time: a read that fetched a
//! row before a change cannot put it back after the change was announced.
//!
//! It serves only once its follower is positioned on the topic: before that,
//! another instance's change could go by unseen. Entries live at most their
//! TTL, which bounds how stale an entry can get while the bus is unreachable
//! and another instance changes the product (one instance alone is exact).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use moka::ops::compute::Op;
use moka::sync::Cache as Moka;
use uuid::Uuid;

use super::domain::Product;
use crate::ports::cache::Slot;
use crate::telemetry::Metrics;

/// Most products kept; the least useful go first beyond it.
const CAPACITY: u64 = 50_000;

/// What a lookup found.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Hit(Arc<Product>),
    /// Not held: read the store, then `fill` with what it gave.
    Miss,
    /// The cache is not serving: read the store and leave the cache alone.
    Off,
}

pub struct ReadCache {
    entries: Moka<Uuid, Slot<Arc<Product>>>,
    serving: AtomicBool,
    metrics: Option<Arc<Metrics>>,
}

impl ReadCache {
    /// A cache whose entries live at most `ttl`, off until `serve` is called.
    pub fn new(ttl: Duration) -> Self {
        ReadCache {
            entries: Moka::builder().max_capacity(CAPACITY).time_to_live(ttl).build(),
            serving: AtomicBool::new(false),
            metrics: None,
        }
    }

    /// Counts its hits and misses in `metrics`.
    pub fn observed(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// From now on every change is announced: lookups may hit and misses fill.
    /// Never undone (the follower resumes where it was after a bus outage).
    pub fn serve(&self) {
        self.serving.store(true, Ordering::Release);
    }

    pub fn lookup(&self, id: Uuid) -> Lookup {
        if !self.serving.load(Ordering::Acquire) {
            return Lookup::Off;
        }
        let found = self.entries.get(&id).and_then(Slot::value);
        if let Some(metrics) = &self.metrics {
            let hit = u64::from(found.is_some());
            Metrics::cache_lookup(&metrics.product_read_cache, hit, 1 - hit);
        }
        match found {
            Some(product) => Lookup::Hit(product),
            None => Lookup::Miss,
        }
    }

    /// Keeps `product`, read from the store after a `Miss` or just written,
    /// unless the cache knows a newer version of it.
    pub fn fill(&self, product: &Product) {
        if !self.serving.load(Ordering::Acquire) {
            return;
        }
        let version = product.version;
        let slot = Slot::Value { version, value: Arc::new(product.clone()) };
        self.write_if(product.id, slot, |held| held.accepts(version));
    }

    /// Product `id` is at `version` now (a change, or a deletion one past the
    /// last): an older entry goes, and nothing older may land until it expires.
    pub fn announce(&self, id: Uuid, version: u64) {
        self.write_if(id, Slot::Floor { version }, |held| held.outdated_by(version));
    }

    /// Drops what is held for `id` (a change whose version is unknown).
    pub fn forget(&self, id: Uuid) {
        self.entries.invalidate(&id);
    }

    fn write_if(&self, id: Uuid, slot: Slot<Arc<Product>>, allowed: impl FnOnce(&Slot<Arc<Product>>) -> bool) {
        self.entries.entry(id).and_compute_with(|held| match held {
            Some(held) if !allowed(held.value()) => Op::Nop,
            _ => Op::Put(slot),
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kernel::money::Money;

    fn product(id: Uuid, version: u64, name: &str) -> Product {
        let now = crate::kernel::clock::now();
        Product {
            id,
            name: name.into(),
            description: String::new(),
            price: Money::from_cents(100),
            stock: 1,
            category: "general".into(),
            image_url: None,
            version,
            created_at: now,
            updated_at: now,
        }
    }

    fn serving() -> ReadCache {
        let cache = ReadCache::new(Duration::from_secs(60));
        cache.serve();
        cache
    }

    fn held(cache: &ReadCache, id: Uuid) -> Option<u64> {
        match cache.lookup(id) {
            Lookup::Hit(p) => Some(p.version),
            _ => None,
        }
    }

    #[test]
    fn it_neither_serves_nor_fills_before_it_follows_the_changes() {
        let cache = ReadCache::new(Duration::from_secs(60));
        let id = Uuid::new_v4();
        cache.fill(&product(id, 1, "a"));
        assert_eq!(cache.lookup(id), Lookup::Off);
        cache.serve();
        assert_eq!(cache.lookup(id), Lookup::Miss, "what was read before serving was not kept");
    }

    #[test]
    fn a_read_from_before_a_change_cannot_land_after_it() {
        let cache = serving();
        let id = Uuid::new_v4();
        cache.fill(&product(id, 2, "v2"));
        cache.announce(id, 3);
        assert_eq!(cache.lookup(id), Lookup::Miss, "the announced change dropped the old entry");
        cache.fill(&product(id, 2, "v2 read before the change"));
        assert_eq!(held(&cache, id), None);
        cache.fill(&product(id, 3, "v3"));
        assert_eq!(held(&cache, id), Some(3));
        cache.fill(&product(id, 2, "late"));
        assert_eq!(held(&cache, id), Some(3), "an entry never goes back in time");
    }

    #[test]
    fn hits_and_misses_are_counted() {
        let metrics = Metrics::new();
        let cache = ReadCache::new(Duration::from_secs(60)).observed(metrics.clone());
        cache.serve();
        let id = Uuid::new_v4();
        assert_eq!(cache.lookup(id), Lookup::Miss);
        cache.fill(&product(id, 1, "a"));
        assert!(matches!(cache.lookup(id), Lookup::Hit(_)));
        assert!(matches!(cache.lookup(id), Lookup::Hit(_)));
        let text = metrics.render();
        assert!(text.contains(r#"agora_product_read_cache_lookups_total{result="miss"} 1"#), "{text}");
        assert!(text.contains(r#"agora_product_read_cache_lookups_total{result="hit"} 2"#), "{text}");
    }

    #[test]
    fn a_deleted_product_stays_out_and_an_old_announcement_changes_nothing() {
        let cache = serving();
        let id = Uuid::new_v4();
        cache.fill(&product(id, 4, "v4"));
        cache.announce(id, 4);
        assert_eq!(held(&cache, id), Some(4), "its own version announced again keeps the entry");
        cache.announce(id, 5);
        cache.fill(&product(id, 4, "read before the delete"));
        assert_eq!(cache.lookup(id), Lookup::Miss);
        cache.forget(id);
        assert_eq!(cache.lookup(id), Lookup::Miss);
    }
}
