//! Benchmarks of the hot paths, in process (no sockets: `docs/benchmarks.md`
//! has the figures over HTTP):
//! - the gateway path: the whole system's router driven directly, for `/health`,
//!   a product (browse) and a 10-line cart (view), every service in-process;
//! - the cart view assembly: the carts service pricing a 10-line cart from a warm cache;
//! - the cache round trip a cart view makes, and one rate-limit check, on the
//!   memory adapters and, when `AGORA_REDIS__URL` is set, on Redis;
//! - when `AGORA_PRODUCTS__MYSQL_URL` and `AGORA_KAFKA__BROKERS` are set, the
//!   outbox relay's throughput (MySQL to Kafka), printed as a `RESULT` line: a
//!   throughput, not a per-call time, so it is measured outside criterion.

#![allow(clippy::expect_used)] // set-up failures should stop a bench loudly

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::{MemoryCache, MemoryCartStore, MemoryRateLimiter};
use agora::adapters::redis::{RedisCache, RedisRateLimiter};
use agora::carts::CartService;
use agora::carts::domain::ProductSnapshot;
use agora::carts::ports::{CartStore, ProductCatalog};
use agora::carts::service::product_key;
use agora::config::Config;
use agora::kernel::money::Money;
use agora::ports::cache::{Cache, Versioned};
use agora::ports::rate_limit::RateLimiter;
use agora::ports::{PortError, Probe};
use agora::runtime::Adapters;
use agora::runtime::app::assemble;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use criterion::{Criterion, criterion_group};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tower::ServiceExt;
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

fn cached(ids: &[Uuid]) -> Vec<Versioned> {
    ids.iter()
        .map(|id| Versioned {
            key: product_key("bench", *id),
            version: 1,
            value: serde_json::to_vec(&snapshot(*id)).expect("json"),
        })
        .collect()
}

// --- The gateway path ------------------------------------------------------------

/// The whole system's router, as a client on 127.0.0.1 reaches it.
struct System {
    router: Router,
}

