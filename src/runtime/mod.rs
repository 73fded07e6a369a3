//! The composition root: the only place that knows both the services and the
//! adapters. It builds the services on the adapters the configuration names,
//! and runs them all in one process behind the gateway (`agora run`, tests,
//! demos) or one per process (`agora serve <service>`).
//!
//! `adapters` chooses the adapters, `wiring` builds each service on them,
//! `app` is the all-in-one system, `tasks` the background work, `server`
//! serving a router and stopping it gracefully.

pub mod adapters;
pub mod app;
pub mod server;
pub mod tasks;
pub mod wiring;

use std::time::Duration;

use anyhow::Context;
use axum::http::{HeaderMap, Method, Uri};

pub use adapters::Adapters;
pub use app::App;
use server::{Limits, Server, bind, shutdown_signal};
use tasks::{ConsumerSlot, Task};
use wiring::{Process, Upstreams};

use crate::config::Config;
use crate::http::upstream::Upstream;

/// The parts of the system a process can run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceName {
    Gateway,
    Users,
    Products,
    Carts,
}

pub const ALL_SERVICES: [ServiceName; 4] =
    [ServiceName::Gateway, ServiceName::Users, ServiceName::Products, ServiceName::Carts];

fn upstream_timeout(config: &Config) -> Duration {
    Duration::from_secs(config.gateway.upstream_timeout_secs.max(1))
}

/// `agora run`: everything in one process until Ctrl-C or SIGTERM.
pub async fn run_all(config: Config) -> anyhow::Result<()> {
    let banner = wiring::admin_banner(&config);
    let app = App::start(config).await?;
    println!("Agora is running: gateway on http://{}", app.addr);
    println!("  API docs: http://{}/docs", app.addr);
    println!("  admin: {banner}");
    shutdown_signal().await;
    app.shutdown().await;
    println!("Agora stopped");
    Ok(())
}

/// `agora serve <service>`: one service in this process, reaching the others
/// at their configured URLs.
pub async fn serve(config: Config, which: ServiceName) -> anyhow::Result<()> {
    let adapters = Adapters::connect(&config, &[which]).await?;
    let timeout = upstream_timeout(&config);
    let process = Process::new();
    let http = |name, url: String| {
        Upstream::http(name, &url, timeout)
            .map(|u| u.observed(process.metrics.clone()))
            .with_context(|| format!("{name} URL"))
    };
    let mut background: Vec<Task> = Vec::new();
    let mut consumer = None;
    let (name, listen, router) = match which {
        ServiceName::Gateway => {
            let upstreams = Upstreams {
                users: http("users service", config.users_url())?,
                products: http("products service", config.products_url())?,
                carts: http("carts service", config.carts_url())?,
            };
            ("gateway", config.gateway.listen, wiring::gateway(&config, &adapters, upstreams, &process))
        }
        ServiceName::Users => ("users", config.users.listen, wiring::users(&config, &adapters, &process).await?),
        ServiceName::Products => {
            let (router, work) = wiring::products(&config, &adapters, &process).await?;
            background.push(Task::spawn(|cancel| work.run(cancel)));
            ("products", config.products.listen, router)
        }
        ServiceName::Carts => {
            let products = http("products service", config.products_url())?;
            let built = wiring::carts(&config, &adapters, products, &process);
            let slot = ConsumerSlot::new(&config, adapters.bus.clone(), built.events, built.health);
            slot.start().await;
            consumer = Some(slot);
            ("carts", config.carts.listen, built.router)
        }
    };
    if config.kafka.brokers.is_none() && matches!(which, ServiceName::Products | ServiceName::Carts) {
        tracing::warn!("kafka.brokers is unset: events stay inside this process and reach no other service");
    }
    let limits = Limits::new(&config.server, Duration::from_secs(config.gateway.shutdown_grace_secs));
    let server = Server::spawn(bind(listen, name).await?, router, limits, process.lifecycle.clone())?;
    println!("Agora {name} service listening on http://{}", server.addr);
    shutdown_signal().await;
    server.stop().await;
    for task in background {
        task.stop().await;
    }
    if let Some(slot) = consumer {
        slot.stop().await;
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
    Adapters::connect(&config, &ALL_SERVICES).await?;
    println!("Migrated: {}", real.join(", "));
    Ok(())
}

/// `agora health URL`: succeeds when `URL` answers 2xx within a few seconds
/// (a container healthcheck that needs no curl).
pub async fn health(url: &str) -> anyhow::Result<()> {
    let uri: Uri = url.parse().with_context(|| format!("'{url}' is not a URL"))?;
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let base =
        format!("{}://{}", uri.scheme_str().unwrap_or("http"), uri.authority().map(|a| a.as_str()).unwrap_or(""));
    let upstream = Upstream::http("health check", &base, Duration::from_secs(3))?;
    let (status, _) = upstream.exchange(Method::GET, &path, HeaderMap::new(), None).await?;
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}
