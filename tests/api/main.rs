//! The integration suite: the whole system driven over real HTTP, and the
//! ports' contract tests. One binary, so it links once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