impl System {
    /// The answer's status and body, read whole (not parsed: a client's work, not the server's).
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Bytes) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let mut req = req.body(body).expect("request");
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let response = self.router.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body"))
    }

    async fn json(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let (status, bytes) = self.call(method, path, token, body).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

/// The system in memory with 10 products, one user and a cart holding all of them.
async fn shop() -> (System, String, String) {
    let mut config = Config::default();
    config.demo.seed_catalogue = false;
    config.gateway.rate_limit.requests = u32::MAX;
    let adapters = Adapters::connect(&config, &agora::runtime::ALL_SERVICES).await.expect("memory adapters");
    let system = System { router: assemble(&config, &adapters).await.expect("assembled").router };
    let login = json!({"email": config.users.admin_email, "password": config.users.admin_password.expose()});
    let (_, admin) = system.json(Method::POST, "/api/users/login", None, Some(login)).await;
    let admin = admin["data"]["token"].as_str().expect("admin token").to_string();
    let user = json!({"name": "Bench", "email": "bench@example.com", "password": "bench-password"});
    let (_, user) = system.json(Method::POST, "/api/users/register", None, Some(user)).await;
    let user = user["data"]["token"].as_str().expect("user token").to_string();
    let mut first = String::new();
    for i in 0..10 {
        let product = json!({"name": format!("Bench {i}"), "price": 19.99, "stock": 1_000_000, "category": "bench"});
        let (status, created) = system.json(Method::POST, "/api/products", Some(&admin), Some(product)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["data"]["id"].clone();
        let (status, _) = system.json(Method::POST, "/api/cart/add", Some(&user), Some(json!({"productId": id}))).await;
        assert_eq!(status, StatusCode::OK);
        if first.is_empty() {
            first = format!("/api/products/{}", id.as_str().expect("id"));
        }
    }
    (system, user, first)
}

fn gateway_path(c: &mut Criterion, rt: &Runtime) {
    let (system, user, product) = rt.block_on(shop());
    let (status, cart) = rt.block_on(system.json(Method::GET, "/api/cart", Some(&user), None));
    assert_eq!((status, cart["data"]["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(10)));
    c.bench_function("gateway_health", |b| {
        b.to_async(rt).iter(|| async { black_box(system.call(Method::GET, "/health", None, None).await) })
    });
    c.bench_function("gateway_browse_product", |b| {
        b.to_async(rt).iter(|| async { black_box(system.call(Method::GET, &product, None, None).await) })
    });
    c.bench_function("gateway_cart_view_10_lines", |b| {
        b.to_async(rt).iter(|| async { black_box(system.call(Method::GET, "/api/cart", Some(&user), None).await) })
    });
}

// --- The carts service and the adapters ------------------------------------------------

fn cart_view_assembly(c: &mut Criterion, rt: &Runtime) {
    let ids: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    let cache = Arc::new(MemoryCache::new());
    rt.block_on(cache.put_many(&cached(&ids), Duration::from_secs(3600))).expect("fill");
    let store = Arc::new(MemoryCartStore::new());
    let service = CartService::new(store.clone(), cache, Arc::new(Unreachable), Duration::from_secs(3600), "bench");
    let user = Uuid::new_v4();
    rt.block_on(async {
        for id in &ids {
            store.add(user, &snapshot(*id), 1, 999).await.expect("line");
        }
    });
    c.bench_function("cart_view_10_lines_all_cached", |b| {
        b.to_async(rt).iter(|| async { black_box(service.view(user).await.expect("view")) })
    });
}

fn cache_and_limiter(
    c: &mut Criterion,
    rt: &Runtime,
    adapter: &str,
    cache: Arc<dyn Cache>,
    limiter: Arc<dyn RateLimiter>,
) {
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    let entries = cached(&ids);
    rt.block_on(cache.put_many(&entries, Duration::from_secs(3600))).expect("fill");
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    c.bench_function(&format!("{adapter}_cache_get_many_20"), |b| {
        b.to_async(rt).iter(|| async { black_box(cache.get_many(black_box(&keys)).await.expect("get")) })
    });
    let key = format!("bench:ratelimit:{}", Uuid::new_v4());
    c.bench_function(&format!("{adapter}_rate_limit_check"), |b| {
        b.to_async(rt)
            .iter(|| async { black_box(limiter.check(&key, u32::MAX, Duration::from_secs(60)).await.expect("check")) })
    });
}

fn benches(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    gateway_path(c, &rt);
    cart_view_assembly(c, &rt);
    cache_and_limiter(c, &rt, "memory", Arc::new(MemoryCache::new()), Arc::new(MemoryRateLimiter::new()));
    match std::env::var("AGORA_REDIS__URL") {
        Ok(url) if !url.trim().is_empty() => {
            let conn = rt.block_on(agora::adapters::redis::connect(&url, Duration::from_secs(5))).expect("Redis");
            let cache = Arc::new(RedisCache::new(conn.clone()));
            cache_and_limiter(c, &rt, "redis", cache, Arc::new(RedisRateLimiter::new(conn)));
        }
        _ => eprintln!("AGORA_REDIS__URL is not set: the Redis adapters are not measured"),
    }
}

// --- The outbox relay ----------------------------------------------------------------

/// Events per relay run.
const RELAY_EVENTS: usize = 10_000;

/// Commits `RELAY_EVENTS` product creations (each with its outbox event), then
/// times the relay publishing them all; three runs, the median printed.
fn relay_throughput(rt: &Runtime) {
    let (Ok(mysql), Ok(brokers)) = (std::env::var("AGORA_PRODUCTS__MYSQL_URL"), std::env::var("AGORA_KAFKA__BROKERS"))
    else {
        eprintln!("AGORA_PRODUCTS__MYSQL_URL and AGORA_KAFKA__BROKERS are not both set: the relay is not measured");
        return;
    };
    let mut config = Config::default();
    config.products.mysql_url = Some(mysql);
    config.kafka.brokers = Some(brokers);
    config.kafka.topic = format!("bench-relay-{}", Uuid::new_v4().simple());
    let adapters =
        rt.block_on(Adapters::connect(&config, &[agora::runtime::ServiceName::Products])).expect("MySQL and Kafka");
    let wake = Arc::new(tokio::sync::Notify::new());
    let service = Arc::new(agora::products::ProductService::new(adapters.products.clone(), wake.clone()));
    let relay = agora::products::relay::OutboxRelay::new(
        adapters.outbox.clone(),
        adapters.bus.clone(),
        &config.kafka.topic,
        wake,
        Duration::from_secs(1),
    );
    // What an earlier run left pending goes first, untimed.
    rt.block_on(relay.drain()).expect("drain");
    let mut rates = Vec::new();
    for _ in 0..3 {
        rt.block_on(async {
            let tasks: Vec<_> = (0..16)
                .map(|t| {
                    let service = service.clone();
                    tokio::spawn(async move {
                        for i in (t..RELAY_EVENTS).step_by(16) {
                            let fields = agora::products::domain::ProductFields {
                                name: Some(format!("Relay bench {i}")),
                                price: Some(Money::from_cents(1999)),
                                stock: Some(10),
                                category: Some("bench".into()),
                                ..Default::default()
                            };
                            service.create(fields).await.expect("create");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("creator");
            }
        });
        let started = std::time::Instant::now();
        let published = rt.block_on(relay.drain()).expect("drain");
        let seconds = started.elapsed().as_secs_f64();
        assert!(published >= RELAY_EVENTS, "published {published} of {RELAY_EVENTS}");
        rates.push(published as f64 / seconds);
        eprintln!("relay: {published} events in {seconds:.2} s");
    }
    rates.sort_by(f64::total_cmp);
    println!("RESULT relay_mysql_to_kafka events={RELAY_EVENTS} runs=3 median_events_per_s={:.0}", rates[1]);
}

criterion_group!(hot_paths, benches);

fn main() {
    hot_paths();
    relay_throughput(&Runtime::new().expect("runtime"));
    Criterion::default().configure_from_args().final_summary();
}
