//! A circuit breaker: after `threshold` consecutive failures to reach a
//! dependency, calls fail at once for `cooldown` instead of each waiting out a
//! timeout; then one trial call goes through, and its outcome closes the
//! circuit or opens it again. The gateway keeps one per upstream (where only
//! failing to reach the service counts: any answer, even a 503, is a success),
//! and one in front of each dependency that has a fallback.

use parking_lot::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Consecutive failures that open the circuit.
pub const THRESHOLD: u32 = 5;
/// How long an open circuit refuses before it lets a trial call through.
pub const COOLDOWN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The cooldown is over; `trial` while one call is testing the service.
    HalfOpen {
        trial: bool,
    },
}

#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

/// What the breaker says of a call about to be made.
#[must_use]
pub struct Admission<'a> {
    breaker: &'a Breaker,
    trial: bool,
    recorded: bool,
}

impl Default for Breaker {
    /// The upstreams' breaker: `THRESHOLD` failures, `COOLDOWN`.
    fn default() -> Self {
        Breaker::new(THRESHOLD, COOLDOWN)
    }
}

impl Breaker {
    /// Opens after `threshold` consecutive failures, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker { state: Mutex::new(State::Closed { failures: 0 }), threshold: threshold.max(1), cooldown }
    }

    /// `None`: the circuit is open, fail at once.
    pub fn admit(&self) -> Option<Admission<'_>> {
        let mut state = self.state.lock();
        let trial = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() < until => return None,
            State::Open { .. } | State::HalfOpen { trial: false } => {
                *state = State::HalfOpen { trial: true };
                true
            }
            State::HalfOpen { trial: true } => return None,
        };
        Some(Admission { breaker: self, trial, recorded: false })
    }

    /// `closed`, `open` or `half_open`, for logs and metrics.
    pub fn state(&self) -> &'static str {
        match *self.state.lock() {
            State::Closed { .. } => "closed",
            State::Open { until } if Instant::now() < until => "open",
            State::Open { .. } | State::HalfOpen { .. } => "half_open",
        }
    }
}

impl Admission<'_> {
    /// The call reached the service (`true`) or did not.
    pub fn record(mut self, reached: bool) -> bool {
        self.recorded = true;
        let breaker = self.breaker;
        let mut state = breaker.state.lock();
        *state = match (*state, reached) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < breaker.threshold => {
                State::Closed { failures: failures + 1 }
            }
            (_, false) => State::Open { until: Instant::now() + breaker.cooldown },
        };
        reached
    }
}

impl Drop for Admission<'_> {
    /// A trial call abandoned before its outcome (its caller went away) lets the next one try.
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            let mut state = self.breaker.state.lock();
            if *state == (State::HalfOpen { trial: true }) {
                *state = State::HalfOpen { trial: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(b: &Breaker) {
        b.admit().expect("admitted").record(false);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_then_tries_once_after_the_cooldown() {
        let b = Breaker::default();
        for _ in 0..THRESHOLD - 1 {
            fail(&b);
        }
        assert_eq!(b.state(), "closed");
        fail(&b);
        assert_eq!(b.state(), "open");
        assert!(b.admit().is_none(), "open: refused at once");
        tokio::time::advance(COOLDOWN).await;
        let trial = b.admit().expect("one trial after the cooldown");
        assert!(b.admit().is_none(), "only one trial at a time");
        trial.record(false);
        assert_eq!(b.state(), "open", "a failed trial opens it again");
        tokio::time::advance(COOLDOWN).await;
        b.admit().expect("trial").record(true);
        assert_eq!(b.state(), "closed");
        assert!(b.admit().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count_and_an_abandoned_trial_frees_the_slot() {
        let b = Breaker::default();
        for _ in 0..THRESHOLD - 1 {
            fail(&b);
        }
        b.admit().unwrap().record(true);
        fail(&b);
        assert_eq!(b.state(), "closed", "the count restarted");
        for _ in 1..THRESHOLD {
            fail(&b);
        }
        assert_eq!(b.state(), "open");
        tokio::time::advance(COOLDOWN).await;
        drop(b.admit().expect("trial"));
        assert!(b.admit().is_some(), "the abandoned trial's slot is free again");
    }
}
