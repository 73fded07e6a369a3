//! The `Cache` contract.

use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::MemoryCache;
use agora::ports::cache::Cache;
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
            set_many_stores_every_entry_and_overwrites,
            delete_removes_only_that_key,
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

async fn set(cache: &dyn Cache, entries: &[(&String, &[u8])], ttl: Duration) {
    let entries: Vec<(String, Vec<u8>)> =
        entries.iter().map(|(key, value)| (key.to_string(), value.to_vec())).collect();
    timeout(WAIT, cache.set_many(&entries, ttl)).await.expect("set_many timed out").expect("set_many failed");
}

pub async fn ping_answers(cache: Arc<dyn Cache>) {
    timeout(Duration::from_secs(1), cache.ping()).await.expect("ping took over a second").expect("ping failed");
}

pub async fn miss_then_hit(cache: Arc<dyn Cache>) {
    let key = unique("cache");
    assert_eq!(get(&*cache, &[&key]).await, [None]);
    set(&*cache, &[(&key, b"value")], TTL).await;
    assert_eq!(get(&*cache, &[&key]).await, [Some(b"value".to_vec())]);
}

pub async fn get_many_keeps_order_with_misses(cache: Arc<dyn Cache>) {
    let (a, b, c) = (unique("cache-a"), unique("cache-b"), unique("cache-c"));
    set(&*cache, &[(&c, b"c"), (&a, b"a")], TTL).await;
    assert_eq!(
        get(&*cache, &[&a, &b, &c, &a, &b]).await,
        [Some(b"a".to_vec()), None, Some(b"c".to_vec()), Some(b"a".to_vec()), None]
    );
    assert_eq!(get(&*cache, &[&b, &c]).await, [None, Some(b"c".to_vec())]);
}

pub async fn set_many_stores_every_entry_and_overwrites(cache: Arc<dyn Cache>) {
    let keys: Vec<String> = (0..20).map(|i| unique(&format!("cache-{i}"))).collect();
    let first: Vec<(&String, &[u8])> = keys.iter().map(|key| (key, b"first".as_slice())).collect();
    set(&*cache, &first, TTL).await;
    let refs: Vec<&String> = keys.iter().collect();
    assert_eq!(get(&*cache, &refs).await, vec![Some(b"first".to_vec()); 20]);

    set(&*cache, &[(&keys[3], b"second"), (&keys[17], b"second")], TTL).await;
    let got = get(&*cache, &refs).await;
    for (i, value) in got.iter().enumerate() {
        let expected: &[u8] = if i == 3 || i == 17 { b"second" } else { b"first" };
        assert_eq!(value.as_deref(), Some(expected), "key {i}");
    }
}

pub async fn delete_removes_only_that_key(cache: Arc<dyn Cache>) {
    let (gone, kept, never) = (unique("cache-gone"), unique("cache-kept"), unique("cache-never"));
    set(&*cache, &[(&gone, b"1"), (&kept, b"2")], TTL).await;
    timeout(WAIT, cache.delete(&gone)).await.expect("delete timed out").expect("delete failed");
    assert_eq!(get(&*cache, &[&gone, &kept]).await, [None, Some(b"2".to_vec())]);
    // Deleting a missing key is not an error.
    timeout(WAIT, cache.delete(&never)).await.expect("delete timed out").expect("deleting a missing key failed");
    timeout(WAIT, cache.delete(&gone)).await.expect("delete timed out").expect("deleting twice failed");
}

pub async fn entries_expire_after_their_ttl(cache: Arc<dyn Cache>) {
    let (short, long) = (unique("cache-short"), unique("cache-long"));
    set(&*cache, &[(&short, b"short")], Duration::from_secs(1)).await;
    set(&*cache, &[(&long, b"long")], TTL).await;
    assert_eq!(get(&*cache, &[&short]).await, [Some(b"short".to_vec())]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(&*cache, &[&short, &long]).await, [None, Some(b"long".to_vec())]);
}

/// No keys is a valid request (Redis' MGET would refuse it: the adapter must not send one).
pub async fn empty_batches(cache: Arc<dyn Cache>) {
    assert_eq!(get(&*cache, &[]).await, []);
    set(&*cache, &[], TTL).await;
}

/// Values are arbitrary bytes, and an empty value is a hit, not a miss.
pub async fn values_are_bytes(cache: Arc<dyn Cache>) {
    let (binary, empty) = (unique("cache-binary"), unique("cache-empty"));
    let bytes: Vec<u8> = (0..=255).collect();
    set(&*cache, &[(&binary, &bytes), (&empty, b"")], TTL).await;
    assert_eq!(get(&*cache, &[&binary, &empty]).await, [Some(bytes), Some(Vec::new())]);
}
