//! The integration suite: the whole system driven over real HTTP through the
//! gateway, and the ports' contract tests. One binary, so it links once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod carts;
mod compose;
mod contract;
mod events;
mod failover;
mod gateway;
mod helpers;
mod hostile;
mod observability;
mod processes;
mod products;
mod races;
mod real;
mod startup;
mod topology;
mod users;
