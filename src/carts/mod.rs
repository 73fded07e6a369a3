//! The carts service: carts with denormalized product fields, product details
//! read cache-aside, and a consumer of `product-events` that keeps lines fresh.
//!
//! `domain` holds lines, snapshots and the priced cart view, `ports` what the
//! service needs (its store and the catalogue), `service` the use cases,
//! `consumer` the event handling, `http` the routes.

pub mod consumer;
pub mod domain;
pub mod http;
pub mod ports;
pub mod service;

pub use service::CartService;
