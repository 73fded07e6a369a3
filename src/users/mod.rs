//! The users service: accounts, passwords, JWTs and their revocation.
//!
//! `domain` holds the user and the rules on its fields, `password` and `tokens`
//! the cryptography, `service` the use cases, `http` the routes.

pub mod domain;
pub mod http;
pub mod password;
pub mod service;
pub mod tokens;

pub use service::UserService;
