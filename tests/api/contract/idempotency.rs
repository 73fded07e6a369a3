//! The `IdempotencyStore` contract.

use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::MemoryIdempotencyStore;
use agora::gateway::ports::{Claim, IdempotencyStore, KeptAnswer};
use tokio::time::timeout;

use super::{WAIT, unique};

macro_rules! idempotency_contract {
    ($(#[$attr:meta])* $name:ident, $make:expr) => {
        $crate::contract::port_contract!(idempotency, [$(#[$attr])*] $name, $make;
            a_free_key_is_claimed_once,
            an_answer_is_kept_for_the_same_request_only,
            a_released_key_is_free_again,
            a_claim_ends_with_its_lease,
            concurrent_twins_claim_once,
        );
    };
}

idempotency_contract!(memory, || async { Some(Arc::new(MemoryIdempotencyStore::new()) as Arc<dyn IdempotencyStore>) });
// The same contract on the real server (scripts/infra up).
idempotency_contract!(redis, || async {
    crate::real::idempotency().await.map(|s| Arc::new(s) as Arc<dyn IdempotencyStore>)
});

const LEASE: Duration = Duration::from_secs(30);

async fn claim(store: &dyn IdempotencyStore, key: &str, fingerprint: &str, lease: Duration) -> Claim {
    timeout(WAIT, store.claim(key, fingerprint, lease)).await.expect("claim timed out").expect("claim failed")
}

fn answer() -> KeptAnswer {
    KeptAnswer { status: 201, body: br#"{"success":true,"data":{"id":"x|y"}}"#.to_vec() }
}

pub async fn a_free_key_is_claimed_once(store: Arc<dyn IdempotencyStore>) {
    let key = unique("key");
    assert_eq!(claim(&*store, &key, "fp-1", LEASE).await, Claim::Claimed);
    assert_eq!(claim(&*store, &key, "fp-1", LEASE).await, Claim::InProgress);
    assert_eq!(claim(&*store, &key, "fp-2", LEASE).await, Claim::OtherRequest);
}

pub async fn an_answer_is_kept_for_the_same_request_only(store: Arc<dyn IdempotencyStore>) {
    let key = unique("key");
    claim(&*store, &key, "fp-1", LEASE).await;
    // Another request cannot put its answer under a key it does not hold.
    store.finish(&key, "fp-2", &KeptAnswer { status: 200, body: b"{}".to_vec() }, LEASE).await.unwrap();
    assert_eq!(claim(&*store, &key, "fp-1", LEASE).await, Claim::InProgress);
    store.finish(&key, "fp-1", &answer(), LEASE).await.unwrap();
    assert_eq!(claim(&*store, &key, "fp-1", LEASE).await, Claim::Answered(answer()));
    assert_eq!(claim(&*store, &key, "fp-2", LEASE).await, Claim::OtherRequest);
    // An answered key is not released by a late failure.
    store.release(&key, "fp-1").await.unwrap();
    assert_eq!(claim(&*store, &key, "fp-1", LEASE).await, Claim::Answered(answer()));
}

pub async fn a_released_key_is_free_again(store: Arc<dyn IdempotencyStore>) {
    let key = unique("key");
    claim(&*store, &key, "fp-1", LEASE).await;
    store.release(&key, "fp-2").await.unwrap();
    assert_eq!(claim(&*store, &key, "fp-1", LEASE).await, Claim::InProgress, "only its holder frees a key");
    store.release(&key, "fp-1").await.unwrap();
    assert_eq!(claim(&*store, &key, "fp-2", LEASE).await, Claim::Claimed);
}

pub async fn a_claim_ends_with_its_lease(store: Arc<dyn IdempotencyStore>) {
    let key = unique("key");
    claim(&*store, &key, "fp-1", Duration::from_millis(300)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(claim(&*store, &key, "fp-1", LEASE).await, Claim::Claimed, "a crashed request's claim ends");
}

pub async fn concurrent_twins_claim_once(store: Arc<dyn IdempotencyStore>) {
    let key = unique("key");
    let claims = (0..20).map(|_| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move { claim(&*store, &key, "fp", LEASE).await })
    });
    let got: Vec<Claim> = futures::future::join_all(claims).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(got.iter().filter(|c| **c == Claim::Claimed).count(), 1, "{got:?}");
    assert!(got.iter().all(|c| matches!(c, Claim::Claimed | Claim::InProgress)));
}
