//! Agora: an e-commerce backend built as microservices — an API gateway and the
//! users, products and carts services — that runs as tokio tasks in one process
//! on in-memory adapters, or as separate processes on real infrastructure.
//!
//! Layout: `ports` names what the services need from outside; `adapters` (a
//! top-level folder) implements those ports; `users`, `products`, `carts` and
//! `gateway` each hold one service (`domain`, `service`, `http`); `runtime` wires
//! adapters to services from `config` — the only place that knows both sides.

#[path = "../adapters/mod.rs"]
pub mod adapters;
pub mod carts;
pub mod cli;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod http;
pub mod money;
pub mod openapi;
pub mod ports;
pub mod products;
pub mod runtime;
pub mod telemetry;
pub mod users;
pub mod validation;
