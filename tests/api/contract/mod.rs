//! Contract tests of the ports: each test is written once, as a function of the port, and a macro per
//! port (`cache_contract!`, `rate_limit_contract!`, `events_contract!`) turns them into `#[tokio::test]`s
//! for one adapter. Each port's file runs them against its in-memory adapter; the Redis and Kafka
//! adapters run the same functions, so the tests use real (short) waits, never a paused clock, and
//! unique keys, topics and groups, so that they can share a server with other tests and earlier runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cache;
pub mod events;
pub mod rate_limit;

use std::time::Duration;

/// The longest any single step may take, even against a real server.
pub const WAIT: Duration = Duration::from_secs(10);

/// A name no other test or run uses.
pub fn unique(what: &str) -> String {
    format!("contract-{what}-{}", uuid::Uuid::new_v4())
}
