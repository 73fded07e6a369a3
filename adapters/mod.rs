//! Adapters: implementations of the ports in `src/ports`.
//!
//! - `memory`: in-memory twins of every infrastructure port (the all-in-one
//!   runtime, demos and tests); real code that keeps the same contracts.
//! - `http`: the services' calls to each other (token validation, catalogue
//!   lookups) over an `Upstream`, in-process or over the network.

pub mod http;
pub mod memory;
