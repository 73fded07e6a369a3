//! Serving a router on a socket, on hyper directly so that every connection is
//! bounded and tracked: at most `server.max_connections` at once, a request
//! head within `server.header_read_timeout_secs` (slow clients cannot hold a
//! connection open for free), and a graceful stop — `/ready` turns 503 first,
//! new requests are still served for `server.drain_delay_ms`, then the listener
//! closes, in-flight requests finish within the grace, and any left after it
//! are dropped (their tasks aborted, not left running).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::http::health::Lifecycle;

pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("{what}: cannot listen on {addr}"))
}

/// How one listener serves and stops.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub drain_delay: Duration,
    pub grace: Duration,
}

impl Limits {
    pub fn new(server: &ServerConfig, grace: Duration) -> Self {
        Limits {
            max_connections: server.max_connections.max(1),
            header_read_timeout: server.header_read_timeout(),
            drain_delay: server.drain_delay(),
            grace,
        }
    }
}

pub struct Server {
    pub addr: SocketAddr,
    lifecycle: Lifecycle,
    drain_delay: Duration,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `router` on `listener` until stopped; `lifecycle` is the one the
    /// router's `/ready` reads.
    pub fn spawn(
        listener: TcpListener,
        router: Router,
        limits: Limits,
        lifecycle: Lifecycle,
    ) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let drain_delay = limits.drain_delay;
        let task = tokio::spawn(accept_loop(listener, router, limits, stop.clone()));
        Ok(Server { addr, lifecycle, drain_delay, stop, task })
    }

    /// `/ready` turns 503, requests are still served for the drain delay, then
    /// the listener closes and in-flight requests get the grace to finish.
    pub async fn stop(self) {
        self.lifecycle.begin_shutdown();
        tokio::time::sleep(self.drain_delay).await;
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the server task failed");
        }
    }
}

async fn accept_loop(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    loop {
        while connections.try_join_next().is_some() {}
        // At the cap, wait for a connection to end before accepting (the kernel queues the rest).
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: pass, rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // The peer's address, for the handlers that limit or log by client.
        let svc = router.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let conn = builder.serve_connection(TokioIo::new(nodelay(stream)), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(left = connections.len(), "in-flight requests outlived the shutdown grace; dropping them");
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
}

fn nodelay(stream: TcpStream) -> TcpStream {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    stream
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received");
}
