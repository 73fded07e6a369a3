//! Global request budgets (Redis in production, shared by every gateway), by
//! GCRA (the generic cell rate algorithm): a key may spend `limit` requests at
//! once, and its budget refills evenly, one request every `window / limit`. A
//! key is one number (when its budget is whole again), whatever the limit and
//! the traffic — constant memory and constant work per check.

use std::time::Duration;

use async_trait::async_trait;

use super::{PortError, Probe};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the budget is whole again.
    pub reset_after: Duration,
    /// On a refusal: until one more request would be allowed.
    pub retry_after: Duration,
}

#[async_trait]
pub trait RateLimiter: Probe {
    /// Counts one request for `key` against a budget of `limit` per `window`
    /// (the rules of `gcra`). MUST be exact under concurrency: of N
    /// simultaneous checks on a fresh key, exactly min(N, limit) are allowed. A
    /// refused request is not counted.
    async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision, PortError>;
}

/// The algorithm, in exact integer time: times are nanoseconds multiplied by
/// `limit`, so that one request's share of the window (`window / limit`) is a
/// whole number of units.
pub mod gcra {
    use super::RateDecision;
    use std::time::Duration;

    /// What a key holds: when its budget is whole again (the theoretical
    /// arrival time), in nanoseconds × `limit`, and the limit it was counted in.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Tat {
        pub scaled: u128,
        pub limit: u32,
    }

    impl Tat {
        /// The same instant in units of `limit` (exact when the limit is unchanged).
        fn in_units_of(self, limit: u32) -> u128 {
            if self.limit == limit || self.limit == 0 {
                self.scaled
            } else {
                (self.scaled * u128::from(limit)).div_ceil(u128::from(self.limit))
            }
        }
    }

    /// Decides a request at `now` (nanoseconds since any fixed instant) for a
    /// key holding `held`; returns the decision and what the key holds next
    /// (unchanged on a refusal).
    pub fn decide(held: Tat, now: u128, limit: u32, window: Duration) -> (RateDecision, Tat) {
        if limit == 0 {
            let refused =
                RateDecision { allowed: false, limit, remaining: 0, reset_after: window, retry_after: window };
            return (refused, held);
        }
        let window_ns = window.as_nanos().max(1);
        let limit_u = u128::from(limit);
        // Scaled units: one request costs `window_ns`; a whole budget is `limit` of them.
        let now = now * limit_u;
        let tat = held.in_units_of(limit).max(now);
        let tolerance = window_ns * (limit_u - 1);
        let to_duration =
            |scaled: u128| Duration::from_nanos(scaled.div_ceil(limit_u).min(u128::from(u64::MAX)) as u64);
        if tat > now + tolerance {
            let decision = RateDecision {
                allowed: false,
                limit,
                remaining: 0,
                reset_after: to_duration(tat - now),
                retry_after: to_duration(tat - tolerance - now),
            };
            return (decision, held);
        }
        let next = tat + window_ns;
        // How many more would conform right now: those whose cost still fits in the tolerance.
        let room = (now + tolerance + window_ns).saturating_sub(next) / window_ns;
        let decision = RateDecision {
            allowed: true,
            limit,
            remaining: room.min(u128::from(limit - 1)) as u32,
            reset_after: to_duration(next - now),
            retry_after: Duration::ZERO,
        };
        (decision, Tat { scaled: next, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::gcra::{Tat, decide};
    use super::*;

    const S: u128 = 1_000_000_000;

    #[test]
    fn a_burst_then_an_even_refill() {
        let w = Duration::from_secs(60);
        let (mut tat, mut remaining) = (Tat::default(), Vec::new());
        for _ in 0..3 {
            let (d, next) = decide(tat, 100 * S, 3, w);
            assert!(d.allowed);
            remaining.push(d.remaining);
            tat = next;
        }
        assert_eq!(remaining, [2, 1, 0]);
        let (refused, same) = decide(tat, 100 * S, 3, w);
        assert!(!refused.allowed);
        assert_eq!(same, tat, "a refusal is not counted");
        assert_eq!(refused.retry_after, Duration::from_secs(20), "one request's share of the window");
        assert_eq!(refused.reset_after, Duration::from_secs(60));
        let (later, _) = decide(tat, 120 * S, 3, w);
        assert!(later.allowed && later.remaining == 0, "{later:?}");
        let (whole, _) = decide(tat, 200 * S, 3, w);
        assert_eq!(whole.remaining, 2, "a whole window later the budget is whole");
    }

    #[test]
    fn limits_that_do_not_divide_the_window_stay_exact() {
        let w = Duration::from_secs(1);
        let mut tat = Tat::default();
        let mut allowed = 0;
        for _ in 0..20 {
            let (d, next) = decide(tat, 5 * S, 7, w);
            allowed += u32::from(d.allowed);
            tat = next;
        }
        assert_eq!(allowed, 7);
        let (zero, _) = decide(Tat::default(), S, 0, w);
        assert!(!zero.allowed);
        let (huge, _) = decide(Tat::default(), S, 1_000_000_000, Duration::from_secs(60));
        assert!(huge.allowed && huge.remaining == 999_999_999);
    }
}
