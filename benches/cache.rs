//! Benchmarks of the cache hot paths: the product cache round trip a cart view
//! makes, the carts service's cache-aside lookup when every product is cached,
//! and one rate-limit check.

#![allow(clippy::expect_used)] // set-up failures should stop a bench loudly

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::{MemoryCache, MemoryCartStore, MemoryRateLimiter};
use agora::carts::CartService;
use agora::carts::domain::ProductSnapshot;
use agora::carts::ports::ProductCatalog;
use agora::carts::service::product_key;
use agora::kernel::money::Money;
use agora::ports::PortError;
use agora::ports::Probe;
use agora::ports::cache::{Cache, Versioned};
use agora::ports::rate_limit::RateLimiter;
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;

/// A catalogue that is never reached when the cache is warm; reaching it fails the bench.
struct Unreachable;

#[async_trait::async_trait]
impl Probe for Unreachable {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl ProductCatalog for Unreachable {
    async fn get_many(&self, _: &[Uuid]) -> Result<Vec<ProductSnapshot>, PortError> {
        Err(PortError::unavailable("catalog", "the bench expects every product cached"))
    }
}

fn snapshot(id: Uuid) -> ProductSnapshot {
    ProductSnapshot {
        id,
        name: "Bench product".into(),
        price: Money::from_cents(1999),
        stock: 10,
        image_url: None,
        version: 1,
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    let cache = Arc::new(MemoryCache::new());
    let entries: Vec<Versioned> = ids
        .iter()
        .map(|id| Versioned {
            key: product_key("agora", *id),
            version: 1,
            value: serde_json::to_vec(&snapshot(*id)).expect("json"),
        })
        .collect();
    rt.block_on(cache.put_many(&entries, Duration::from_secs(3600))).expect("fill");
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();

    c.bench_function("memory_cache_get_many_20", |b| {
        b.to_async(&rt).iter(|| async { black_box(cache.get_many(black_box(&keys)).await.expect("get")) })
    });

    let service = CartService::new(
        Arc::new(MemoryCartStore::new()),
        cache.clone(),
        Arc::new(Unreachable),
        Duration::from_secs(3600),
        "agora",
    );
    c.bench_function("cart_products_20_all_cached", |b| {
        b.to_async(&rt).iter(|| async { black_box(service.products(black_box(&ids)).await.expect("all cached")) })
    });

    // A 1 ms window keeps the log short however many iterations run.
    let limiter = MemoryRateLimiter::new();
    c.bench_function("rate_limiter_check", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(limiter.check("ratelimit:127.0.0.1", u32::MAX, Duration::from_millis(1)).await.expect("check"))
        })
    });
}

criterion_group!(cache_hot_paths, benches);
criterion_main!(cache_hot_paths);
