//! The `Cache` contract.

use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::MemoryCache;
use agora::ports::cache::{Cache, Versioned};
use tokio::time::timeout;

use super::{WAIT, unique};

/// `cache_contract!(name, || async { ... as Arc<dyn Cache> })`: a module `name` with one
/// `#[tokio::test]` per contract test, each on a fresh cache from the factory. Attributes before
/// `name` (e.g. `#[ignore = "needs Redis"]`) go on every test.
macro_rules! cache_contract {
    ($(#[$attr:meta])* $name:ident, $make:expr) => {
        $crate::contract::port_contract!(cache, [$(#[$attr])*] $name, $make;
            ping_answers,
            miss_then_hit,
            get_many_keeps_order_with_misses,
            put_many_stores_every_entry_and_newer_versions_replace,
            an_entry_never_goes_back_in_time,
            invalidation_keeps_older_writes_out,
            entries_expire_after_their_ttl,
            empty_batches,
            values_are_bytes,
        );
    };
}

cache_contract!(memory, || async { Some(Arc::new(MemoryCache::new()) as Arc<dyn Cache>) });
// The same contract on the real server (scripts/infra up).
cache_contract!(redis, || async { crate::real::cache().await.map(|c| Arc::new(c) as Arc<dyn Cache>) });

const TTL: Duration = Duration::from_secs(60);

async fn get(cache: &dyn Cache, keys: &[&String]) -> Vec<Option<Vec<u8>>> {
    let keys: Vec<String> = keys.iter().map(|key| key.to_string()).collect();
    timeout(WAIT, cache.get_many(&keys)).await.expect("get_many timed out").expect("get_many failed")
}

/// Puts each `(key, version, value)`.
async fn put(cache: &dyn Cache, entries: &[(&String, u64, &[u8])], ttl: Duration) {
    let entries: Vec<Versioned> = entries
        .iter()
        .map(|(key, version, value)| Versioned { key: key.to_string(), version: *version, value: value.to_vec() })
        .collect();
    timeout(WAIT, cache.put_many(&entries, ttl)).await.expect("put_many timed out").expect("put_many failed");
}

async fn invalidate(cache: &dyn Cache, key: &str, version: u64) {
    timeout(WAIT, cache.invalidate(key, version, TTL)).await.expect("invalidate timed out").expect("invalidate failed");
}

pub async fn ping_answers(cache: Arc<dyn Cache>) {
    timeout(Duration::from_secs(1), cache.ping()).await.expect("ping took over a second").expect("ping failed");
}

pub async fn miss_then_hit(cache: Arc<dyn Cache>) {
    let key = unique("cache");
    assert_eq!(get(&*cache, &[&key]).await, [None]);
    put(&*cache, &[(&key, 1, b"value")], TTL).await;
    assert_eq!(get(&*cache, &[&key]).await, [Some(b"value".to_vec())]);
}

pub async fn get_many_keeps_order_with_misses(cache: Arc<dyn Cache>) {
    let (a, b, c) = (unique("cache-a"), unique("cache-b"), unique("cache-c"));
    put(&*cache, &[(&c, 1, b"c"), (&a, 1, b"a")], TTL).await;
    assert_eq!(
        get(&*cache, &[&a, &b, &c, &a, &b]).await,
        [Some(b"a".to_vec()), None, Some(b"c".to_vec()), Some(b"a".to_vec()), None]
    );
    assert_eq!(get(&*cache, &[&b, &c]).await, [None, Some(b"c".to_vec())]);
}

/// Every entry of a batch lands, and a newer version replaces an older one.
pub async fn put_many_stores_every_entry_and_newer_versions_replace(cache: Arc<dyn Cache>) {
    let keys: Vec<String> = (0..20).map(|i| unique(&format!("cache-{i}"))).collect();
    let first: Vec<(&String, u64, &[u8])> = keys.iter().map(|key| (key, 1, b"first".as_slice())).collect();
    put(&*cache, &first, TTL).await;
    let refs: Vec<&String> = keys.iter().collect();
    assert_eq!(get(&*cache, &refs).await, vec![Some(b"first".to_vec()); 20]);

    put(&*cache, &[(&keys[3], 2, b"second"), (&keys[17], 5, b"second")], TTL).await;
    let got = get(&*cache, &refs).await;
    for (i, value) in got.iter().enumerate() {
        let expected: &[u8] = if i == 3 || i == 17 { b"second" } else { b"first" };
        assert_eq!(value.as_deref(), Some(expected), "key {i}");
    }
}

/// A write never takes a key back in time, nor rewrites the version it holds.
pub async fn an_entry_never_goes_back_in_time(cache: Arc<dyn Cache>) {
    let key = unique("cache-versions");
    put(&*cache, &[(&key, 5, b"v5")], TTL).await;
    put(&*cache, &[(&key, 4, b"v4")], TTL).await;
    put(&*cache, &[(&key, 5, b"another v5")], TTL).await;
    assert_eq!(get(&*cache, &[&key]).await, [Some(b"v5".to_vec())]);
    put(&*cache, &[(&key, 6, b"v6")], TTL).await;
    assert_eq!(get(&*cache, &[&key]).await, [Some(b"v6".to_vec())]);
}

/// An invalidation drops an older entry and keeps older writes out; the announced data may land.
pub async fn invalidation_keeps_older_writes_out(cache: Arc<dyn Cache>) {
    let (key, kept, never) = (unique("cache-gone"), unique("cache-kept"), unique("cache-never"));
    put(&*cache, &[(&key, 1, b"v1"), (&kept, 1, b"other")], TTL).await;
    invalidate(&*cache, &key, 2).await;
    assert_eq!(get(&*cache, &[&key, &kept]).await, [None, Some(b"other".to_vec())], "only that key is dropped");
    put(&*cache, &[(&key, 1, b"v1, read before the change")], TTL).await;
    assert_eq!(get(&*cache, &[&key]).await, [None], "an older write landed after the invalidation");
    put(&*cache, &[(&key, 2, b"v2")], TTL).await;
    assert_eq!(get(&*cache, &[&key]).await, [Some(b"v2".to_vec())], "the announced version may land");
    // An older invalidation changes nothing; one of a key never written is fine.
    invalidate(&*cache, &key, 1).await;
    assert_eq!(get(&*cache, &[&key]).await, [Some(b"v2".to_vec())]);
    invalidate(&*cache, &never, 7).await;
    put(&*cache, &[(&never, 6, b"v6")], TTL).await;
    assert_eq!(get(&*cache, &[&never]).await, [None]);
}

pub async fn entries_expire_after_their_ttl(cache: Arc<dyn Cache>) {
    let (short, long) = (unique("cache-short"), unique("cache-long"));
    put(&*cache, &[(&short, 1, b"short")], Duration::from_secs(1)).await;
    put(&*cache, &[(&long, 1, b"long")], TTL).await;
    assert_eq!(get(&*cache, &[&short]).await, [Some(b"short".to_vec())]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(&*cache, &[&short, &long]).await, [None, Some(b"long".to_vec())]);
}

/// No keys is a valid request (Redis' MGET would refuse it: the adapter must not send one).
pub async fn empty_batches(cache: Arc<dyn Cache>) {
    assert_eq!(get(&*cache, &[]).await, []);
    put(&*cache, &[], TTL).await;
}

/// Values are arbitrary bytes, and an empty value is a hit, not a miss.
pub async fn values_are_bytes(cache: Arc<dyn Cache>) {
    let (binary, empty) = (unique("cache-binary"), unique("cache-empty"));
    let bytes: Vec<u8> = (0..=255).collect();
    put(&*cache, &[(&binary, 1, &bytes), (&empty, 1, b"")], TTL).await;
    assert_eq!(get(&*cache, &[&binary, &empty]).await, [Some(bytes), Some(Vec::new())]);
}
