//! The `product-events` consumer: on UPDATED, drop the cache entry (and keep
//! any older write out of it) and rewrite the lines' denormalized fields (only
//! from a newer version); on DELETED, the same for the cache, and remove the
//! lines. Offsets are committed only after an
//! event is handled — every `COMMIT_EVERY` events or `COMMIT_AFTER`, and when
//! stopping — so a crash means redeliveries, which handling absorbs.
//!
//! An event that cannot be read or applied after `TRIES` tries goes to the
//! dead-letter topic `<topic>.dlq` and the consumer moves on; a dependency that
//! is down (the database, the cache) is waited for instead, since every event
//! would fail alike. A watchdog compares the group's committed offsets with
//! the ends of the partitions: events waiting with no progress for
//! `carts.consumer_stall_secs` make the service not ready, say so in the log,
//! and make the consumer join its group again. A member whose client failed
//! for good (fenced by a newer member under its static name) joins at once.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::domain::ProductSnapshot;
use super::ports::CartStore;
use super::service::product_key;
use crate::contracts::product_events::{Deleted, EventType, ProductEvent};
use crate::ports::cache::Cache;
use crate::ports::events::{EventBus, EventConsumer, Message, PartitionLag, Record};
use crate::ports::{PortError, Probe};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::PartitionLabels;
use crate::telemetry::otlp;
use crate::telemetry::trace::{self, TraceContext};
use tracing::Instrument;

/// Tries of an event that fails for a reason of its own, before it is dead-lettered.
pub const TRIES: u32 = 3;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the watchdog looks at the group's backlog.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// A backlog query still unanswered after this is given up (and asked again),
/// so that one lost answer cannot end the watch.
const LOOK_BOUND: Duration = Duration::from_secs(60);
/// Handled events are committed in batches: this many at most…
const COMMIT_EVERY: usize = 100;
/// …or this long after the first uncommitted one.
const COMMIT_AFTER: Duration = Duration::from_millis(200);

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

#[derive(Clone)]
pub struct EventHandler {
    pub store: Arc<dyn CartStore>,
    pub cache: Arc<dyn Cache>,
    pub namespace: String,
    /// How long an invalidation keeps older writes out (the cache's TTL).
    pub cache_ttl: Duration,
    pub metrics: Arc<Metrics>,
}

/// What handling an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It changed what the carts show (or would have: no cart held the product).
    Applied,
    /// Every line already reflected it or a newer version: a redelivery.
    Old,
    /// Nothing for the carts to do (a creation).
    Ignored,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Old => "old",
            Outcome::Ignored => "ignored",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The record is not our format: it can never be handled.
    #[error("unreadable event: {0}")]
    Poison(String),
    /// A dependency is unavailable: every event would fail alike, so wait.
    #[error(transparent)]
    Unavailable(PortError),
    /// This event failed for a reason of its own.
    #[error(transparent)]
    Failed(PortError),
}

impl From<PortError> for HandleError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Unavailable { .. } => HandleError::Unavailable(e),
            PortError::Unexpected(_) => HandleError::Failed(e),
        }
    }
}

fn poison(e: serde_json::Error) -> HandleError {
    HandleError::Poison(e.to_string())
}

impl EventHandler {
    /// Handles `record`, continuing the trace its change started.
    pub async fn handle(&self, record: &Record) -> Result<Outcome, HandleError> {
        let caller = record.header(trace::HEADER).and_then(TraceContext::parse);
        let request_id: Option<Arc<str>> = record.header(trace::REQUEST_ID_HEADER).map(Arc::from);
        let span = tracing::info_span!(
            "event",
            request_id = %request_id.as_deref().unwrap_or_default(),
            trace_id = tracing::field::Empty,
            partition = record.partition,
            offset = record.offset,
        );
        let ctx = otlp::hop(&span, caller);
        span.record("trace_id", tracing::field::display(ctx.trace_id()));
        let outcome = ctx.scope(request_id, self.apply(record)).instrument(span.clone()).await?;
        // Logged in the event's span so the line carries the change's trace id.
        span.in_scope(|| tracing::debug!(key = %record.key, outcome = outcome.as_str(), "event handled"));
        match outcome {
            Outcome::Applied => {
                self.metrics.events_applied.inc();
            }
            Outcome::Old => {
                self.metrics.events_skipped_old.inc();
            }
            Outcome::Ignored => {}
        }
        Ok(outcome)
    }

