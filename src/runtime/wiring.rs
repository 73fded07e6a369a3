//! Each service built on its adapters, the way every runtime builds it: the
//! all-in-one `App` and `agora serve` call these, so a service is wired once.
//! A `Process` is what the services of one process share: their shutdown
//! state and their metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::adapters::Adapters;
use crate::adapters::http::{HttpProductCatalog, HttpTokenValidator};
use crate::adapters::memory::{MemoryIdempotencyStore, MemoryRateLimiter};
use crate::carts::consumer::{ConsumerHealth, EventHandler, ProductEventsConsumer};
use crate::carts::ports::ProductCatalog;
use crate::carts::{self, CartService};
use crate::config::{Config, DEMO_ADMIN_PASSWORD};
use crate::gateway::{self, GatewayDeps};
use crate::http::health::{self, Check, Lifecycle};
use crate::http::trust::InternalKey;
use crate::http::upstream::Upstream;
use crate::http::{Edge, Listener};
use crate::ports::events::EventBus;
use crate::products::cache_follower::CacheFollower;
use crate::products::read_cache::ReadCache;
use crate::products::relay::OutboxRelay;
use crate::products::{self, ProductService};
use crate::telemetry::Metrics;
use crate::users::password::PasswordHasher;
use crate::users::tokens::TokenIssuer;
use crate::users::{self, UserService};

/// What every service of a process shares: its shutdown state (which each
/// `/ready` reports) and its metrics.
#[derive(Clone)]
pub struct Process {
    pub lifecycle: Lifecycle,
    pub metrics: Arc<Metrics>,
    /// How its services are reached: through the gateway's own stack in this
    /// process (`agora run`), or each on a listener of its own.
    pub services: Edge,
}

impl Process {
    /// A process serving one service on its own listener (`agora serve`).
    pub fn new() -> Self {
        Process { lifecycle: Lifecycle::default(), metrics: Metrics::new(), services: Edge::Internal }
    }

    /// A process with every service behind the gateway's own stack (`agora run`).
    pub fn all_in_one() -> Self {
        Process { services: Edge::InProcess, ..Self::new() }
    }

    fn listener(&self, config: &Config, service: &'static str, edge: Edge) -> Listener {
        Listener { service, edge, timeout: config.server.request_timeout(), metrics: self.metrics.clone() }
    }
}

impl Default for Process {
    fn default() -> Self {
        Self::new()
    }
}

/// A service's routes as served: its health routes added, identity checked, the standard middleware.
fn served(config: &Config, name: &'static str, routes: Router, checks: Vec<Check>, process: &Process) -> Router {
    let key = InternalKey::new(config.internal.secret.expose());
    let routes = routes.merge(health::routes(checks, process.lifecycle.clone()));
    crate::http::service(routes, key, process.listener(config, name, process.services))
}

/// The users service's router, with the configured admin in place.
pub async fn users(config: &Config, adapters: &Adapters, process: &Process) -> anyhow::Result<Router> {
    let tokens = TokenIssuer::new(config.users.jwt_secret.expose().as_bytes(), config.users.token_ttl_secs);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let service = UserService::new(adapters.users.clone(), tokens, PasswordHasher::new(cores)).await?;
    service
        .ensure_admin(&config.users.admin_name, &config.users.admin_email, config.users.admin_password.expose())
        .await
        .map_err(|e| anyhow::anyhow!("users: cannot set up the admin account: {e}"))?;
    let checks = vec![Check::new("user_store", adapters.users.clone())];
    Ok(served(config, "users", users::http::router(Arc::new(service)), checks, process))
}

/// The products service's background work: its outbox relay and, when it
/// reads through a read cache, the follower that keeps the cache exact.
pub struct ProductsWork {
    pub relay: OutboxRelay,
    pub cache_follower: Option<CacheFollower>,
}

impl ProductsWork {
    pub async fn run(self, cancel: CancellationToken) {
        let follow = async {
            if let Some(follower) = self.cache_follower {
                follower.run(cancel.clone()).await;
            }
        };
        tokio::join!(self.relay.run(cancel.clone()), follow);
    }
}

