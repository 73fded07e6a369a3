//! Wiring and running: builds the services on the adapters the configuration
//! names, and runs them either all in one process behind the gateway
//! (`agora run`, tests, demos) or one per process (`agora serve <service>`).

pub mod adapters;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use adapters::{ALL_PARTS, Adapters, Part};
use server::{Server, bind, shutdown_signal};

use crate::adapters::http::{HttpProductCatalog, HttpTokenValidator};
use crate::carts::consumer::{EventHandler, ProductEventsConsumer};
use crate::carts::{self, CartService};
use crate::cli::ServiceName;
use crate::config::{Config, DEMO_ADMIN_PASSWORD};
use crate::gateway::{self, GatewayDeps};
use crate::http::health::{self, Check};
use crate::http::upstream::Upstream;
use crate::ports::carts::ProductCatalog;
use crate::products::relay::OutboxRelay;
use crate::products::{self, ProductService};
use crate::users::password::PasswordHasher;
use crate::users::tokens::TokenIssuer;
use crate::users::{self, UserService};

/// The users service's router, with the configured admin in place.
pub async fn users_router(config: &Config, adapters: &Adapters) -> anyhow::Result<Router> {
    let tokens = TokenIssuer::new(config.users.jwt_secret.expose().as_bytes(), config.users.token_ttl_secs);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let service = UserService::new(adapters.users.clone(), tokens, PasswordHasher::new(cores)).await?;
    service
        .ensure_admin(&config.users.admin_name, &config.users.admin_email, config.users.admin_password.expose())
        .await
        .map_err(|e| anyhow::anyhow!("users: cannot set up the admin account: {e}"))?;
    let checks = vec![Check::new("user_store", adapters.users.clone())];
    Ok(crate::http::finish(users::http::router(Arc::new(service)).merge(health::routes(checks))))
}

/// The products service's router and its outbox relay (not yet running).
pub async fn products_router(config: &Config, adapters: &Adapters) -> anyhow::Result<(Router, OutboxRelay)> {
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
    Ok((crate::http::finish(products::http::router(service).merge(health::routes(checks))), relay))
}

/// The carts service's router and its event handling.
pub fn carts_router(config: &Config, adapters: &Adapters, catalog: Arc<dyn ProductCatalog>) -> (Router, EventHandler) {
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
    (crate::http::finish(carts::http::router(Arc::new(service)).merge(health::routes(checks))), handler)
}

/// A background task that can be stopped and awaited.
struct Task {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl Task {
    fn spawn<F: Future<Output = ()> + Send + 'static>(run: impl FnOnce(CancellationToken) -> F) -> Task {
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(run(cancel.clone()));
        Task { cancel, handle }
    }

    async fn stop(self) {
        self.cancel.cancel();
        if let Err(e) = self.handle.await {
            tracing::error!(error = %e, "background task failed");
        }
    }
}

/// The product-events consumer, which tests (and operators) can stop and start.
struct ConsumerSlot {
    config: Config,
    bus: Arc<dyn crate::ports::events::EventBus>,
    handler: EventHandler,
    running: Mutex<Option<Task>>,
}

impl ConsumerSlot {
    async fn start(&self) {
        let mut running = self.running.lock().await;
        if running.is_none() {
            let consumer = ProductEventsConsumer {
                bus: self.bus.clone(),
                topic: self.config.kafka.topic.clone(),
                group: self.config.carts.consumer_group.clone(),
                handler: self.handler.clone(),
            };
            *running = Some(Task::spawn(|cancel| consumer.run(cancel)));
        }
    }

    async fn stop(&self) {
        if let Some(task) = self.running.lock().await.take() {
            task.stop().await;
        }
    }
}

/// The whole system in one process, the gateway its only listener.
pub struct App {
    pub addr: SocketAddr,
    pub adapters: Adapters,
    /// The carts service's event handling, for replaying a topic.
    pub cart_events: EventHandler,
    server: Server,
    relay: Task,
    consumer: ConsumerSlot,
    grace: Duration,
}

impl App {
    pub async fn start(config: Config) -> anyhow::Result<App> {
        let adapters = Adapters::connect(&config, &ALL_PARTS).await?;
        Self::start_with(config, adapters).await
    }

