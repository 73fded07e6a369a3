//! The carts service: carts with denormalized product fields, product details
//! read cache-aside, and a consumer of `product-events` that keeps lines fresh.
//!
//! `domain` holds lines, snapshots and the priced cart view, `service` the use
//! cases, `consumer` the event handling, `http` the routes.

pub mod consumer;
pub mod domain;
pub mod http;
pub mod service;

pub use service::CartService;
