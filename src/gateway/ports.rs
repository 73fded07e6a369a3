//! The gateway's ports: its question to the users service (who holds this
//! token?), and where it keeps the answers of writes that may be retried.

use std::time::Duration;

use async_trait::async_trait;

use crate::kernel::identity::Identity;
use crate::ports::{PortError, Probe};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Missing, malformed, expired, revoked or wrongly signed.
    #[error("invalid token")]
    Invalid,
    #[error(transparent)]
    Port(#[from] PortError),
}

#[async_trait]
pub trait TokenValidator: Probe {
    async fn validate(&self, token: &str) -> Result<Identity, TokenError>;
}

/// An answer kept for a retried write: its status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Where a write under an idempotency key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: it is now ours, in progress, until `finish` or `release`.
    Claimed,
    /// The same request is being handled right now.
    InProgress,
    /// The same request was answered: here is that answer.
    Answered(KeptAnswer),
    /// The key was used for another request.
    OtherRequest,
}

/// Idempotency keys of retried writes (Redis in production, shared by every gateway).
#[async_trait]
pub trait IdempotencyStore: Probe {
    /// Atomically: claims `key` for the request `fingerprint` for `lease` when it
    /// is free; otherwise says what holds it. A claim whose lease ran out is free again.
    async fn claim(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<Claim, PortError>;
    /// Keeps `answer` under `key` for `ttl` (only while this fingerprint holds it).
    async fn finish(&self, key: &str, fingerprint: &str, answer: &KeptAnswer, ttl: Duration) -> Result<(), PortError>;
    /// Frees `key` (still claimed by this fingerprint) so that a retry runs again.
    async fn release(&self, key: &str, fingerprint: &str) -> Result<(), PortError>;
}
