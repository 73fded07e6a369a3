//! The whole system in one process (`agora run`, tests, demos): every service
//! in-process behind the gateway, its only listener.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;

use super::adapters::Adapters;
use super::server::{Limits, Server, bind};
use super::tasks::{ConsumerSlot, Task};
use super::wiring::{self, Process, ProductsWork, Upstreams};
use super::{ALL_SERVICES, upstream_timeout};
use crate::carts::consumer::{ConsumerHealth, EventHandler};
use crate::config::Config;
use crate::http::upstream::Upstream;

pub struct App {
    pub addr: SocketAddr,
    pub adapters: Adapters,
    /// The carts service's event handling, for replaying a topic.
    pub cart_events: EventHandler,
    server: Server,
    /// The products service's outbox relay and read-cache follower.
    products_work: Task,
    consumer: ConsumerSlot,
}

impl App {
    pub async fn start(config: Config) -> anyhow::Result<App> {
        let adapters = Adapters::connect(&config, &ALL_SERVICES).await?;
        Self::start_with(config, adapters).await
    }

    pub async fn start_with(config: Config, adapters: Adapters) -> anyhow::Result<App> {
        let Assembly { router, products_work, cart_events, consumer_health, process } =
            assemble(&config, &adapters).await?;
        let listener = bind(config.gateway.listen, "gateway").await?;
        let products_work = Task::spawn(|cancel| products_work.run(cancel));
        let consumer = ConsumerSlot::new(&config, adapters.bus.clone(), cart_events.clone(), consumer_health);
        consumer.start().await;
        let limits = Limits::new(&config.server, Duration::from_secs(config.gateway.shutdown_grace_secs));
        let server = Server::spawn(listener, router, limits, process.lifecycle.clone())?;
        Ok(App { addr: server.addr, adapters, cart_events, server, products_work, consumer })
    }

    /// Stops the product-events consumer after its last commit.
    pub async fn stop_consumer(&self) {
        self.consumer.stop().await;
    }

    /// Starts it again; it resumes from the group's committed offsets.
    pub async fn start_consumer(&self) {
        self.consumer.start().await;
    }

    /// `/ready` turns 503, requests drain, the outbox flushes, the consumer stops.
    pub async fn shutdown(self) {
        self.server.stop().await;
        self.products_work.stop().await;
        self.consumer.stop().await;
    }
}

/// The whole system, built but not started: the gateway's router with every
/// service in-process, and the background work `App` runs beside it.
pub struct Assembly {
    pub router: Router,
    pub products_work: ProductsWork,
    pub cart_events: EventHandler,
    pub consumer_health: ConsumerHealth,
    pub process: Process,
}

/// Every service on `adapters`, wired in-process behind the gateway (benches
/// drive the router directly, without a listener).
pub async fn assemble(config: &Config, adapters: &Adapters) -> anyhow::Result<Assembly> {
    let timeout = upstream_timeout(config);
    let process = Process::all_in_one();
    let upstream = |name, router| Upstream::in_process(name, router, timeout).observed(process.metrics.clone());
    let users = upstream("users service", wiring::users(config, adapters, &process).await?);
    let (products_router, products_work) = wiring::products(config, adapters, &process).await?;
    let products = upstream("products service", products_router);
    let built = wiring::carts(config, adapters, products.clone(), &process);
    let carts = upstream("carts service", built.router);
    let router = wiring::gateway(config, adapters, Upstreams { users, products, carts }, &process);
    Ok(Assembly { router, products_work, cart_events: built.events, consumer_health: built.health, process })
}
