//! The shared ports: what more than one part of the system needs from the
//! outside world (the event bus, the cache, the rate limiter), and what every
//! port has in common (errors, the readiness probe, paging). A port that belongs
//! to one service lives beside it (`users::ports`, `products::ports`,
//! `carts::ports`, `gateway::ports`).
//!
//! Each port has an in-memory adapter (`adapters/memory`) and a real one; the
//! services and their domain never see a driver type. Every contract a caller
//! relies on is stated on the trait method ("MUST"), and the contract tests
//! check both adapters.

pub mod cache;
pub mod events;
pub mod rate_limit;

use async_trait::async_trait;

/// Failure of an adapter itself, as opposed to a domain outcome.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The backing server cannot be reached or refused to work: callers answer 503.
    #[error("{dependency} is unavailable: {reason}")]
    Unavailable { dependency: &'static str, reason: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl PortError {
    pub fn unavailable(dependency: &'static str, reason: impl std::fmt::Display) -> Self {
        PortError::Unavailable { dependency, reason: reason.to_string() }
    }
}

/// Outcome of a store write that can collide with existing data.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A uniqueness rule (e.g. a user's email) would be broken.
    #[error("duplicate")]
    Duplicate,
    #[error("not found")]
    NotFound,
    /// An optimistic-concurrency check failed: the record changed meanwhile.
    #[error("conflict")]
    Conflict,
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Readiness check shared by every adapter: `/ready` asks each one.
#[async_trait]
pub trait Probe: Send + Sync {
    /// MUST answer quickly (well under a second) whether the backing server serves requests.
    async fn ping(&self) -> Result<(), PortError>;
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}
