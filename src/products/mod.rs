//! The products service: the catalogue, admin-only writes, and every change
//! published as an event through the transactional outbox.
//!
//! `domain` holds the product and its rules, `ports` what the service needs
//! (its store and outbox), `service` the use cases, `events` the events it
//! publishes (format: `contracts::product_events`), `relay` the outbox
//! publisher, `read_cache` the products kept in front of a remote store and
//! `cache_follower` the events that keep it exact, `fixtures` the demo
//! catalogue, `http` the routes.

pub mod cache_follower;
pub mod domain;
pub mod events;
pub mod fixtures;
pub mod http;
pub mod ports;
pub mod read_cache;
pub mod relay;
pub mod service;

pub use service::ProductService;
