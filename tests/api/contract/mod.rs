//! Contract tests of the ports: each test is written once, as a function of the port, and a macro per
//! port (`cache_contract!`, `rate_limit_contract!`, `events_contract!`, `user_store_contract!`,
//! `product_store_contract!`, `cart_store_contract!`) turns them into `#[tokio::test]`s for one adapter.
//! Each port's file runs them against its in-memory adapter; the Redis, Kafka, MongoDB, MySQL and
//! PostgreSQL adapters run the same functions, so the tests use real (short) waits, never a paused
//! clock, and unique keys, topics, groups, ids, emails and categories, so that they can share a server
//! with other tests and earlier runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// `port_contract!(module, [attrs] name, factory; tests…)`: a module `name` holding one
/// `#[tokio::test]` per contract test `contract::module::test`, each given a fresh port from the
/// factory (an `Option`: a real adapter's factory gives `None` where no server is configured, and
/// the test is skipped). The attributes go on every test. Each port's own macro names its tests.
macro_rules! port_contract {
    ($module:ident, $attrs:tt $name:ident, $make:expr; $($test:ident),* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $($crate::contract::port_contract!(@test $module $attrs $make, $test);)*
        }
    };
    (@test $module:ident [$($attr:tt)*] $make:expr, $test:ident) => {
        $($attr)*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let make = $make;
            // `None`: the real server is not configured here (see `real::available`).
            let Some(port) = make().await else { return };
            $crate::contract::$module::$test(port).await;
        }
    };
}
pub(crate) use port_contract;

pub mod cache;
pub mod carts;
pub mod events;
pub mod idempotency;
pub mod products;
pub mod rate_limit;
pub mod users;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

/// The longest any single step may take, even against a real server.
pub const WAIT: Duration = Duration::from_secs(10);

/// A name no other test or run uses.
pub fn unique(what: &str) -> String {
    format!("contract-{what}-{}", uuid::Uuid::new_v4())
}

/// Now, to the millisecond: every store keeps at least that precision (MongoDB keeps no more), so a
/// value written with it reads back equal.
pub fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}
