//! The `product-events` consumer: on UPDATED, drop the cache entry and rewrite
//! the lines' denormalized fields (only from a newer version); on DELETED, drop
//! the cache entry and remove the lines. Offsets are committed only after an
//! event is handled, so a crash means a redelivery, which handling absorbs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::domain::ProductSnapshot;
use super::ports::CartStore;
use super::service::product_key;
use crate::contracts::product_events::{Deleted, EventType, ProductEvent};
use crate::ports::PortError;
use crate::ports::cache::Cache;
use crate::ports::events::{EventBus, EventConsumer, Record};

#[derive(Clone)]
pub struct EventHandler {
    pub store: Arc<dyn CartStore>,
    pub cache: Arc<dyn Cache>,
    pub namespace: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The record can never be handled (not our format): skip it.
    #[error("unreadable event: {0}")]
    Poison(String),
    /// A dependency failed: retry the same record.
    #[error(transparent)]
    Port(#[from] PortError),
}

impl EventHandler {
    pub async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        let event: ProductEvent =
            serde_json::from_slice(&record.payload).map_err(|e| HandleError::Poison(e.to_string()))?;
        match event.event_type {
            EventType::ProductCreated => Ok(()),
            EventType::ProductUpdated => {
                let mut product: ProductSnapshot =
                    serde_json::from_value(event.data).map_err(|e| HandleError::Poison(e.to_string()))?;
                product.version = product.version.max(event.version);
                self.cache.delete(&product_key(&self.namespace, product.id)).await?;
                let changed = self.store.refresh_product(&product).await?;
                tracing::debug!(product = %product.id, version = product.version, changed, "product updated");
                Ok(())
            }
            EventType::ProductDeleted => {
                let Deleted { id } =
                    serde_json::from_value(event.data).map_err(|e| HandleError::Poison(e.to_string()))?;
                self.cache.delete(&product_key(&self.namespace, id)).await?;
                let removed = self.store.remove_product(id).await?;
                tracing::debug!(product = %id, removed, "product deleted");
                Ok(())
            }
        }
    }
}

pub struct ProductEventsConsumer {
    pub bus: Arc<dyn EventBus>,
    pub topic: String,
    pub group: String,
    pub handler: EventHandler,
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl ProductEventsConsumer {
    /// Consumes until cancelled; stops only between events, after the last commit.
    pub async fn run(self, cancel: CancellationToken) {
        let Some(mut consumer) = self.join(&cancel).await else { return };
        loop {
            let record = tokio::select! {
                _ = cancel.cancelled() => break,
                r = consumer.next() => r,
            };
            match record {
                Ok(record) => {
                    if !self.handle_until_done(&record, &cancel).await {
                        break;
                    }
                    if let Err(e) = consumer.commit(&record).await {
                        tracing::warn!(error = %e, "could not commit; the event will be seen again");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event bus unavailable");
                    if pause(&cancel, Duration::from_secs(1)).await {
                        break;
                    }
                }
            }
        }
        consumer.close().await;
        tracing::info!(group = %self.group, "product events consumer stopped");
    }

    async fn join(&self, cancel: &CancellationToken) -> Option<Box<dyn EventConsumer>> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.bus.subscribe(&self.topic, &self.group).await {
                Ok(c) => return Some(c),
                Err(e) => tracing::warn!(error = %e, "cannot join the consumer group yet"),
            }
            if pause(cancel, backoff).await {
                return None;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Retries a failing event until it is handled (true) or we are cancelled (false).
    async fn handle_until_done(&self, record: &Record, cancel: &CancellationToken) -> bool {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.handler.handle(record).await {
                Ok(()) => return true,
                Err(HandleError::Poison(why)) => {
                    tracing::error!(partition = record.partition, offset = record.offset, %why, "skipping unreadable event");
                    return true;
                }
                Err(HandleError::Port(e)) => tracing::warn!(error = %e, "event handling failed; retrying"),
            }
            if pause(cancel, backoff).await {
                return false;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Sleeps unless cancelled first; true when cancelled.
async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
