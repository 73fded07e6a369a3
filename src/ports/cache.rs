//! A cache of versioned entries with TTLs (Redis in production). A key never
//! goes back in time: a write older than what it holds, or older than what an
//! invalidation announced, does not land — so a reader that fetched old data
//! while a change went by cannot put it back after the change's invalidation.

use std::time::Duration;

use async_trait::async_trait;

use super::{PortError, Probe};

/// A value to cache, with the version of what it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub key: String,
    pub version: u64,
    pub value: Vec<u8>,
}

#[async_trait]
pub trait Cache: Probe {
    /// Values for `keys`, in the same order, `None` for a miss; one round trip.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, PortError>;
    /// Stores each entry for `ttl`, one round trip, atomically per key. An entry
    /// MUST NOT land when its key holds the same or a newer version, nor when an
    /// invalidation announced a newer version.
    async fn put_many(&self, entries: &[Versioned], ttl: Duration) -> Result<(), PortError>;
    /// Announces `version` of `key` (a change, or a deletion one version past
    /// the last): drops what is stored if it is older, and for `ttl` keeps out
    /// any later write older than `version`. A value of `version` or newer may
    /// still land (it is the announced data).
    async fn invalidate(&self, key: &str, version: u64, ttl: Duration) -> Result<(), PortError>;
}

/// What a key holds, as the adapters keep it (and any cache of versioned
/// values in a process: `V` is what it stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot<V = Vec<u8>> {
    Value {
        version: u64,
        value: V,
    },
    /// An invalidation: no value, but nothing older than `version` may land.
    Floor {
        version: u64,
    },
}

impl<V> Slot<V> {
    /// Whether a write of `version` may replace this.
    pub fn accepts(&self, version: u64) -> bool {
        match self {
            Slot::Value { version: held, .. } => version > *held,
            Slot::Floor { version: floor } => version >= *floor,
        }
    }

    /// Whether an invalidation of `version` changes this.
    pub fn outdated_by(&self, version: u64) -> bool {
        match self {
            Slot::Value { version: held, .. } | Slot::Floor { version: held } => *held < version,
        }
    }

    pub fn value(self) -> Option<V> {
        match self {
            Slot::Value { value, .. } => Some(value),
            Slot::Floor { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_of_a_slot() {
        let value = Slot::Value { version: 3, value: b"x".to_vec() };
        assert!(!value.accepts(3) && !value.accepts(2) && value.accepts(4));
        assert!(!value.outdated_by(3) && value.outdated_by(4));
        let floor: Slot = Slot::Floor { version: 3 };
        assert!(floor.accepts(3) && floor.accepts(4) && !floor.accepts(2));
        assert!(!floor.outdated_by(2) && floor.outdated_by(4));
        assert_eq!(floor.value(), None);
    }
}
