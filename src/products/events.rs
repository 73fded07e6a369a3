//! The published event format on topic `product-events` (key = product id):
//! `{"eventId", "eventType", "occurredAt", "version", "data"}` where `data` is the
//! product, or `{"id"}` for a delete. This is a contract with every consumer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::domain::Product;
use crate::ports::products::OutboxEvent;

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
    pub data: serde_json::Value,
}

#[derive(Serialize)]
struct Deleted {
    id: Uuid,
}

impl ProductEvent {
    pub fn changed(event_type: EventType, product: &Product) -> Self {
        ProductEvent {
            event_id: Uuid::now_v7(),
            event_type,
            occurred_at: product.updated_at,
            version: product.version,
            data: serde_json::to_value(product).unwrap_or_default(),
        }
    }

    pub fn deleted(product: &Product, at: DateTime<Utc>) -> Self {
        ProductEvent {
            event_id: Uuid::now_v7(),
            event_type: EventType::ProductDeleted,
            occurred_at: at,
            version: product.version + 1,
            data: serde_json::to_value(Deleted { id: product.id }).unwrap_or_default(),
        }
    }

    /// The outbox row carrying this event, keyed by the product id.
    pub fn to_outbox(&self, product_id: Uuid) -> OutboxEvent {
        OutboxEvent {
            id: self.event_id,
            key: product_id.to_string(),
            payload: serde_json::to_vec(self).unwrap_or_default(),
            created_at: self.occurred_at,
        }
    }
}
