//! A thread-safe map whose entries expire: the store behind the in-memory cache and the gateway's auth cache.
//!
//! Time is `tokio::time::Instant`, so tests can pause and advance the clock.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Expired entries are only dropped when read, so a sweep runs every this many inserts, or once the map
/// is larger, after as many inserts as it kept at the last sweep: memory stays within about twice the
/// live entries and a sweep's O(len) cost is amortised to O(1) per insert.
const SWEEP_EVERY: usize = 1024;

pub struct TtlMap<K, V> {
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    entries: HashMap<K, Entry<V>>,
    inserts_since_sweep: usize,
    kept_at_sweep: usize,
}

struct Entry<V> {
    value: V,
    /// `None`: the TTL is too long for the clock to represent, so the entry never expires.
    expires_at: Option<Instant>,
}

impl<V> Entry<V> {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

impl<K: Eq + Hash, V> Inner<K, V> {
    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, entry| entry.is_live(now));
        self.inserts_since_sweep = 0;
        self.kept_at_sweep = self.entries.len();
        // `retain` keeps the capacity: give it back after a burst so memory follows the live entries.
        if self.entries.capacity() > 4 * self.entries.len().max(SWEEP_EVERY) {
            self.entries.shrink_to(2 * self.entries.len());
        }
    }
}

impl<K: Eq + Hash, V> TtlMap<K, V> {
    pub fn new() -> Self {
        TtlMap { inner: Mutex::new(Inner { entries: HashMap::new(), inserts_since_sweep: 0, kept_at_sweep: 0 }) }
    }

    /// The value under `key` if it has not expired; an expired entry is removed.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(entry) if entry.is_live(now) => Some(entry.value.clone()),
            Some(_) => {
                inner.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` under `key` for `ttl`, replacing any previous entry (and its TTL).
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        let entry = Entry { value, expires_at: now.checked_add(ttl) };
        let mut inner = self.lock();
        inner.entries.insert(key, entry);
        inner.inserts_since_sweep += 1;
        if inner.inserts_since_sweep >= SWEEP_EVERY.max(inner.kept_at_sweep) {
            inner.sweep(now);
        }
    }

    /// Removes the entry under `key`, returning its value if it had not expired.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        self.lock().entries.remove(key).filter(|entry| entry.is_live(now)).map(|entry| entry.value)
    }

    /// The number of live entries (drops the expired ones first, so it costs O(len)).
    pub fn len(&self) -> usize {
        let mut inner = self.lock();
        inner.sweep(Instant::now());
        inner.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // Every critical section leaves the map consistent, so a panic elsewhere does not spoil it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Eq + Hash, V> Default for TtlMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn stored<K: Eq + Hash, V>(map: &TtlMap<K, V>) -> usize {
        map.lock().entries.len()
    }

    #[tokio::test(start_paused = true)]
    async fn entries_live_until_their_ttl() {
        let map = TtlMap::new();
        map.insert("session", 7, Duration::from_secs(3600));
        tokio::time::advance(Duration::from_secs(3599)).await;
        assert_eq!(map.get("session"), Some(7));
        assert_eq!(map.len(), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(map.get("session"), None);
        assert_eq!(stored(&map), 0, "an expired entry is removed when read");
    }

    #[tokio::test(start_paused = true)]
    async fn insert_replaces_value_and_ttl() {
        let map = TtlMap::new();
        map.insert(1, "a", Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(8)).await;
        map.insert(1, "b", Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(map.get(&1), Some("b"));
    }

    #[tokio::test(start_paused = true)]
    async fn remove_returns_only_live_values() {
        let map = TtlMap::new();
        map.insert("live", 1, Duration::from_secs(10));
        map.insert("dead", 2, Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(map.remove("live"), Some(1));
        assert_eq!(map.remove("live"), None);
        assert_eq!(map.remove("dead"), None);
        assert!(map.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn huge_ttl_never_expires() {
        let map = TtlMap::new();
        map.insert("k", 1, Duration::MAX);
        tokio::time::advance(Duration::from_secs(10 * 365 * 24 * 3600)).await;
        assert_eq!(map.get("k"), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttl_is_already_expired() {
        let map = TtlMap::new();
        map.insert("k", 1, Duration::ZERO);
        assert_eq!(map.get("k"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_swept_without_reads() {
        let map = TtlMap::new();
        for round in 0..20u64 {
            for i in 0..1000u64 {
                map.insert(round * 1000 + i, i, Duration::from_secs(1));
            }
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        // 20,000 inserts, never read: only recent ones may still be stored.
        assert!(stored(&map) <= 2 * SWEEP_EVERY, "{} entries kept", stored(&map));
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn shared_between_threads() {
        let map = std::sync::Arc::new(TtlMap::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let map = std::sync::Arc::clone(&map);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        map.insert((t, i), i, Duration::from_secs(60));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(map.len(), 2000);
        assert_eq!(map.get(&(3, 499)), Some(499));
    }
}
