//! What the SQL adapters share: their connection pool settings, how a pool
//! learns that its connections died (a server restart), and turning a driver
//! error into a `PortError`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sqlx::Connection as _;
use sqlx::pool::PoolOptions;

use crate::ports::PortError;

/// A connection idle this long is pinged before it is handed out.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);
/// After a statement lost its connection, every connection is pinged before
/// use for this long: the other idle ones died with it.
const DOUBT_FOR: Duration = Duration::from_secs(5);

/// What a pool knows of its connections' health. sqlx would ping every
/// connection before handing it out: a round trip per statement, on top of the
/// one it makes when the connection comes back. Under load a connection comes
/// back within milliseconds, so only one that sat idle is pinged, and every one
/// for a while after a statement met a dead connection. The statement that met
/// it fails (a 503) unless it is a read, which is asked again on a checked
/// connection (`read`), so a write's follow-up read (the cart a cart add
/// answers with) does not turn a write that landed into a 503.
#[derive(Clone, Default)]
pub struct Liveness {
    doubt_until: Arc<Mutex<Option<Instant>>>,
}

impl Liveness {
    /// The pool both SQL adapters use, checking connections as said above.
    pub fn pool_options<DB: sqlx::Database>(&self) -> PoolOptions<DB> {
        let liveness = self.clone();
        PoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(3))
            .test_before_acquire(false)
            .before_acquire(move |conn: &mut DB::Connection, meta| {
                let check = meta.idle_for >= PING_IDLE_AFTER || liveness.in_doubt();
                // A connection that fails its ping is closed, and the pool hands out another.
                Box::pin(async move { Ok(!check || conn.ping().await.is_ok()) })
            })
    }

    fn in_doubt(&self) -> bool {
        self.doubt_until.lock().is_some_and(|until| Instant::now() < until)
    }

    /// A lost connection puts the pool in doubt: its other connections are checked before use.
    fn heed(&self, e: &sqlx::Error) {
        if lost(e) {
            *self.doubt_until.lock() = Some(Instant::now() + DOUBT_FOR);
        }
    }

    /// `e` as a `PortError`, heeded.
    pub fn error(&self, dependency: &'static str, e: sqlx::Error) -> PortError {
        self.heed(&e);
        port_error(dependency, e)
    }

    /// Runs `read` (a statement that changes nothing), and once more on a
    /// checked connection when its connection turned out dead.
    pub async fn read<T, F, Fut>(&self, dependency: &'static str, read: F) -> Result<T, PortError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        match read().await {
            Err(e) if lost(&e) => {
                tracing::debug!(error = %e, "{dependency}: a read lost its connection; asking again");
                self.heed(&e);
                read().await.map_err(|e| self.error(dependency, e))
            }
            done => done.map_err(|e| self.error(dependency, e)),
        }
    }
}

/// Whether `e` says the connection died under the statement (a server restart,
/// a broken socket), as opposed to the statement failing.
fn lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| lost_connection(&code)),
        _ => false,
    }
}

/// Connection trouble is `Unavailable` (a 503 that heals when the server is
/// back); anything else is unexpected.
fn port_error(dependency: &'static str, e: sqlx::Error) -> PortError {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => PortError::unavailable(dependency, e),
        sqlx::Error::Database(ref db) if db.code().is_some_and(|code| lost_connection(&code)) => {
            PortError::unavailable(dependency, e)
        }
        other => PortError::Unexpected(anyhow::Error::new(other).context(dependency)),
    }
}

/// SQLSTATEs that say the server went away under a connection (it is
/// restarting or shutting down), not that the statement was wrong: class 08
/// (connection exception) on both servers, and PostgreSQL's 57P01-57P03.
fn lost_connection(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || sqlstate.starts_with("57P")
}

/// True for a unique-key violation (the store's duplicate check).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn reset() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer"))
    }

    #[tokio::test]
    async fn a_read_that_lost_its_connection_is_asked_again_once_and_puts_the_pool_in_doubt() {
        let liveness = Liveness::default();
        assert!(!liveness.in_doubt());
        let calls = AtomicUsize::new(0);
        let answer = liveness
            .read("db", || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { if n == 0 { Err(reset()) } else { Ok(n) } }
            })
            .await;
        assert_eq!(answer.unwrap(), 1);
        assert!(liveness.in_doubt(), "the other idle connections are checked before use");

        let calls = AtomicUsize::new(0);
        let answer: Result<(), _> = liveness
            .read("db", || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(reset()) }
            })
            .await;
        assert!(matches!(answer, Err(PortError::Unavailable { .. })), "{answer:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "asked again once, not more");
    }

    #[tokio::test]
    async fn a_failing_statement_is_not_asked_again_and_leaves_the_pool_trusted() {
        let liveness = Liveness::default();
        let calls = AtomicUsize::new(0);
        let answer: Result<(), _> = liveness
            .read("db", || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(sqlx::Error::ColumnNotFound("x".into())) }
            })
            .await;
        assert!(matches!(answer, Err(PortError::Unexpected(_))), "{answer:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!liveness.in_doubt());
        let _ = liveness.error("db", sqlx::Error::PoolTimedOut);
        assert!(!liveness.in_doubt(), "a pool that waited too long lost no connection");
    }

    #[test]
    fn a_server_going_away_is_told_from_a_bad_statement() {
        for code in ["57P01", "57P02", "57P03", "08006", "08S01"] {
            assert!(lost_connection(code), "{code}");
        }
        for code in ["23505", "42P01", "22003", "HY000", "40001"] {
            assert!(!lost_connection(code), "{code}");
        }
    }
}
