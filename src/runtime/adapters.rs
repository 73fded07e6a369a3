//! The one place that chooses adapters from configuration: an unset URL means
//! the in-memory adapter, a set one the real server — which must answer at
//! start-up, or start-up fails within seconds naming the service and the URL.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;

use super::ServiceName;
use crate::adapters::kafka::KafkaEventBus;
use crate::adapters::memory::{
    MemoryCache, MemoryCartStore, MemoryEventBus, MemoryIdempotencyStore, MemoryProductStore, MemoryRateLimiter,
    MemoryUserStore,
};
use crate::adapters::mongo::MongoUserStore;
use crate::adapters::mysql::MySqlProductStore;
use crate::adapters::postgres::PostgresCartStore;
use crate::adapters::redis::{self as redis_adapters, RedisCache, RedisIdempotencyStore, RedisRateLimiter};
use crate::carts::ports::CartStore;
use crate::config::{Config, configured, shown};
use crate::gateway::ports::IdempotencyStore;
use crate::ports::cache::Cache;
use crate::ports::events::EventBus;
use crate::ports::rate_limit::RateLimiter;
use crate::products::ports::{Outbox, ProductStore};
use crate::users::ports::UserStore;

/// Bound on reaching one configured server at start-up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Every infrastructure port, wired.
#[derive(Clone)]
pub struct Adapters {
    pub users: Arc<dyn UserStore>,
    pub products: Arc<dyn ProductStore>,
    pub outbox: Arc<dyn Outbox>,
    pub carts: Arc<dyn CartStore>,
    pub cache: Arc<dyn Cache>,
    pub limiter: Arc<dyn RateLimiter>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub bus: Arc<dyn EventBus>,
}

impl Adapters {
    pub fn in_memory() -> Self {
        let products = Arc::new(MemoryProductStore::new());
        Adapters {
            users: Arc::new(MemoryUserStore::new()),
            products: products.clone(),
            outbox: products,
            carts: Arc::new(MemoryCartStore::new()),
            cache: Arc::new(MemoryCache::new()),
            limiter: Arc::new(MemoryRateLimiter::new()),
            idempotency: Arc::new(MemoryIdempotencyStore::new()),
            bus: Arc::new(MemoryEventBus::default()),
        }
    }

    /// The adapters the `services` need: real where a URL is configured
    /// (reached concurrently, migrations run), in memory otherwise.
    pub async fn connect(config: &Config, services: &[ServiceName]) -> anyhow::Result<Self> {
        let needs = |s: ServiceName| services.contains(&s);
        let url = |u: &Option<String>| configured(u).map(str::to_string);
        let mongo = url(&config.users.mongo_url).filter(|_| needs(ServiceName::Users));
        let mysql = url(&config.products.mysql_url).filter(|_| needs(ServiceName::Products));
        let postgres = url(&config.carts.postgres_url).filter(|_| needs(ServiceName::Carts));
        let redis = url(&config.redis.url).filter(|_| needs(ServiceName::Carts) || needs(ServiceName::Gateway));
        let kafka = url(&config.kafka.brokers).filter(|_| needs(ServiceName::Products) || needs(ServiceName::Carts));
        let topic = config.kafka.topic.clone();
        let (mongo, mysql, postgres, redis, kafka) = tokio::try_join!(
            maybe(mongo, "users", "MongoDB", |u| async move { MongoUserStore::connect(&u, CONNECT_TIMEOUT).await }),
            maybe(mysql, "products", "MySQL", |u| async move { MySqlProductStore::connect(&u, CONNECT_TIMEOUT).await }),
            maybe(
                postgres,
                "carts",
                "PostgreSQL",
                |u| async move { PostgresCartStore::connect(&u, CONNECT_TIMEOUT).await }
            ),
            maybe(
                redis,
                "gateway/carts",
                "Redis",
                |u| async move { redis_adapters::connect(&u, CONNECT_TIMEOUT).await }
            ),
            maybe(kafka, "products/carts", "Kafka", |u| async move {
                KafkaEventBus::connect(&u, &topic, CONNECT_TIMEOUT).await
            }),
        )?;
        let mut adapters = Self::in_memory();
        if let Some(store) = mongo {
            adapters.users = Arc::new(store);
        }
        if let Some(store) = mysql {
            let store = Arc::new(store);
            adapters.products = store.clone();
            adapters.outbox = store;
        }
        if let Some(store) = postgres {
            adapters.carts = Arc::new(store);
        }
        if let Some(conn) = redis {
            adapters.cache = Arc::new(RedisCache::new(conn.clone()));
            adapters.limiter = Arc::new(RedisRateLimiter::new(conn.clone()));
            adapters.idempotency = Arc::new(RedisIdempotencyStore::new(conn));
        }
        if let Some(bus) = kafka {
            adapters.bus = Arc::new(bus);
        }
        Ok(adapters)
    }
}

/// Connects to `url` if there is one, bounded, with an error naming who needs
/// what where (the URL's password hidden).
async fn maybe<T, F, Fut>(url: Option<String>, service: &str, server: &str, connect: F) -> anyhow::Result<Option<T>>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let Some(url) = url else { return Ok(None) };
    let shown = shown(&url);
    match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), connect(url)).await {
        Ok(Ok(adapter)) => Ok(Some(adapter)),
        Ok(Err(e)) => Err(anyhow!("{service}: cannot use {server} at {shown}: {e:#}")),
        Err(_) => Err(anyhow!("{service}: {server} at {shown} did not answer within {}s", CONNECT_TIMEOUT.as_secs())),
    }
}
