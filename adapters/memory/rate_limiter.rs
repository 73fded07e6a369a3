//! The in-memory rate limiter: GCRA (`ports::rate_limit::gcra`) with one
//! number per key, for tests and single-process runs, and the gateway's own
//! limiter while the shared one is down.
//!
//! Every check runs under one mutex, which is what makes it exact under concurrency.
//! Time is `tokio::time::Instant`, so tests can pause and advance the clock.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::ports::rate_limit::gcra::{self, Tat};
use crate::ports::rate_limit::{RateDecision, RateLimiter};
use crate::ports::{PortError, Probe};

/// Keys whose budget is whole again are dropped every this many checks (or, once there are more
/// keys, every as many checks as keys were kept at the last sweep: amortised O(1) per check).
const SWEEP_EVERY: usize = 1024;

pub struct MemoryRateLimiter {
    /// The instant times are counted from.
    epoch: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Tat>,
    checks_since_sweep: usize,
    kept_at_sweep: usize,
}

impl State {
    /// Drops the keys whose budget is whole: they hold nothing a fresh key would not.
    fn sweep(&mut self, now: u128) {
        self.keys.retain(|_, tat| tat.limit > 0 && tat.scaled > now * u128::from(tat.limit));
        self.checks_since_sweep = 0;
        self.kept_at_sweep = self.keys.len();
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        MemoryRateLimiter { epoch: Instant::now(), state: Mutex::new(State::default()) }
    }
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn decide(&self, key: &str, limit: u32, window: Duration) -> RateDecision {
        let now = Instant::now().saturating_duration_since(self.epoch).as_nanos();
        let mut state = self.state.lock();
        state.checks_since_sweep += 1;
        if state.checks_since_sweep >= SWEEP_EVERY.max(state.kept_at_sweep) {
            state.sweep(now);
        }
        let held = state.keys.get(key).copied().unwrap_or_default();
        let (decision, next) = gcra::decide(held, now, limit, window);
        if next != held {
            state.keys.insert(key.to_owned(), next);
        }
        decision
    }
}

#[async_trait]
impl Probe for MemoryRateLimiter {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision, PortError> {
        Ok(self.decide(key, limit, window))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_one_request_per_share_of_the_window() {
        let limiter = MemoryRateLimiter::new();
        let first = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!(
            first,
            RateDecision { allowed: true, limit: 2, remaining: 1, reset_after: secs(5), retry_after: Duration::ZERO }
        );
        let second = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!((second.allowed, second.remaining, second.reset_after), (true, 0, secs(10)));
        tokio::time::advance(secs(1)).await;
        let refused = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!(
            refused,
            RateDecision { allowed: false, limit: 2, remaining: 0, reset_after: secs(9), retry_after: secs(4) }
        );
        // A share of the window after the burst, one more; the refusal was not counted.
        tokio::time::advance(secs(4)).await;
        let third = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!((third.allowed, third.remaining, third.reset_after), (true, 0, secs(10)));
        // A whole window of quiet: the whole budget again.
        tokio::time::advance(WINDOW).await;
        assert_eq!(limiter.check("k", 2, WINDOW).await.unwrap().remaining, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_limit_refuses_everything() {
        let limiter = MemoryRateLimiter::new();
        let refused = limiter.check("k", 0, WINDOW).await.unwrap();
        assert_eq!(
            refused,
            RateDecision { allowed: false, limit: 0, remaining: 0, reset_after: WINDOW, retry_after: WINDOW }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_one_number_whatever_the_limit_and_idle_keys_are_dropped() {
        let limiter = MemoryRateLimiter::new();
        for _ in 0..10_000 {
            assert!(limiter.check("busy", 1_000_000_000, secs(60)).await.unwrap().allowed);
        }
        assert_eq!(limiter.state.lock().keys.len(), 1, "no log of requests");
        for i in 0..5000 {
            limiter.check(&format!("client-{i}"), 10, secs(1)).await.unwrap();
        }
        tokio::time::advance(secs(2)).await;
        for _ in 0..5000 {
            limiter.check("busy", u32::MAX, secs(1)).await.unwrap();
        }
        let keys = limiter.state.lock().keys.len();
        assert!(keys <= SWEEP_EVERY, "{keys} keys kept");
    }
}