    async fn apply(&self, record: &Record) -> Result<Outcome, HandleError> {
        let event: ProductEvent = serde_json::from_slice(&record.payload).map_err(poison)?;
        match event.event_type {
            EventType::ProductCreated => Ok(Outcome::Ignored),
            EventType::ProductUpdated => {
                let mut product: ProductSnapshot = serde_json::from_value(event.data).map_err(poison)?;
                product.version = product.version.max(event.version);
                self.cache
                    .invalidate(&product_key(&self.namespace, product.id), product.version, self.cache_ttl)
                    .await?;
                let refresh = self.store.refresh_product(&product).await?;
                Ok(if refresh.changed == 0 && refresh.current > 0 { Outcome::Old } else { Outcome::Applied })
            }
            EventType::ProductDeleted => {
                let Deleted { id } = serde_json::from_value(event.data).map_err(poison)?;
                self.cache.invalidate(&product_key(&self.namespace, id), event.version, self.cache_ttl).await?;
                let removal = self.store.remove_product(id).await?;
                Ok(if removal.already { Outcome::Old } else { Outcome::Applied })
            }
        }
    }
}

/// The consumer's own readiness: not ready while it is stalled.
#[derive(Clone, Default)]
pub struct ConsumerHealth {
    stalled: Arc<Mutex<Option<String>>>,
}

impl ConsumerHealth {
    fn set(&self, stalled: Option<String>) {
        *self.stalled.lock() = stalled;
    }
}

#[async_trait::async_trait]
impl Probe for ConsumerHealth {
    async fn ping(&self) -> Result<(), PortError> {
        match &*self.stalled.lock() {
            Some(why) => Err(PortError::unavailable("product events consumer", why)),
            None => Ok(()),
        }
    }
}

/// Tells a consumer that is stuck from one that has nothing to do.
struct Watchdog {
    stall_after: Duration,
    last_progress: Instant,
    last_committed: Option<u64>,
    /// When the group's backlog was last read.
    last_read: Instant,
}

/// What the watchdog makes of the group's backlog.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Nothing waits, or the group moved since the last look.
    Moving,
    /// Events wait; the group has not moved yet, within the stall window.
    Waiting,
    Stalled(String),
}

impl Watchdog {
    fn new(stall_after: Duration) -> Self {
        Watchdog { stall_after, last_progress: Instant::now(), last_committed: None, last_read: Instant::now() }
    }

