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
use crate::telemetry::Metrics;

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
    pub metrics: Option<Arc<Metrics>>,
}

impl OutboxRelay {
    pub fn new(
        outbox: Arc<dyn Outbox>,
        bus: Arc<dyn EventBus>,
        topic: &str,
        wake: Arc<Notify>,
        interval: Duration,
    ) -> Self {
        let owner = format!("relay-{}", Uuid::new_v4());
        OutboxRelay { outbox, bus, topic: topic.to_string(), wake, interval, owner, metrics: None }
    }

    /// Counts what it publishes, and the backlog it leaves, in `metrics`.
    pub fn observed(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The backlog, for the metrics (once per round of the relay).
    async fn observe_backlog(&self) {
        if let Some(metrics) = &self.metrics
            && let Ok(pending) = self.outbox.pending().await
        {
            metrics.outbox_pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
    }

    pub async fn run(self, cancel: CancellationToken) {
        loop {
            if let Err(e) = self.drain().await {
                tracing::warn!(error = %e, "outbox relay: publishing failed, will retry");
            }
            self.observe_backlog().await;
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
                if let Some(metrics) = &self.metrics {
                    metrics.events_published.inc_by(sent as u64);
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::Utc;
    use parking_lot::Mutex;

    use super::*;
    use crate::adapters::memory::MemoryProductStore;
    use crate::ports::events::{EventConsumer, EventFollower, PartlyPublished};
    use crate::ports::{PortError, Probe};
    use crate::products::domain::{Product, ProductChange};
    use crate::products::ports::{OutboxEvent, ProductStore};

    /// A bus that can fail or hang, and records what it published.
    #[derive(Default)]
    struct TestBus {
        published: Mutex<Vec<String>>,
        /// The next batch publishes only this many, then fails.
        fail_after: Mutex<Option<usize>>,
        hang: bool,
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Probe for TestBus {
        async fn ping(&self) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl EventBus for TestBus {
        async fn publish_batch(&self, _: &str, messages: &[Message]) -> Result<(), PartlyPublished> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.hang {
                std::future::pending::<()>().await;
            }
            let cut = self.fail_after.lock().take();
            let n = cut.unwrap_or(messages.len()).min(messages.len());
            self.published.lock().extend(messages[..n].iter().map(|m| m.key.clone()));
            match cut {
                Some(published) => Err(PartlyPublished { published, cause: PortError::unavailable("bus", "flaky") }),
                None => Ok(()),
            }
        }

        async fn subscribe_as(&self, _: &str, _: &str, _: Option<&str>) -> Result<Box<dyn EventConsumer>, PortError> {
            Err(PortError::unavailable("bus", "not in this test"))
        }

        async fn follow(&self, _: &str) -> Result<Box<dyn EventFollower>, PortError> {
            Err(PortError::unavailable("bus", "not in this test"))
        }
    }

    /// A store holding `n` products, each with its creation event; their keys in order.
    async fn outbox_of(n: usize) -> (Arc<MemoryProductStore>, Vec<String>) {
        let store = Arc::new(MemoryProductStore::new());
        let mut keys = Vec::new();
        for i in 0..n {
            let change = ProductChange { name: Some(format!("p{i}")), ..Default::default() };
            let product = Product::create(change, Utc::now());
            let event = OutboxEvent {
                id: Uuid::now_v7(),
                key: product.id.to_string(),
                payload: b"{}".to_vec(),
                headers: Vec::new(),
                created_at: Utc::now(),
            };
            store.create(&product, &event).await.unwrap();
            keys.push(event.key);
        }
        (store, keys)
    }

    fn relay(store: Arc<MemoryProductStore>, bus: Arc<TestBus>) -> OutboxRelay {
        OutboxRelay::new(store, bus, "t", Arc::new(Notify::new()), Duration::from_millis(10))
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failed_publish_the_relay_retries_its_own_events_at_once() {
        let (store, keys) = outbox_of(3).await;
        let bus = Arc::new(TestBus { fail_after: Mutex::new(Some(1)), ..Default::default() });
        let relay = relay(store.clone(), bus.clone());
        assert!(relay.drain().await.is_err(), "the first publish fails after one event");
        assert_eq!(store.pending().await.unwrap(), 2, "the one published is marked sent");
        assert_eq!(relay.drain().await.unwrap(), 2, "the rest goes at once, not after the lease");
        assert_eq!(*bus.published.lock(), keys, "in order, each once");
        assert_eq!(store.pending().await.unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_publish_is_given_up_while_the_lease_still_holds_the_events() {
        let (store, _) = outbox_of(2).await;
        let slow = relay(store.clone(), Arc::new(TestBus { hang: true, ..Default::default() }));
        let started = Instant::now();
        assert!(slow.drain().await.is_err(), "the publish timed out");
        assert!(started.elapsed() < LEASE, "gave up at {:?}, after its lease", started.elapsed());
        // Until the lease ends, no other relay can take (and publish again) what may be on its way.
        let other = store.claim("another relay", BATCH, LEASE).await.unwrap();
        assert!(other.is_empty(), "another relay took events still leased: {other:?}");
        tokio::time::sleep(LEASE).await;
        assert_eq!(store.claim("another relay", BATCH, LEASE).await.unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn events_go_out_in_batches() {
        let (store, keys) = outbox_of(BATCH + 10).await;
        let bus = Arc::new(TestBus::default());
        assert_eq!(relay(store, bus.clone()).drain().await.unwrap(), BATCH + 10);
        assert_eq!(bus.calls.load(Ordering::SeqCst), 2, "one publish per batch");
        assert_eq!(*bus.published.lock(), keys);
    }
}
