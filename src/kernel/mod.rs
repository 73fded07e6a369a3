//! The shared vocabulary every service speaks: exact money, field validation,
//! the clock the stores record, who a caller is; and two small mechanisms many
//! parts use (a circuit breaker, per-entry TTLs). It depends on nothing else in
//! the crate.

pub mod breaker;
pub mod clock;
pub mod decimal;
pub mod identity;
pub mod money;
pub mod ttl;
pub mod validation;
