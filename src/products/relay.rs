//! The outbox relay: publishes committed events to the bus and marks them sent.
//! Woken right after each write, and on a timer for what an earlier attempt
//! could not publish; at shutdown it flushes what is pending.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ports::Outbox;
use crate::ports::PortError;
use crate::ports::events::EventBus;

const BATCH: usize = 100;
/// Long enough to publish a batch; a relay that dies leaves its events for another after this.
const LEASE: Duration = Duration::from_secs(10);
const FLUSH_BOUND: Duration = Duration::from_secs(5);

pub struct OutboxRelay {
    pub outbox: Arc<dyn Outbox>,
    pub bus: Arc<dyn EventBus>,
    pub topic: String,
    pub wake: Arc<Notify>,
    pub interval: Duration,
}

impl OutboxRelay {
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
            let batch = self.outbox.claim(BATCH, LEASE).await?;
            if batch.is_empty() {
                return Ok(published);
            }
            let mut sent = Vec::with_capacity(batch.len());
            let mut failure = None;
            for event in &batch {
                // Stop at the first failure so no later event of the same key overtakes it.
                if let Err(e) = self.bus.publish(&self.topic, &event.key, &event.payload).await {
                    failure = Some(e);
                    break;
                }
                sent.push(event.id);
            }
            if !sent.is_empty() {
                self.outbox.mark_sent(&sent).await?;
                published += sent.len();
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }
}
