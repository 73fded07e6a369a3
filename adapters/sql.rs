//! What the SQL adapters share: turning a driver error into a `PortError`.

use crate::ports::PortError;

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
        other => PortError::Unexpected(anyhow::Error::new(other).context(dependency)),
    }
}

/// True for a unique-key violation (the store's duplicate check).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