    pub async fn start_with(config: Config, adapters: Adapters) -> anyhow::Result<App> {
        let timeout = Duration::from_secs(config.gateway.upstream_timeout_secs.max(1));
        let users = Upstream::in_process("users service", users_router(&config, &adapters).await?, timeout);
        let (products_router, relay) = products_router(&config, &adapters).await?;
        let products = Upstream::in_process("products service", products_router, timeout);
        let catalog = Arc::new(HttpProductCatalog::new(products.clone()));
        let (carts_router, cart_events) = carts_router(&config, &adapters, catalog);
        let carts = Upstream::in_process("carts service", carts_router, timeout);
        let deps = GatewayDeps {
            validator: Arc::new(HttpTokenValidator::new(users.clone())),
            users,
            products,
            carts,
            limiter: adapters.limiter.clone(),
        };
        let router = gateway::router(&config.gateway, &config.redis.namespace, deps);
        let listener = bind(config.gateway.listen, "gateway").await?;
        let relay = Task::spawn(|cancel| relay.run(cancel));
        let consumer = ConsumerSlot {
            config: config.clone(),
            bus: adapters.bus.clone(),
            handler: cart_events.clone(),
            running: Mutex::new(None),
        };
        consumer.start().await;
        let server = Server::spawn(listener, router)?;
        Ok(App {
            addr: server.addr,
            adapters,
            cart_events,
            server,
            relay,
            consumer,
            grace: Duration::from_secs(config.gateway.shutdown_grace_secs),
        })
    }

    /// Stops the product-events consumer after its last commit.
    pub async fn stop_consumer(&self) {
        self.consumer.stop().await;
    }

    /// Starts it again; it resumes from the group's committed offsets.
    pub async fn start_consumer(&self) {
        self.consumer.start().await;
    }

    /// Stops accepting, drains requests, flushes the outbox, stops the consumer.
    pub async fn shutdown(self) {
        self.server.stop(self.grace).await;
        self.relay.stop().await;
        self.consumer.stop().await;
    }
}

/// `agora run`: everything in one process until Ctrl-C or SIGTERM.
pub async fn run_all(config: Config) -> anyhow::Result<()> {
    let admin_email = config.users.admin_email.clone();
    let demo_password = config.users.admin_password.expose() == DEMO_ADMIN_PASSWORD;
    let app = App::start(config).await?;
    println!("Agora is running: gateway on http://{}", app.addr);
    println!("  API docs: http://{}/docs", app.addr);
    if demo_password {
        println!("  admin: {admin_email} / {DEMO_ADMIN_PASSWORD}");
    } else {
        println!("  admin: {admin_email} (password as configured)");
    }
    shutdown_signal().await;
    app.shutdown().await;
    println!("Agora stopped");
    Ok(())
}

/// `agora serve <service>`: one service in this process.
pub async fn serve(config: Config, which: ServiceName) -> anyhow::Result<()> {
    let part = match which {
        ServiceName::Gateway => Part::Gateway,
        ServiceName::Users => Part::Users,
        ServiceName::Products => Part::Products,
        ServiceName::Carts => Part::Carts,
    };
    let adapters = Adapters::connect(&config, &[part]).await?;
    let timeout = Duration::from_secs(config.gateway.upstream_timeout_secs.max(1));
    let http = |name, url: String| Upstream::http(name, &url, timeout).with_context(|| format!("{name} URL"));
    let mut background: Vec<Task> = Vec::new();
    let (name, listen, router) = match which {
        ServiceName::Gateway => {
            let users = http("users service", config.users_url())?;
            let deps = GatewayDeps {
                validator: Arc::new(HttpTokenValidator::new(users.clone())),
                users,
                products: http("products service", config.products_url())?,
                carts: http("carts service", config.carts_url())?,
                limiter: adapters.limiter.clone(),
            };
            ("gateway", config.gateway.listen, gateway::router(&config.gateway, &config.redis.namespace, deps))
        }
        ServiceName::Users => ("users", config.users.listen, users_router(&config, &adapters).await?),
        ServiceName::Products => {
            let (router, relay) = products_router(&config, &adapters).await?;
            background.push(Task::spawn(|cancel| relay.run(cancel)));
            ("products", config.products.listen, router)
        }
        ServiceName::Carts => {
            let catalog = Arc::new(HttpProductCatalog::new(http("products service", config.products_url())?));
            let (router, handler) = carts_router(&config, &adapters, catalog);
            let consumer = ProductEventsConsumer {
                bus: adapters.bus.clone(),
                topic: config.kafka.topic.clone(),
                group: config.carts.consumer_group.clone(),
                handler,
            };
            background.push(Task::spawn(|cancel| consumer.run(cancel)));
            ("carts", config.carts.listen, router)
        }
    };
    if config.kafka.brokers.is_none() && matches!(which, ServiceName::Products | ServiceName::Carts) {
        tracing::warn!("kafka.brokers is unset: events stay inside this process and reach no other service");
    }
    let server = Server::spawn(bind(listen, name).await?, router)?;
    println!("Agora {name} service listening on http://{}", server.addr);
    shutdown_signal().await;
    server.stop(Duration::from_secs(config.gateway.shutdown_grace_secs)).await;
    for task in background {
        task.stop().await;
    }
    println!("Agora {name} service stopped");
    Ok(())
}

/// `agora migrate`: connecting to each configured server runs its migrations.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let real = config.real_adapters();
    if real.is_empty() {
        println!("No real adapter is configured: nothing to migrate");
        return Ok(());
    }
    Adapters::connect(&config, &ALL_PARTS).await?;
    println!("Migrated: {}", real.join(", "));
    Ok(())
}
