//! Each service built on its adapters, the way every runtime builds it: the
//! all-in-one `App` and `agora serve` call these, so a service is wired once.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::Notify;

use super::adapters::Adapters;
use crate::adapters::http::{HttpProductCatalog, HttpTokenValidator};
use crate::carts::consumer::{EventHandler, ProductEventsConsumer};
use crate::carts::ports::ProductCatalog;
use crate::carts::{self, CartService};
use crate::config::{Config, DEMO_ADMIN_PASSWORD};
use crate::gateway::{self, GatewayDeps};
use crate::http::health::{self, Check};
use crate::http::upstream::Upstream;
use crate::ports::events::EventBus;
use crate::products::relay::OutboxRelay;
use crate::products::{self, ProductService};
use crate::users::password::PasswordHasher;
use crate::users::tokens::TokenIssuer;
use crate::users::{self, UserService};

/// The users service's router, with the configured admin in place.
pub async fn users(config: &Config, adapters: &Adapters) -> anyhow::Result<Router> {
    let tokens = TokenIssuer::new(config.users.jwt_secret.expose().as_bytes(), config.users.token_ttl_secs);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let service = UserService::new(adapters.users.clone(), tokens, PasswordHasher::new(cores)).await?;
    service
        .ensure_admin(&config.users.admin_name, &config.users.admin_email, config.users.admin_password.expose())
        .await
        .map_err(|e| anyhow::anyhow!("users: cannot set up the admin account: {e}"))?;
    let checks = vec![Check::new("user_store", adapters.users.clone())];
    Ok(crate::http::service(users::http::router(Arc::new(service)).merge(health::routes(checks)), "users"))
}

/// The products service's router and its outbox relay (not yet running).
pub async fn products(config: &Config, adapters: &Adapters) -> anyhow::Result<(Router, OutboxRelay)> {
    let wake = Arc::new(Notify::new());
    let service = Arc::new(ProductService::new(adapters.products.clone(), wake.clone()));
    if config.demo.seed_catalogue {
        let added = products::fixtures::seed(&service).await?;
        if added > 0 {
            tracing::info!(added, "demo catalogue loaded");
        }
    }
    let relay = OutboxRelay {
        outbox: adapters.outbox.clone(),
        bus: adapters.bus.clone(),
        topic: config.kafka.topic.clone(),
        wake,
        interval: Duration::from_millis(config.products.relay_interval_ms.max(10)),
    };
    let checks = vec![
        Check::new("product_store", adapters.products.clone()),
        Check::new("outbox", adapters.outbox.clone()),
        Check::new("event_bus", adapters.bus.clone()),
    ];
    let router = products::http::router(service).merge(health::routes(checks));
    Ok((crate::http::service(router, "products"), relay))
}

/// The carts service's router and its event handling; it reads the catalogue
/// from the products service at `products`.
pub fn carts(config: &Config, adapters: &Adapters, products: Upstream) -> (Router, EventHandler) {
    let catalog: Arc<dyn ProductCatalog> = Arc::new(HttpProductCatalog::new(products));
    let ttl = Duration::from_secs(config.carts.product_cache_ttl_secs);
    let service =
        CartService::new(adapters.carts.clone(), adapters.cache.clone(), catalog.clone(), ttl, &config.redis.namespace);
    let handler = EventHandler {
        store: adapters.carts.clone(),
        cache: adapters.cache.clone(),
        namespace: config.redis.namespace.clone(),
    };
    let checks = vec![
        Check::new("cart_store", adapters.carts.clone()),
        Check::new("cache", adapters.cache.clone()),
        Check::new("event_bus", adapters.bus.clone()),
        Check::new("catalog", catalog),
    ];
    let router = carts::http::router(Arc::new(service)).merge(health::routes(checks));
    (crate::http::service(router, "carts"), handler)
}

/// The carts service's consumer of product events.
pub fn consumer(config: &Config, bus: Arc<dyn EventBus>, handler: EventHandler) -> ProductEventsConsumer {
    ProductEventsConsumer {
        bus,
        topic: config.kafka.topic.clone(),
        group: config.carts.consumer_group.clone(),
        handler,
    }
}

/// The services the gateway forwards to, however they are reached.
pub struct Upstreams {
    pub users: Upstream,
    pub products: Upstream,
    pub carts: Upstream,
}

/// The gateway's router in front of `upstreams`.
pub fn gateway(config: &Config, adapters: &Adapters, upstreams: Upstreams) -> Router {
    let deps = GatewayDeps {
        validator: Arc::new(HttpTokenValidator::new(upstreams.users.clone())),
        users: upstreams.users,
        products: upstreams.products,
        carts: upstreams.carts,
        limiter: adapters.limiter.clone(),
        docs: crate::openapi::routes(),
    };
    gateway::router(&config.gateway, &config.redis.namespace, deps)
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
