//! The events this service publishes, built from its products in the format of
//! `contracts::product_events`, and the outbox rows that carry them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::domain::Product;
use super::ports::OutboxEvent;
use crate::contracts::product_events::{Deleted, EventType, ProductEvent};
use crate::telemetry::trace::{self, TraceContext};

/// A created or updated product, whole.
pub fn changed(event_type: EventType, product: &Product) -> ProductEvent {
    ProductEvent {
        event_id: Uuid::now_v7(),
        event_type,
        occurred_at: product.updated_at,
        version: product.version,
        data: serde_json::to_value(product).unwrap_or_default(),
    }
}

/// A deleted product: its id, one version past its last.
pub fn deleted(product: &Product, at: DateTime<Utc>) -> ProductEvent {
    ProductEvent {
        event_id: Uuid::now_v7(),
        event_type: EventType::ProductDeleted,
        occurred_at: at,
        version: product.version + 1,
        data: serde_json::to_value(Deleted { id: product.id }).unwrap_or_default(),
    }
}

/// The outbox row carrying `event`, keyed by the product id, with the trace
/// context and the id of the request that made the change (so the consumer
/// continues its trace and logs under its id).
pub fn to_outbox(event: &ProductEvent, product_id: Uuid) -> OutboxEvent {
    let trace = TraceContext::current().map(|ctx| (trace::HEADER.to_string(), ctx.to_string()));
    let request = TraceContext::request_id().map(|id| (trace::REQUEST_ID_HEADER.to_string(), id.to_string()));
    let headers: Vec<_> = trace.into_iter().chain(request).collect();
    OutboxEvent {
        id: event.event_id,
        key: product_id.to_string(),
        payload: serde_json::to_vec(event).unwrap_or_default(),
        headers,
        created_at: event.occurred_at,
    }
}
