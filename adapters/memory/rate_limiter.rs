//! The in-memory rate limiter: an exact sliding-window log per key, for tests and single-process runs.
//!
//! Every check runs under one mutex, which is what makes it exact under concurrency.
//! Time is `tokio::time::Instant`, so tests can pause and advance the clock.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::ports::rate_limit::{RateDecision, RateLimiter};
use crate::ports::{PortError, Probe};

/// Keys whose log has emptied are dropped every this many checks (or, once there are more keys,
/// every as many checks as keys were kept at the last sweep: amortised O(1) per check).
const SWEEP_EVERY: usize = 1024;

#[derive(Default)]
pub struct MemoryRateLimiter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    logs: HashMap<String, Log>,
    checks_since_sweep: usize,
    kept_at_sweep: usize,
}

struct Log {
    /// When each counted request came, oldest first; at most `limit` of them.
    hits: VecDeque<Instant>,
    /// The window of the latest check, so that a sweep knows when the log is idle.
    window: Duration,
}

impl Log {
    fn prune(&mut self, now: Instant) {
        while self.hits.front().is_some_and(|&at| now.saturating_duration_since(at) >= self.window) {
            self.hits.pop_front();
        }
    }

    /// Until the request at `at` leaves the window.
    fn until_leaves(&self, at: Option<&Instant>, now: Instant) -> Duration {
        at.map_or(self.window, |&at| self.window.saturating_sub(now.saturating_duration_since(at)))
    }
}

impl State {
    fn sweep(&mut self, now: Instant) {
        self.logs.retain(|_, log| log.hits.back().is_some_and(|&at| now.saturating_duration_since(at) < log.window));
        self.checks_since_sweep = 0;
        self.kept_at_sweep = self.logs.len();
    }
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn decide(&self, key: &str, limit: u32, window: Duration) -> RateDecision {
        let now = Instant::now();
        let mut state = self.state.lock();
        state.checks_since_sweep += 1;
        if state.checks_since_sweep >= SWEEP_EVERY.max(state.kept_at_sweep) {
            state.sweep(now);
        }
        let log = state.logs.entry(key.to_owned()).or_insert_with(|| Log { hits: VecDeque::new(), window });
        log.window = window;
        log.prune(now);

        let counted = log.hits.len();
        if counted < limit as usize {
            log.hits.push_back(now);
            // `counted < limit`, so it fits in a u32 and the subtraction cannot underflow.
            let remaining = limit - 1 - counted as u32;
            let reset_after = log.until_leaves(log.hits.front(), now);
            RateDecision { allowed: true, limit, remaining, reset_after, retry_after: Duration::ZERO }
        } else {
            // One more is allowed once the log is below the limit again: normally when the oldest leaves,
            // but more must leave if the limit was lowered since they were counted.
            let blocking = (limit > 0).then(|| log.hits.get(counted - limit as usize)).flatten();
            let retry_after = log.until_leaves(blocking, now);
            let reset_after = log.until_leaves(log.hits.front(), now);
            RateDecision { allowed: false, limit, remaining: 0, reset_after, retry_after }
        }
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
    async fn window_slides_request_by_request() {
        let limiter = MemoryRateLimiter::new();
        let first = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!(
            first,
            RateDecision { allowed: true, limit: 2, remaining: 1, reset_after: WINDOW, retry_after: Duration::ZERO }
        );

        tokio::time::advance(secs(4)).await;
        let second = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!((second.allowed, second.remaining, second.reset_after), (true, 0, secs(6)));

        tokio::time::advance(secs(1)).await;
        let refused = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!(
            refused,
            RateDecision { allowed: false, limit: 2, remaining: 0, reset_after: secs(5), retry_after: secs(5) }
        );

        // Exactly when the first request leaves the window, one slot is free again.
        tokio::time::advance(secs(5)).await;
        let third = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!((third.allowed, third.remaining, third.reset_after), (true, 0, secs(4)));

        // The refusal was not counted: after the second request leaves, one slot is free.
        tokio::time::advance(secs(4)).await;
        let fourth = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!((fourth.allowed, fourth.remaining, fourth.reset_after), (true, 0, secs(6)));
    }

    #[tokio::test(start_paused = true)]
    async fn lowered_limit_waits_for_enough_to_leave() {
        let limiter = MemoryRateLimiter::new();
        for _ in 0..3 {
            assert!(limiter.check("k", 3, WINDOW).await.unwrap().allowed);
            tokio::time::advance(secs(1)).await;
        }
        // Hits at 0, 1 and 2 s; now 3 s. With a limit of 2, the hit at 1 s must leave too.
        let refused = limiter.check("k", 2, WINDOW).await.unwrap();
        assert_eq!((refused.allowed, refused.reset_after, refused.retry_after), (false, secs(7), secs(8)));
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
    async fn idle_keys_are_dropped() {
        let limiter = MemoryRateLimiter::new();
        for i in 0..5000 {
            limiter.check(&format!("client-{i}"), 10, secs(1)).await.unwrap();
        }
        tokio::time::advance(secs(2)).await;
        // The last sweep kept about 4096 keys, so the next one comes within as many checks.
        for _ in 0..5000 {
            limiter.check("busy", u32::MAX, secs(1)).await.unwrap();
        }
        let keys = limiter.state.lock().logs.len();
        assert!(keys <= SWEEP_EVERY, "{keys} keys kept");
    }
}
