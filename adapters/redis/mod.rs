//! Redis adapters: the product `Cache`, the gateway's `RateLimiter` and its
//! `IdempotencyStore`, on one reconnecting connection manager per process.
//! Keys arrive namespaced by the callers (`<namespace>:…`), so several
//! deployments can share a server.

pub mod cache;
pub mod idempotency;
pub mod rate_limiter;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use cache::RedisCache;
pub use idempotency::RedisIdempotencyStore;
pub use rate_limiter::RedisRateLimiter;

use crate::ports::PortError;

const DEPENDENCY: &str = "Redis";

/// Connects, failing within `timeout`; afterwards reconnects by itself, and
/// every command gives up after a short timeout so callers can answer 503.
pub async fn connect(url: &str, timeout: Duration) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout.min(Duration::from_secs(2))))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    let manager = tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config)).await??;
    Ok(manager)
}

fn err(e: redis::RedisError) -> PortError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        PortError::unavailable(DEPENDENCY, e)
    } else {
        PortError::Unexpected(anyhow::Error::new(e).context(DEPENDENCY))
    }
}

async fn ping(conn: &ConnectionManager) -> Result<(), PortError> {
    let mut conn = conn.clone();
    let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(err)?;
    Ok(())
}
