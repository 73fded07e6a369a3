//! Adapters: implementations of the ports in `src/ports`.
//!
//! - `memory`: in-memory twins of every infrastructure port (the all-in-one
//!   runtime, demos and tests); real code that keeps the same contracts.
//! - `kafka`, `redis`, `postgres`, `mysql`, `mongo`: the real servers.
//! - `http`: the services' calls to each other (token validation, catalogue
//!   lookups) over an `Upstream`, in-process or over the network.

pub mod http;
pub mod kafka;
pub mod memory;
pub mod mongo;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod sql;
