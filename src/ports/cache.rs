//! A key-value cache with TTLs (Redis in production).

use std::time::Duration;

use async_trait::async_trait;

use super::{PortError, Probe};

#[async_trait]
pub trait Cache: Probe {
    /// Values for `keys`, in the same order, `None` for a miss; one round trip.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, PortError>;
    /// Stores every entry with the same time to live; one round trip.
    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> Result<(), PortError>;
    async fn delete(&self, key: &str) -> Result<(), PortError>;
}