    /// A backlog query failed: whether the group has been out of sight for a
    /// whole stall window (and then starts a new window).
    fn unread_too_long(&mut self) -> bool {
        if self.last_read.elapsed() < self.stall_after {
            return false;
        }
        self.last_read = Instant::now();
        true
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    fn observe(&mut self, backlog: &[PartitionLag]) -> Verdict {
        self.last_read = Instant::now();
        let waiting: u64 = backlog.iter().map(PartitionLag::lag).sum();
        let committed: u64 = backlog.iter().map(|p| p.committed).sum();
        let first = self.last_committed.is_none();
        let moved = self.last_committed.is_some_and(|c| c != committed);
        self.last_committed = Some(committed);
        if waiting == 0 || moved {
            self.progressed();
            return Verdict::Moving;
        }
        if first {
            self.progressed();
        }
        let idle = self.last_progress.elapsed();
        if idle >= self.stall_after {
            Verdict::Stalled(format!("{waiting} event(s) waiting and no progress for {} s", idle.as_secs()))
        } else {
            Verdict::Waiting
        }
    }
}

pub struct ProductEventsConsumer {
    pub bus: Arc<dyn EventBus>,
    pub topic: String,
    pub group: String,
    /// Static membership: this process's stable name in the group, if any.
    pub instance: Option<String>,
    pub handler: EventHandler,
    pub health: ConsumerHealth,
    pub stall_after: Duration,
}

impl ProductEventsConsumer {
    /// Consumes until cancelled; stops only between events, after the last commit.
    pub async fn run(self, cancel: CancellationToken) {
        let Some(mut consumer) = self.join(&cancel).await else { return };
        let mut watchdog = Watchdog::new(self.stall_after);
        let mut watch = tokio::time::interval(WATCH_EVERY);
        // The backlog query in flight: records keep being handled while the broker answers.
        let mut looking: Option<BoxFuture<'static, Result<Vec<PartitionLag>, PortError>>> = None;
        let mut uncommitted = Uncommitted::default();
        // The pause before joining again after this member was lost.
        let mut relost = Duration::ZERO;
        loop {
            let record = tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(uncommitted.due()), if !uncommitted.is_empty() => {
                    uncommitted.commit(&mut *consumer, &mut watchdog).await;
                    continue;
                }
                _ = watch.tick(), if looking.is_none() => {
                    let query = consumer.backlog();
                    looking = Some(Box::pin(async move {
                        tokio::time::timeout(LOOK_BOUND, query).await.unwrap_or_else(|_| {
                            Err(PortError::unavailable("Kafka", "the backlog query got no answer in time"))
                        })
                    }));
                    continue;
                }
                backlog = async {
                    match looking.as_mut() {
                        Some(query) => query.await,
                        None => std::future::pending().await,
                    }
                }, if looking.is_some() => {
                    looking = None;
                    // `next` is cancel-safe: leaving it here loses no record.
                    if let Some(rejoined) = self.check(&mut watchdog, backlog, &cancel).await {
                        uncommitted.commit(&mut *consumer, &mut watchdog).await;
                        consumer.close().await;
                        match rejoined {
                            Some(c) => consumer = c,
                            None => return,
                        }
                    }
                    continue;
                }
                r = consumer.next() => r,
            };
            match record {
                Ok(record) => {
                    relost = Duration::ZERO;
                    if !self.handle_until_done(&record, &cancel).await {
                        break;
                    }
                    if uncommitted.add(record) >= COMMIT_EVERY {
                        uncommitted.commit(&mut *consumer, &mut watchdog).await;
                    }
                }
                Err(e) if consumer.is_lost() => {
                    tracing::error!(
                        group = %self.group, error = %e,
                        "this member of the group is lost (a member under the same carts.consumer_instance_id took its place?); joining again"
                    );
                    uncommitted.commit(&mut *consumer, &mut watchdog).await;
                    consumer.close().await;
                    // At once the first time; members that keep taking each other's place
                    // (two processes under one name) do it ever more slowly.
                    if pause(&cancel, relost).await {
                        return;
                    }
                    relost = (relost * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                    match self.join(&cancel).await {
                        Some(c) => consumer = c,
                        None => return,
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
        uncommitted.commit(&mut *consumer, &mut watchdog).await;
        consumer.close().await;
        tracing::info!(group = %self.group, "product events consumer stopped");
    }

    /// Looks at the backlog; on a stall, reports it and returns a fresh member
    /// (`Some(None)` when cancelled while rejoining).
    async fn check(
        &self,
        watchdog: &mut Watchdog,
        backlog: Result<Vec<PartitionLag>, PortError>,
        cancel: &CancellationToken,
    ) -> Option<Option<Box<dyn EventConsumer>>> {
        let backlog = match backlog {
            Ok(b) => b,
            Err(e) if watchdog.unread_too_long() => {
                // A client that cannot reach the group for that long may never again (seen
                // after a broker restart): a fresh one costs nothing during a real outage.
                // Readiness is not touched: nothing says events wait.
                tracing::warn!(group = %self.group, error = %e, "the group's backlog is out of reach; joining again");
                return Some(self.join(cancel).await);
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the group's backlog");
                return None;
            }
        };
        for p in &backlog {
            let lag = i64::try_from(p.lag()).unwrap_or(i64::MAX);
            self.handler.metrics.consumer_lag.get_or_create(&PartitionLabels { partition: p.partition }).set(lag);
        }
        match watchdog.observe(&backlog) {
            Verdict::Moving => {
                self.health.set(None);
                None
            }
            Verdict::Waiting => None,
            Verdict::Stalled(why) => {
                tracing::error!(group = %self.group, %why, "the product events consumer is stalled; rejoining its group");
                self.health.set(Some(why));
                // A whole window for the new member before judging it again; not ready meanwhile.
                watchdog.progressed();
                Some(self.join(cancel).await)
            }
        }
    }

    async fn join(&self, cancel: &CancellationToken) -> Option<Box<dyn EventConsumer>> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.bus.subscribe_as(&self.topic, &self.group, self.instance.as_deref()).await {
                Ok(c) => return Some(c),
                Err(e) => tracing::warn!(error = %e, "cannot join the consumer group yet"),
            }
            if pause(cancel, backoff).await {
                return None;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Handles `record`: done (true) once handled or dead-lettered; false when
    /// cancelled first.
    async fn handle_until_done(&self, record: &Record, cancel: &CancellationToken) -> bool {
        let mut backoff = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            let why = match self.handler.handle(record).await {
                Ok(_) => return true,
                Err(HandleError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "event handling waits for a dependency");
                    None
                }
                Err(e) => {
                    tries += 1;
                    tracing::warn!(partition = record.partition, offset = record.offset, tries, error = %e, "event handling failed");
                    (tries >= TRIES).then(|| e.to_string())
                }
            };
            if let Some(why) = why {
                return self.dead_letter(record, &why, cancel).await;
            }
            if pause(cancel, backoff).await {
                return false;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Publishes `record` to the dead-letter topic (retrying until the bus takes it).
    async fn dead_letter(&self, record: &Record, why: &str, cancel: &CancellationToken) -> bool {
        let mut headers = record.headers.clone();
        headers.push(("x-error".into(), why.into()));
        headers.push(("x-original-partition".into(), record.partition.to_string()));
        headers.push(("x-original-offset".into(), record.offset.to_string()));
        let message = Message { key: record.key.clone(), payload: record.payload.clone(), headers };
        let topic = dead_letter_topic(&self.topic);
        loop {
            match self.bus.publish_batch(&topic, std::slice::from_ref(&message)).await {
                Ok(()) => {
                    tracing::error!(partition = record.partition, offset = record.offset, %why, %topic, "event dead-lettered");
                    self.handler.metrics.events_dead_lettered.inc();
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, %topic, "cannot dead-letter the event yet"),
            }
            if pause(cancel, Duration::from_secs(1)).await {
                return false;
            }
        }
    }
}

/// Events handled but not yet committed: the last of each partition.
#[derive(Default)]
struct Uncommitted {
    last: std::collections::BTreeMap<u32, Record>,
    count: usize,
    since: Option<Instant>,
}

impl Uncommitted {
    fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Counts `record` as handled; how many wait for a commit.
    fn add(&mut self, record: Record) -> usize {
        self.since.get_or_insert_with(Instant::now);
        self.last.insert(record.partition, record);
        self.count += 1;
        self.count
    }

    fn due(&self) -> Instant {
        self.since.map_or_else(Instant::now, |s| s + COMMIT_AFTER)
    }

    async fn commit(&mut self, consumer: &mut dyn EventConsumer, watchdog: &mut Watchdog) {
        if self.last.is_empty() {
            return;
        }
        for record in std::mem::take(&mut self.last).into_values() {
            match consumer.commit(&record).await {
                Ok(()) => watchdog.progressed(),
                Err(e) => tracing::warn!(error = %e, "could not commit; the events will be seen again"),
            }
        }
        self.count = 0;
        self.since = None;
    }
}

/// Sleeps unless cancelled first; true when cancelled.
async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::adapters::memory::{MemoryCache, MemoryCartStore};
    use crate::ports::events::{EventFollower, PartlyPublished};
    use uuid::Uuid;

    /// A bus that hands each member joining the one `member` builds from how
    /// many joined before it.
    struct FakeBus {
        joins: AtomicUsize,
        member: Box<dyn Fn(usize) -> Box<dyn EventConsumer> + Send + Sync>,
    }

    impl FakeBus {
        fn new(member: impl Fn(usize) -> Box<dyn EventConsumer> + Send + Sync + 'static) -> Arc<FakeBus> {
            Arc::new(FakeBus { joins: AtomicUsize::new(0), member: Box::new(member) })
        }
    }

    #[async_trait::async_trait]
    impl Probe for FakeBus {
        async fn ping(&self) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl EventBus for FakeBus {
        async fn publish_batch(&self, _: &str, _: &[Message]) -> Result<(), PartlyPublished> {
            Ok(())
        }

        async fn subscribe_as(&self, _: &str, _: &str, _: Option<&str>) -> Result<Box<dyn EventConsumer>, PortError> {
            Ok((self.member)(self.joins.fetch_add(1, Ordering::SeqCst)))
        }

        async fn follow(&self, _: &str) -> Result<Box<dyn EventFollower>, PortError> {
            Err(PortError::unavailable("bus", "not in this test"))
        }
    }

    /// A member that never gets a record although events wait.
    struct StuckMember {
        queries: AtomicUsize,
        silent_first: bool,
        unreadable: bool,
    }

    /// A stuck group: with `silent_first`, the first member's first backlog query
    /// is never answered; with `unreadable`, no backlog query succeeds.
    fn stuck_bus(silent_first: bool, unreadable: bool) -> Arc<FakeBus> {
        FakeBus::new(move |joined| {
            Box::new(StuckMember {
                queries: AtomicUsize::new(0),
                silent_first: silent_first && joined == 0,
                unreadable,
            })
        })
    }

    #[async_trait::async_trait]
    impl EventConsumer for StuckMember {
        async fn next(&mut self) -> Result<Record, PortError> {
            std::future::pending().await
        }
        async fn commit(&mut self, _: &Record) -> Result<(), PortError> {
            Ok(())
        }
        fn backlog(&self) -> BoxFuture<'static, Result<Vec<PartitionLag>, PortError>> {
            if self.silent_first && self.queries.fetch_add(1, Ordering::SeqCst) == 0 {
                return Box::pin(std::future::pending());
            }
            if self.unreadable {
                return Box::pin(std::future::ready(Err(PortError::unavailable("Kafka", "no coordinator"))));
            }
            Box::pin(std::future::ready(Ok(vec![PartitionLag { partition: 0, committed: 3, end: 10 }])))
        }
        async fn close(self: Box<Self>) {}
    }

    /// A consumer on `bus` with a 10 s stall window, running: its health, its stop, its task.
    fn start(bus: Arc<dyn EventBus>) -> (ConsumerHealth, CancellationToken, tokio::task::JoinHandle<()>) {
        let health = ConsumerHealth::default();
        let consumer = ProductEventsConsumer {
            bus,
            topic: "t".into(),
            group: "g".into(),
            instance: None,
            handler: handler(),
            health: health.clone(),
            stall_after: Duration::from_secs(10),
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(consumer.run(cancel.clone()));
        (health, cancel, task)
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_query_that_is_never_answered_does_not_end_the_watch() {
        let bus = stuck_bus(true, false);
        let (health, cancel, task) = start(bus.clone());
        tokio::time::sleep(LOOK_BOUND).await;
        assert!(health.ping().await.is_ok(), "nothing known yet");
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert!(health.ping().await.is_err(), "the watch went on after the lost answer and saw the stall");
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_that_cannot_read_its_group_joins_again_and_stays_ready() {
        let bus = stuck_bus(false, true);
        let (health, cancel, task) = start(bus.clone());
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(bus.joins.load(Ordering::SeqCst), 1, "within the window: the same member");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(bus.joins.load(Ordering::SeqCst), 2, "a fresh member after a window out of reach");
        assert!(health.ping().await.is_ok(), "ready: nothing says events wait");
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(bus.joins.load(Ordering::SeqCst), 3, "one more window, one more member");
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_consumer_is_not_ready_says_why_and_joins_again() {
        let bus = stuck_bus(false, false);
        let (health, cancel, task) = start(bus.clone());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(health.ping().await.is_ok(), "not stalled yet");
        tokio::time::sleep(Duration::from_secs(8)).await;
        let why = health.ping().await.expect_err("stalled: not ready");
        assert!(why.to_string().contains("7 event(s) waiting"), "{why}");
        assert_eq!(bus.joins.load(Ordering::SeqCst), 2, "it joined its group again");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(health.ping().await.is_err(), "still not ready: nothing moved");
        cancel.cancel();
        task.await.unwrap();
    }

    /// A member whose client fails for good at its first read (fenced).
    struct FencedMember;

    #[async_trait::async_trait]
    impl EventConsumer for FencedMember {
        async fn next(&mut self) -> Result<Record, PortError> {
            Err(PortError::unavailable("Kafka", "static consumer fenced"))
        }
        fn is_lost(&self) -> bool {
            true
        }
        async fn commit(&mut self, _: &Record) -> Result<(), PortError> {
            Ok(())
        }
        fn backlog(&self) -> BoxFuture<'static, Result<Vec<PartitionLag>, PortError>> {
            Box::pin(std::future::ready(Ok(Vec::new())))
        }
        async fn close(self: Box<Self>) {}
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_member_is_replaced_at_once_and_a_member_lost_again_waits() {
        let bus = FakeBus::new(|joined| -> Box<dyn EventConsumer> {
            match joined {
                0 | 1 => Box::new(FencedMember),
                _ => Box::new(StuckMember { queries: AtomicUsize::new(0), silent_first: false, unreadable: false }),
            }
        });
        let (health, cancel, task) = start(bus.clone());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(bus.joins.load(Ordering::SeqCst), 2, "joined again at once");
        assert!(health.ping().await.is_ok(), "a member replaced at once is no stall");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(bus.joins.load(Ordering::SeqCst), 2, "lost again with nothing read between: it waits");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(bus.joins.load(Ordering::SeqCst), 3);
        cancel.cancel();
        task.await.unwrap();
    }

    /// A member that gets a record whenever the test sends one, and whose
    /// backlog query takes as long as a slow broker's (a long poll per partition).
    struct SlowQueryMember {
        records: tokio::sync::mpsc::UnboundedReceiver<Record>,
    }

    #[async_trait::async_trait]
    impl EventConsumer for SlowQueryMember {
        async fn next(&mut self) -> Result<Record, PortError> {
            match self.records.recv().await {
                Some(record) => Ok(record),
                None => std::future::pending().await,
            }
        }
        async fn commit(&mut self, _: &Record) -> Result<(), PortError> {
            Ok(())
        }
        fn backlog(&self) -> BoxFuture<'static, Result<Vec<PartitionLag>, PortError>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                Ok(vec![PartitionLag { partition: 0, committed: 0, end: 0 }])
            })
        }
        async fn close(self: Box<Self>) {}
    }

    fn handler() -> EventHandler {
        EventHandler {
            store: Arc::new(MemoryCartStore::new()),
            cache: Arc::new(MemoryCache::new()),
            namespace: "test".into(),
            cache_ttl: Duration::from_secs(60),
            metrics: Metrics::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn records_keep_flowing_while_the_backlog_is_looked_at() {
        let (send, records) = tokio::sync::mpsc::unbounded_channel();
        let member = Mutex::new(Some(SlowQueryMember { records }));
        let bus = FakeBus::new(move |_| Box::new(member.lock().take().expect("one member")));
        let consumer = ProductEventsConsumer {
            bus,
            topic: "t".into(),
            group: "g".into(),
            instance: None,
            handler: handler(),
            health: ConsumerHealth::default(),
            stall_after: Duration::from_secs(10),
        };
        let metrics = consumer.handler.metrics.clone();
        let handled = || metrics.events_applied.get() + metrics.events_skipped_old.get();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(consumer.run(cancel.clone()));
        // Over 6 s (three backlog queries of 1.5 s each), one event every 100 ms:
        // each is handled within a few ms of its arrival, never after a query.
        for offset in 0..60u64 {
            let id = Uuid::now_v7();
            let event = ProductEvent {
                event_id: Uuid::now_v7(),
                event_type: EventType::ProductDeleted,
                occurred_at: chrono::Utc::now(),
                version: 2,
                data: serde_json::to_value(Deleted { id }).unwrap(),
            };
            let before = handled();
            send.send(Record {
                topic: "t".into(),
                partition: 0,
                offset,
                key: id.to_string(),
                payload: serde_json::to_vec(&event).unwrap(),
                headers: Vec::new(),
            })
            .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(handled(), before + 1, "event {offset} waited for the backlog query");
            tokio::time::sleep(Duration::from_millis(95)).await;
        }
        cancel.cancel();
        task.await.unwrap();
    }

    fn lag(partition: u32, committed: u64, end: u64) -> PartitionLag {
        PartitionLag { partition, committed, end }
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_tells_a_stall_from_idleness() {
        let mut w = Watchdog::new(Duration::from_secs(10));
        assert_eq!(w.observe(&[lag(0, 5, 5)]), Verdict::Moving, "nothing waits");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(w.observe(&[lag(0, 5, 5), lag(1, 0, 0)]), Verdict::Moving, "idle, nothing waiting");
        assert_eq!(w.observe(&[lag(0, 5, 9)]), Verdict::Waiting, "events arrive: the clock runs");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(w.observe(&[lag(0, 5, 9)]), Verdict::Waiting);
        tokio::time::advance(Duration::from_secs(1)).await;
        let Verdict::Stalled(why) = w.observe(&[lag(0, 5, 9)]) else { panic!("stalled") };
        assert!(why.contains("4 event(s) waiting"), "{why}");
        w.progressed();
        assert_eq!(w.observe(&[lag(0, 5, 9)]), Verdict::Waiting, "a new window, still no progress");
        assert_eq!(w.observe(&[lag(0, 6, 9)]), Verdict::Moving, "the group moved");
        tokio::time::advance(Duration::from_secs(5)).await;
        w.progressed();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(w.observe(&[lag(0, 6, 9)]), Verdict::Waiting, "this member's own commits count as progress")
    }
}
