//! The whole system in one process (`agora run`, tests, demos): every service
//! in-process behind the gateway, its only listener.

use std::net::SocketAddr;
use std::time::Duration;

use super::adapters::Adapters;
use super::server::{Limits, Server, bind};
use super::tasks::{ConsumerSlot, Task};
use super::wiring::{self, Upstreams};
use super::{ALL_SERVICES, upstream_timeout};
use crate::carts::consumer::EventHandler;
use crate::config::Config;
use crate::http::health::Lifecycle;
use crate::http::upstream::Upstream;

pub struct App {
    pub addr: SocketAddr,
    pub adapters: Adapters,
    /// The carts service's event handling, for replaying a topic.
    pub cart_events: EventHandler,
    server: Server,
    relay: Task,
    consumer: ConsumerSlot,
}

impl App {
    pub async fn start(config: Config) -> anyhow::Result<App> {
        let adapters = Adapters::connect(&config, &ALL_SERVICES).await?;
        Self::start_with(config, adapters).await
    }

    pub async fn start_with(config: Config, adapters: Adapters) -> anyhow::Result<App> {
        let timeout = upstream_timeout(&config);
        let lifecycle = Lifecycle::default();
        let users =
            Upstream::in_process("users service", wiring::users(&config, &adapters, &lifecycle).await?, timeout);
        let (products_router, relay) = wiring::products(&config, &adapters, &lifecycle).await?;
        let products = Upstream::in_process("products service", products_router, timeout);
        let built = wiring::carts(&config, &adapters, products.clone(), &lifecycle);
        let carts = Upstream::in_process("carts service", built.router, timeout);
        let cart_events = built.events;
        let router = wiring::gateway(&config, &adapters, Upstreams { users, products, carts }, &lifecycle);
        let listener = bind(config.gateway.listen, "gateway").await?;
        let relay = Task::spawn(|cancel| relay.run(cancel));
        let consumer = ConsumerSlot::new(&config, adapters.bus.clone(), cart_events.clone(), built.health);
        consumer.start().await;
        let limits = Limits::new(&config.server, Duration::from_secs(config.gateway.shutdown_grace_secs));
        let server = Server::spawn(listener, router, limits, lifecycle)?;
        Ok(App { addr: server.addr, adapters, cart_events, server, relay, consumer })
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
        self.relay.stop().await;
        self.consumer.stop().await;
    }
}
