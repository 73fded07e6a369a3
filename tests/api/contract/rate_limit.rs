//! The `RateLimiter` contract.

use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::MemoryRateLimiter;
use agora::ports::rate_limit::{RateDecision, RateLimiter};
use tokio::time::timeout;

use super::{WAIT, unique};

/// `rate_limit_contract!(name, || async { ... as Arc<dyn RateLimiter> })`: a module `name` with one
/// `#[tokio::test]` per contract test, each on a fresh limiter from the factory. Attributes before
/// `name` (e.g. `#[ignore = "needs Redis"]`) go on every test.
macro_rules! rate_limit_contract {
    ($(#[$attr:meta])* $name:ident, $make:expr) => {
        $crate::contract::port_contract!(rate_limit, [$(#[$attr])*] $name, $make;
            ping_answers,
            exact_under_concurrency,
            remaining_counts_down,
            window_resets,
            refused_requests_are_not_counted,
            keys_are_independent,
        );
    };
}

rate_limit_contract!(memory, || async { Some(Arc::new(MemoryRateLimiter::new()) as Arc<dyn RateLimiter>) });
// The same contract on the real server (scripts/infra up).
rate_limit_contract!(redis, || async {
    crate::real::rate_limiter().await.map(|l| Arc::new(l) as Arc<dyn RateLimiter>)
});

const LONG: Duration = Duration::from_secs(60);

async fn check(limiter: &dyn RateLimiter, key: &str, limit: u32, window: Duration) -> RateDecision {
    timeout(WAIT, limiter.check(key, limit, window)).await.expect("check timed out").expect("check failed")
}

fn assert_refused(decision: &RateDecision, limit: u32, window: Duration) {
    assert!(!decision.allowed, "{decision:?}");
    assert_eq!((decision.limit, decision.remaining), (limit, 0), "{decision:?}");
    assert!(decision.retry_after > Duration::ZERO && decision.retry_after <= window, "{decision:?}");
    assert!(decision.reset_after <= window, "{decision:?}");
}

pub async fn ping_answers(limiter: Arc<dyn RateLimiter>) {
    timeout(Duration::from_secs(1), limiter.ping()).await.expect("ping took over a second").expect("ping failed");
}

/// Of 100 simultaneous checks against a limit of 50, exactly 50 pass, each seeing a different remaining budget.
pub async fn exact_under_concurrency(limiter: Arc<dyn RateLimiter>) {
    let key = unique("rate");
    let checks: Vec<_> = (0..100)
        .map(|_| {
            let (limiter, key) = (Arc::clone(&limiter), key.clone());
            tokio::spawn(async move { limiter.check(&key, 50, LONG).await })
        })
        .collect();
    let mut decisions = Vec::new();
    for check in checks {
        decisions.push(timeout(WAIT, check).await.expect("check timed out").unwrap().expect("check failed"));
    }
    let (allowed, refused): (Vec<_>, Vec<_>) = decisions.into_iter().partition(|decision| decision.allowed);
    assert_eq!((allowed.len(), refused.len()), (50, 50));

    let mut remaining: Vec<u32> = allowed.iter().map(|decision| decision.remaining).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..50).collect::<Vec<_>>());
    for decision in &allowed {
        assert_eq!(decision.limit, 50);
        assert!(decision.reset_after > Duration::ZERO && decision.reset_after <= LONG, "{decision:?}");
    }
    for decision in &refused {
        assert_refused(decision, 50, LONG);
    }
    // The refusals were not counted, and did not free anything either.
    assert_refused(&check(&*limiter, &key, 50, LONG).await, 50, LONG);
}

pub async fn remaining_counts_down(limiter: Arc<dyn RateLimiter>) {
    let key = unique("rate");
    for expected in [2, 1, 0] {
        let decision = check(&*limiter, &key, 3, LONG).await;
        assert!(decision.allowed, "{decision:?}");
        assert_eq!((decision.limit, decision.remaining, decision.retry_after), (3, expected, Duration::ZERO));
        assert!(decision.reset_after > Duration::ZERO && decision.reset_after <= LONG, "{decision:?}");
    }
    assert_refused(&check(&*limiter, &key, 3, LONG).await, 3, LONG);
}

pub async fn window_resets(limiter: Arc<dyn RateLimiter>) {
    let key = unique("rate");
    let window = Duration::from_secs(1);
    assert!(check(&*limiter, &key, 2, window).await.allowed);
    assert!(check(&*limiter, &key, 2, window).await.allowed);
    assert_refused(&check(&*limiter, &key, 2, window).await, 2, window);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let decision = check(&*limiter, &key, 2, window).await;
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.remaining, 1, "both earlier requests left the window");
}

/// A refusal is not counted: once the allowed request leaves the window, the key is free again.
pub async fn refused_requests_are_not_counted(limiter: Arc<dyn RateLimiter>) {
    let key = unique("rate");
    let window = Duration::from_secs(1);
    assert!(check(&*limiter, &key, 1, window).await.allowed);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let refused = check(&*limiter, &key, 1, window).await;
    assert_refused(&refused, 1, window);
    assert!(refused.retry_after <= Duration::from_millis(500), "the first request leaves first: {refused:?}");
    // Past the first request's window, but within the refused one's, had it been counted.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let decision = check(&*limiter, &key, 1, window).await;
    assert!(decision.allowed, "{decision:?}");
}

pub async fn keys_are_independent(limiter: Arc<dyn RateLimiter>) {
    let (busy, idle) = (unique("rate-busy"), unique("rate-idle"));
    assert!(check(&*limiter, &busy, 1, LONG).await.allowed);
    assert_refused(&check(&*limiter, &busy, 1, LONG).await, 1, LONG);
    let decision = check(&*limiter, &idle, 1, LONG).await;
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.remaining, 0);
}
