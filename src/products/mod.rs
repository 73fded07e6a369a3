//! The products service: the catalogue, admin-only writes, and every change
//! published as an event through the transactional outbox.
//!
//! `domain` holds the product and its rules, `events` the published event
//! format, `service` the use cases, `relay` the outbox publisher, `fixtures`
//! the demo catalogue, `http` the routes.

pub mod domain;
pub mod events;
pub mod fixtures;
pub mod http;
pub mod relay;
pub mod service;

pub use service::ProductService;
