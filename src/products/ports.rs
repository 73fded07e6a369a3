//! Storage of the catalogue and its transactional outbox (MySQL in production).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::domain::{Product, ProductQuery};
use crate::ports::events::Headers;
use crate::ports::{Page, PortError, Probe, WriteError};

/// An event written in the same transaction as the change it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub id: Uuid,
    /// Partitioning key: the product id.
    pub key: String,
    /// The serialized event (JSON), exactly as it goes on the bus.
    pub payload: Vec<u8>,
    /// The record headers it goes with (the change's trace context).
    pub headers: Headers,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait ProductStore: Probe {
    /// MUST filter, sort (ties broken by id), count and page in the store.
    async fn list(&self, query: &ProductQuery) -> Result<Page<Product>, PortError>;
    async fn get(&self, id: Uuid) -> Result<Option<Product>, PortError>;
    /// The products that exist among `ids`, in any order.
    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Product>, PortError>;
    /// MUST store the product and its event atomically: both or neither.
    async fn create(&self, product: &Product, event: &OutboxEvent) -> Result<(), WriteError>;
    /// Replaces the product if its stored version is `expected_version`, with its
    /// event, atomically. MUST fail with `NotFound` or `Conflict` otherwise.
    async fn update(&self, product: &Product, expected_version: u64, event: &OutboxEvent) -> Result<(), WriteError>;
    /// Deletes the product if its stored version is `expected_version`, with its
    /// event, atomically. MUST fail with `NotFound` or `Conflict` otherwise.
    async fn delete(&self, id: Uuid, expected_version: u64, event: &OutboxEvent) -> Result<(), WriteError>;
}

#[async_trait]
pub trait Outbox: Probe {
    /// Claims up to `limit` unsent events, oldest first, each leased to `owner`
    /// for `lease`. An event under another owner's live lease MUST NOT be
    /// returned, nor an event whose key has an older unsent event under such a
    /// lease (so per-product order survives two relays). An owner may claim its
    /// own leased events again at once (a relay retrying what it could not
    /// publish). An expired lease makes the event claimable by anyone: after a
    /// relay crash it may be published twice.
    async fn claim(&self, owner: &str, limit: usize, lease: Duration) -> Result<Vec<OutboxEvent>, PortError>;
    /// Marks events as published; they are never claimed again.
    async fn mark_sent(&self, ids: &[Uuid]) -> Result<(), PortError>;
    /// How many events are not yet marked sent.
    async fn pending(&self) -> Result<u64, PortError>;
}
