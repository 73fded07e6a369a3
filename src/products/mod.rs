//! The products service: the catalogue, admin-only writes, and every change
//! published as an event through the transactional outbox.
//!
//! `domain` holds the product and its rules, `ports` what the service needs
//! (its store and outbox), `service` the use cases, `events` the events it
//! publishes (format: `contracts::product_events`), `relay` the outbox
//! publisher, `fixtures` the demo catalogue, `http` the routes.

pub mod domain;
pub mod events;
pub mod fixtures;
pub mod http;
pub mod ports;
pub mod relay;
pub mod service;

pub use service::ProductService;
