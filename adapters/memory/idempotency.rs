//! The in-memory `IdempotencyStore`, for tests and single-process runs: each
//! key decided atomically in a moka cache with a TTL per entry.

use std::time::Duration;

use async_trait::async_trait;
use moka::ops::compute::Op;
use moka::sync::Cache;

use crate::gateway::ports::{Claim, IdempotencyStore, KeptAnswer};
use crate::kernel::ttl::{PerEntryTtl, Timed};
use crate::ports::{PortError, Probe};

const CAPACITY: u64 = 1_000_000;

#[derive(Clone)]
enum Held {
    InProgress { fingerprint: String },
    Answered { fingerprint: String, answer: KeptAnswer },
}

impl Held {
    fn fingerprint(&self) -> &str {
        match self {
            Held::InProgress { fingerprint } | Held::Answered { fingerprint, .. } => fingerprint,
        }
    }
}

pub struct MemoryIdempotencyStore {
    keys: Cache<String, Timed<Held>>,
}

impl MemoryIdempotencyStore {
    pub fn new() -> Self {
        MemoryIdempotencyStore { keys: Cache::builder().max_capacity(CAPACITY).expire_after(PerEntryTtl).build() }
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Probe for MemoryIdempotencyStore {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<Claim, PortError> {
        let mut outcome = Claim::Claimed;
        self.keys.entry(key.to_string()).and_compute_with(|held| match held.map(|e| e.into_value().value) {
            None => Op::Put(Timed { value: Held::InProgress { fingerprint: fingerprint.to_string() }, ttl: lease }),
            Some(held) => {
                outcome = match held {
                    h if h.fingerprint() != fingerprint => Claim::OtherRequest,
                    Held::InProgress { .. } => Claim::InProgress,
                    Held::Answered { answer, .. } => Claim::Answered(answer),
                };
                Op::Nop
            }
        });
        Ok(outcome)
    }

    async fn finish(&self, key: &str, fingerprint: &str, answer: &KeptAnswer, ttl: Duration) -> Result<(), PortError> {
        self.keys.entry(key.to_string()).and_compute_with(|held| match held.map(|e| e.into_value().value) {
            Some(Held::InProgress { fingerprint: f }) if f == fingerprint => {
                Op::Put(Timed { value: Held::Answered { fingerprint: f, answer: answer.clone() }, ttl })
            }
            _ => Op::Nop,
        });
        Ok(())
    }

    async fn release(&self, key: &str, fingerprint: &str) -> Result<(), PortError> {
        self.keys.entry(key.to_string()).and_compute_with(|held| match held.map(|e| e.into_value().value) {
            Some(Held::InProgress { fingerprint: f }) if f == fingerprint => Op::Remove,
            _ => Op::Nop,
        });
        Ok(())
    }
}