/// The products service's router and its background work (not yet running).
/// The demo catalogue is loaded only into an all-in-memory system. Reads by id
/// go through a read cache when the store is a server and the event bus is
/// shared (Kafka), which carries every instance's changes to the others.
pub async fn products(
    config: &Config,
    adapters: &Adapters,
    process: &Process,
) -> anyhow::Result<(Router, ProductsWork)> {
    let wake = Arc::new(Notify::new());
    let mut service = ProductService::new(adapters.products.clone(), wake.clone());
    let ttl = Duration::from_secs(config.products.read_cache_ttl_secs);
    let real = config.real_adapters();
    let remote = real.contains(&"products.mysql_url") && real.contains(&"kafka.brokers");
    let cache = (remote && !ttl.is_zero()).then(|| Arc::new(ReadCache::new(ttl).observed(process.metrics.clone())));
    if let Some(cache) = &cache {
        service = service.with_read_cache(cache.clone());
    }
    let cache_follower =
        cache.map(|cache| CacheFollower { bus: adapters.bus.clone(), topic: config.kafka.topic.clone(), cache });
    let service = Arc::new(service);
    if config.demo.seed_catalogue && config.real_adapters().is_empty() {
        let added = products::fixtures::seed(&service).await?;
        if added > 0 {
            tracing::info!(added, "demo catalogue loaded");
        }
    }
    let interval = Duration::from_millis(config.products.relay_interval_ms.max(10));
    let relay = OutboxRelay::new(adapters.outbox.clone(), adapters.bus.clone(), &config.kafka.topic, wake, interval)
        .observed(process.metrics.clone());
    let checks = vec![
        Check::new("product_store", adapters.products.clone()),
        Check::new("outbox", adapters.outbox.clone()),
        Check::new("event_bus", adapters.bus.clone()),
    ];
    Ok((
        served(config, "products", products::http::router(service), checks, process),
        ProductsWork { relay, cache_follower },
    ))
}

/// The carts service as built: its router, its event handling, and the
/// health of its consumer (which its `/ready` reports).
pub struct Carts {
    pub router: Router,
    pub events: EventHandler,
    pub health: ConsumerHealth,
}

/// The carts service; it reads the catalogue from the products service at `products`.
pub fn carts(config: &Config, adapters: &Adapters, products: Upstream, process: &Process) -> Carts {
    let catalog: Arc<dyn ProductCatalog> = Arc::new(HttpProductCatalog::new(products));
    let ttl = Duration::from_secs(config.carts.product_cache_ttl_secs);
    let service =
        CartService::new(adapters.carts.clone(), adapters.cache.clone(), catalog.clone(), ttl, &config.redis.namespace)
            .observed(process.metrics.clone());
    let handler = EventHandler {
        store: adapters.carts.clone(),
        cache: adapters.cache.clone(),
        namespace: config.redis.namespace.clone(),
        cache_ttl: ttl,
        metrics: process.metrics.clone(),
    };
    let health = ConsumerHealth::default();
    let checks = vec![
        Check::new("cart_store", adapters.carts.clone()),
        // Without it the carts read through to the products service.
        Check::degradable("cache", adapters.cache.clone()),
        Check::new("event_bus", adapters.bus.clone()),
        Check::new("catalog", catalog),
        Check::new("consumer", Arc::new(health.clone())),
    ];
    let router = served(config, "carts", carts::http::router(Arc::new(service)), checks, process);
    Carts { router, events: handler, health }
}

/// The carts service's consumer of product events.
pub fn consumer(
    config: &Config,
    bus: Arc<dyn EventBus>,
    handler: EventHandler,
    health: ConsumerHealth,
) -> ProductEventsConsumer {
    let instance = config.carts.consumer_instance_id.trim();
    ProductEventsConsumer {
        bus,
        topic: config.kafka.topic.clone(),
        group: config.carts.consumer_group.clone(),
        instance: (!instance.is_empty()).then(|| instance.to_string()),
        handler,
        health,
        stall_after: Duration::from_secs(config.carts.consumer_stall_secs.max(1)),
    }
}

/// The services the gateway forwards to, however they are reached.
pub struct Upstreams {
    pub users: Upstream,
    pub products: Upstream,
    pub carts: Upstream,
}

/// The gateway's router in front of `upstreams`.
pub fn gateway(config: &Config, adapters: &Adapters, upstreams: Upstreams, process: &Process) -> Router {
    let deps = GatewayDeps {
        validator: Arc::new(HttpTokenValidator::new(upstreams.users.clone())),
        users: upstreams.users,
        products: upstreams.products,
        carts: upstreams.carts,
        limiter: adapters.limiter.clone(),
        fallback_limiter: Arc::new(MemoryRateLimiter::new()),
        idempotency: adapters.idempotency.clone(),
        fallback_idempotency: Arc::new(MemoryIdempotencyStore::new()),
        key: InternalKey::new(config.internal.secret.expose()),
        docs: crate::openapi::routes(),
        lifecycle: process.lifecycle.clone(),
        listener: process.listener(config, "gateway", Edge::Public),
    };
    gateway::router(config, deps)
}

/// The admin credentials to print at start-up: the password only when it is the demo's.
pub fn admin_banner(config: &Config) -> String {
    let email = &config.users.admin_email;
    if config.users.admin_password.expose() == DEMO_ADMIN_PASSWORD {
        format!("{email} / {DEMO_ADMIN_PASSWORD}")
    } else {
        format!("{email} (password as configured)")
    }
}
