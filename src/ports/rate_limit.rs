//! Global request budgets (Redis in production, shared by every gateway).

use std::time::Duration;

use async_trait::async_trait;

use super::{PortError, Probe};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the budget is whole again (sliding window: the oldest counted request leaves).
    pub reset_after: Duration,
    /// On a refusal: until one more request would be allowed.
    pub retry_after: Duration,
}

#[async_trait]
pub trait RateLimiter: Probe {
    /// Counts one request for `key` against `limit` per sliding `window`.
    /// MUST be exact under concurrency: of N simultaneous checks on a fresh key,
    /// exactly min(N, limit) are allowed. A refused request is not counted.
    async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision, PortError>;
}
