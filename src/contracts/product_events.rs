//! The event format on topic `product-events` (key = product id):
//! `{"eventId", "eventType", "occurredAt", "version", "data"}` where `data` is the
//! product, or `{"id"}` for a delete. The products service publishes it; the
//! carts service (and any other consumer) reads it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductEvent {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    /// The product's version after the change (a delete is one past the last).
    pub version: u64,
    /// The product as the products service shows it, or `Deleted` for a delete.
    pub data: serde_json::Value,
}

/// `data` of a `PRODUCT_DELETED` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub id: Uuid,
}
