//! The users service: accounts, passwords, JWTs and their revocation.
//!
//! `domain` holds the user and the rules on its fields, `ports` what the
//! service needs (its store), `password` and `tokens` the cryptography,
//! `service` the use cases, `http` the routes.

pub mod domain;
pub mod http;
pub mod password;
pub mod ports;
pub mod service;
pub mod tokens;

pub use service::UserService;
