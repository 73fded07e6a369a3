//! Agora: an e-commerce backend built as microservices — an API gateway and the
//! users, products and carts services — that runs as tokio tasks in one process
//! on in-memory adapters, or as separate processes on real infrastructure.
//!
//! Layout, dependencies pointing inward:
//! - `kernel`: the shared vocabulary (money, validation, clock, identity);
//! - `contracts`: what two services agree on (product events, internal calls);
//! - `ports`: the shared ports (event bus, cache, rate limiter, probe);
//! - `http`: HTTP plumbing that knows no service;
//! - `users`, `products`, `carts`, `gateway`: one service each (`domain`,
//!   `ports`, `service`, `http`);
//! - `adapters` (a top-level folder): the ports' implementations;
//! - `runtime`: the composition root, the only place that knows both services
//!   and adapters, from `config`.

#[path = "../adapters/mod.rs"]
pub mod adapters;
pub mod carts;
pub mod cli;
pub mod config;
pub mod contracts;
pub mod gateway;
pub mod http;
pub mod kernel;
pub mod openapi;
pub mod ports;
pub mod products;
pub mod runtime;
pub mod telemetry;
pub mod users;
