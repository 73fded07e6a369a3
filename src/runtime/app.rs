//! The whole system in one process (`agora run`, tests, demos): every service
//! in-process behind the gateway, its only listener.

use std::net::SocketAddr;
use std::time::Duration;

use super::adapters::Adapters;
use super::server::{Server, bind};
use super::tasks::{ConsumerSlot, Task};
use super::wiring::{self, Upstreams};
use super::{ALL_SERVICES, upstream_timeout};
use crate::carts::consumer::EventHandler;
use crate::config::Config;
use crate::http::upstream::Upstream;

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
        let adapters = Adapters::connect(&config, &ALL_SERVICES).await?;
        Self::start_with(config, adapters).await
    }

    pub async fn start_with(config: Config, adapters: Adapters) -> anyhow::Result<App> {
        let timeout = upstream_timeout(&config);
        let users = Upstream::in_process("users service", wiring::users(&config, &adapters).await?, timeout);
        let (products_router, relay) = wiring::products(&config, &adapters).await?;
        let products = Upstream::in_process("products service", products_router, timeout);
        let (carts_router, cart_events) = wiring::carts(&config, &adapters, products.clone());
        let carts = Upstream::in_process("carts service", carts_router, timeout);
        let router = wiring::gateway(&config, &adapters, Upstreams { users, products, carts });
        let listener = bind(config.gateway.listen, "gateway").await?;
        let relay = Task::spawn(|cancel| relay.run(cancel));
        let consumer = ConsumerSlot::new(&config, adapters.bus.clone(), cart_events.clone());
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
