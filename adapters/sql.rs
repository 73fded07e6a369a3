//! What the SQL adapters share: their connection pool settings, and turning a
//! driver error into a `PortError`.

use std::time::Duration;

use sqlx::pool::PoolOptions;

use crate::ports::PortError;

/// The pool both SQL adapters use. sqlx pings a connection before handing it
/// out (and again when it comes back): a round trip per query, but a connection
/// that died with a server restart is replaced before a query meets it. Without
/// that ping, the second statement of a write (the cart add's tombstone check,
/// the cart it answers with) met dead connections after a PostgreSQL restart and
/// answered 503 for an add that had landed — so the ping stays.
pub fn pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new().max_connections(10).acquire_timeout(Duration::from_secs(3))
}

/// Connection trouble is `Unavailable` (a 503 that heals when the server is
/// back); anything else is unexpected.
pub fn port_error(dependency: &'static str, e: sqlx::Error) -> PortError {
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
mod tests {
    use super::*;

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
