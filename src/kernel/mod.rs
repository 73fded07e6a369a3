//! The shared vocabulary every service speaks: exact money, field validation,
//! the clock the stores record, and who a caller is. It depends on nothing else
//! in the crate.

pub mod clock;
pub mod identity;
pub mod money;
pub mod ttl;
pub mod validation;
