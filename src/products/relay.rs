//! The outbox relay: publishes committed events to the bus in batches and
//! marks them sent. Woken right after each write, and on a timer for what an
//! earlier attempt could not publish; at shutdown it flushes what is pending.
//!
//! Each relay claims under its own name, so after a failed publish it takes its
//! own events back at once; and it publishes a batch only while its lease
//! covers the whole attempt, so no other relay can take the same events while
//! they are on their way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ports::Outbox;
use crate::ports::PortError;
use crate::ports::events::{EventBus, Message};

/// Events claimed and published at once.
pub const BATCH: usize = 500;
/// How long a claim holds its events: more than a publish can take.
const LEASE: Duration = Duration::from_secs(30);
/// The longest one batch may take to publish (the producer gives up on a message after 10 s).
const PUBLISH_BOUND: Duration = Duration::from_secs(15);
const FLUSH_BOUND: Duration = Duration::from_secs(5);

pub struct OutboxRelay {
    pub outbox: Arc<dyn Outbox>,
    pub bus: Arc<dyn EventBus>,
    pub topic: String,
    pub wake: Arc<Notify>,
    pub interval: Duration,
    /// This relay's name on its leases.
    pub owner: String,
}

impl OutboxRelay {
    pub fn new(
        outbox: Arc<dyn Outbox>,
        bus: Arc<dyn EventBus>,
        topic: &str,
        wake: Arc<Notify>,
        interval: Duration,
    ) -> Self {
        OutboxRelay {
            outbox,
            bus,
            topic: topic.to_string(),
            wake,
            interval,
            owner: format!("relay-{}", Uuid::new_v4()),
        }
    }

    pub async fn run(self, cancel: CancellationToken) {
        loop {
            if let Err(e) = self.drain().await {
                tracing::warn!(error = %e, "outbox relay: publishing failed, will retry");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
        match tokio::time::timeout(FLUSH_BOUND, self.drain()).await {
            Ok(Ok(n)) => tracing::info!(published = n, "outbox relay flushed and stopped"),
            Ok(Err(e)) => tracing::warn!(error = %e, "outbox relay stopped with events pending"),
            Err(_) => tracing::warn!("outbox relay stopped before its flush finished"),
        }
    }

    /// Publishes everything claimable, in order; returns how many went out.
    pub async fn drain(&self) -> Result<usize, PortError> {
        let mut published = 0;
        loop {
            let claimed_at = Instant::now();
            let batch = self.outbox.claim(&self.owner, BATCH, LEASE).await?;
            if batch.is_empty() {
                return Ok(published);
            }
            if claimed_at.elapsed() + PUBLISH_BOUND > LEASE {
                // The claim itself was so slow that the lease may end mid-publish: claim again.
                continue;
            }
            let messages: Vec<Message> = batch
                .iter()
                .map(|e| Message { key: e.key.clone(), payload: e.payload.clone(), headers: e.headers.clone() })
                .collect();
            let (sent, failure) =
                match tokio::time::timeout(PUBLISH_BOUND, self.bus.publish_batch(&self.topic, &messages)).await {
                    Ok(Ok(())) => (batch.len(), None),
                    Ok(Err(partly)) => (partly.published, Some(partly.cause)),
                    Err(_) => (0, Some(PortError::unavailable("event bus", "publishing timed out"))),
                };
            if sent > 0 {
                let ids: Vec<Uuid> = batch[..sent].iter().map(|e| e.id).collect();
                self.outbox.mark_sent(&ids).await?;
                published += sent;
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }
}
