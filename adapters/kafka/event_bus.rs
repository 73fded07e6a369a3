//! `EventBus` on Kafka. Topics are created (3 partitions) when first used.
//! A batch is handed to the idempotent producer at once and awaited together.
//! Consumers never commit by themselves: `commit` stores `offset + 1` for the
//! record's partition once the caller has handled it (at-least-once). A
//! consumer given an instance name is a static member (`group.instance.id`):
//! restarted under the same name, it takes its partitions back at once.
//! A follower is a consumer without a group: it is assigned every partition at
//! the high watermark asked of the broker before `follow` returns.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::ports::events::{
    EventBus, EventConsumer, EventFollower, Headers, Message, PartitionLag, PartlyPublished, Record,
};
use crate::ports::{PortError, Probe};

const DEPENDENCY: &str = "Kafka";
const PARTITIONS: i32 = 3;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct KafkaEventBus {
    brokers: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// Topics known to exist, so each is created at most once per process.
    ensured: Mutex<HashSet<String>>,
}

fn err(e: KafkaError) -> PortError {
    PortError::unavailable(DEPENDENCY, e)
}

/// What every client shares. Requests keep librdkafka's own timeouts: a group's
/// SyncGroup legitimately waits for the whole rebalance, and cutting it short
/// (as a 5 s `socket.timeout.ms` did) can leave a restarted member stuck.
fn base(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("log_level", "4");
    config
}

fn owned_headers(headers: &Headers) -> OwnedHeaders {
    headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |h, (key, value)| {
        h.insert(Header { key, value: Some(value.as_bytes()) })
    })
}

impl KafkaEventBus {
    /// Connects and checks the brokers answer within `timeout`; creates `topic`.
    pub async fn connect(brokers: &str, topic: &str, timeout: Duration) -> anyhow::Result<Self> {
        let producer: FutureProducer = base(brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .set("linger.ms", "5")
            .create()?;
        let admin: AdminClient<DefaultClientContext> = base(brokers).create()?;
        let bus = KafkaEventBus { brokers: brokers.to_string(), producer, admin, ensured: Mutex::new(HashSet::new()) };
        tokio::time::timeout(timeout, bus.ping()).await??;
        tokio::time::timeout(timeout, bus.ensure_topic(topic)).await??;
        Ok(bus)
    }

    async fn ensure_topic(&self, topic: &str) -> Result<(), PortError> {
        if self.ensured.lock().contains(topic) {
            return Ok(());
        }
        let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let results = self.admin.create_topics([&new], &options).await.map_err(err)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(PortError::unavailable(DEPENDENCY, format!("creating {name}: {code}")));
                }
            }
        }
        self.ensured.lock().insert(topic.to_string());
        Ok(())
    }
}

#[async_trait]
impl Probe for KafkaEventBus {
    async fn ping(&self) -> Result<(), PortError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, Duration::from_secs(2)).map(|_| ()))
            .await
            .map_err(|e| PortError::Unexpected(e.into()))?
            .map_err(err)
    }
}

#[async_trait]
impl EventBus for KafkaEventBus {
    async fn publish_batch(&self, topic: &str, messages: &[Message]) -> Result<(), PartlyPublished> {
        self.ensure_topic(topic).await.map_err(|cause| PartlyPublished { published: 0, cause })?;
        // Everything goes into the producer's queue first, so it travels in as few requests as it can.
        let mut deliveries = Vec::with_capacity(messages.len());
        for m in messages {
            let record = FutureRecord::to(topic).key(&m.key).payload(&m.payload).headers(owned_headers(&m.headers));
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((e, _)) => {
                    // What was queued before it may still go out: count it, then report this one.
                    let published = await_in_order(deliveries).await?;
                    return Err(PartlyPublished { published, cause: err(e) });
                }
            }
        }
        await_in_order(deliveries).await.map(|_| ())
    }

    async fn subscribe_as(
        &self,
        topic: &str,
        group: &str,
        instance: Option<&str>,
    ) -> Result<Box<dyn EventConsumer>, PortError> {
        self.ensure_topic(topic).await?;
        let mut config = base(&self.brokers);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // A member that died is dropped (its partitions reassigned) after this.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000");
        if let Some(name) = instance.filter(|n| !n.is_empty()) {
            config.set("group.instance.id", name);
        }
        let consumer: StreamConsumer = config.create().map_err(err)?;
        consumer.subscribe(&[topic]).map_err(err)?;
        Ok(Box::new(KafkaConsumer { topic: topic.to_string(), consumer: Some(Arc::new(consumer)), lost: false }))
    }

    async fn follow(&self, topic: &str) -> Result<Box<dyn EventFollower>, PortError> {
        self.ensure_topic(topic).await?;
        let consumer: StreamConsumer = base(&self.brokers)
            // librdkafka assigns partitions only to a consumer with a group; this one never
            // joins it (no subscribe) nor commits to it.
            .set("group.id", format!("agora-follower-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Only if a position fell out of retention: everything again is safe, a gap is not.
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(err)?;
        let consumer = Arc::new(consumer);
        let assigning = Arc::clone(&consumer);
        let topic_name = topic.to_string();
        // The ends are asked for, not left to `Offset::End`: librdkafka would resolve that at
        // its first fetch, after `follow` returned, and skip what was published meanwhile.
        let positioned = tokio::task::spawn_blocking(move || -> Result<(), KafkaError> {
            let mut ends = TopicPartitionList::new();
            for partition in partition_ids(&assigning, &topic_name)? {
                let (_, high) = assigning.fetch_watermarks(&topic_name, partition, CALL_TIMEOUT)?;
                ends.add_partition_offset(&topic_name, partition, Offset::Offset(high))?;
            }
            assigning.assign(&ends)
        });
        positioned.await.map_err(|e| PortError::Unexpected(e.into()))?.map_err(err)?;
        Ok(Box::new(KafkaFollower { consumer: Some(consumer) }))
    }
}

/// Awaits deliveries in order: how many there were, all delivered, or how
/// many from the first were before the first failure.
async fn await_in_order(deliveries: Vec<rdkafka::producer::DeliveryFuture>) -> Result<usize, PartlyPublished> {
    let total = deliveries.len();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let failure = match delivery.await {
            Ok(Ok(_)) => continue,
            Ok(Err((e, _))) => err(e),
            Err(_) => PortError::unavailable(DEPENDENCY, "the producer dropped a message"),
        };
        return Err(PartlyPublished { published: i, cause: failure });
    }
    Ok(total)
}

struct KafkaConsumer {
    topic: String,
    /// `None` once closed.
    consumer: Option<Arc<StreamConsumer>>,
    /// Its client failed for good.
    lost: bool,
}

impl KafkaConsumer {
    fn inner(&self) -> Result<&Arc<StreamConsumer>, PortError> {
        self.consumer.as_ref().ok_or_else(|| PortError::Unexpected(anyhow::anyhow!("the consumer is closed")))
    }
}

/// The partitions of `topic`, as the broker's metadata lists them. Blocks its
/// thread until the broker answers: call it off the async runtime.
fn partition_ids(consumer: &StreamConsumer, topic: &str) -> Result<Vec<i32>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), CALL_TIMEOUT)?;
    Ok(metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect())
}

/// The next message of `consumer`, as a record.
async fn receive(consumer: &StreamConsumer) -> Result<Record, KafkaError> {
    let message = consumer.recv().await?;
    Ok(Record {
        topic: message.topic().to_string(),
        partition: message.partition().max(0) as u32,
        offset: message.offset().max(0) as u64,
        key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default(),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers: message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[async_trait]
impl EventConsumer for KafkaConsumer {
    async fn next(&mut self) -> Result<Record, PortError> {
        let consumer = self.inner()?;
        match receive(consumer).await {
            Ok(record) => Ok(record),
            Err(e) => {
                // A fatal error (e.g. fenced by a newer static member) ends this client for good.
                if matches!(e, KafkaError::MessageConsumptionFatal(_)) || consumer.client().fatal_error().is_some() {
                    self.lost = true;
                }
                Err(err(e))
            }
        }
    }

    fn is_lost(&self) -> bool {
        self.lost
    }

    async fn commit(&mut self, record: &Record) -> Result<(), PortError> {
        let consumer = self.inner()?.clone();
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&record.topic, record.partition as i32, Offset::Offset(record.offset as i64 + 1))
            .map_err(err)?;
        // A synchronous commit blocks its thread until the broker answers, and librdkafka
        // sets it no deadline: bounded here, an unanswered commit counts as not made (its
        // events are delivered again), so the consumer goes on.
        let committing = tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync));
        match tokio::time::timeout(CALL_TIMEOUT, committing).await {
            Ok(joined) => joined.map_err(|e| PortError::Unexpected(e.into()))?.map_err(err),
            Err(_) => Err(PortError::unavailable(DEPENDENCY, "the offset commit got no answer in time")),
        }
    }

    fn backlog(&self) -> BoxFuture<'static, Result<Vec<PartitionLag>, PortError>> {
        let consumer = match self.inner() {
            Ok(c) => c.clone(),
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let topic = self.topic.clone();
        // Every call here blocks its thread until the broker answers.
        let blocking = tokio::task::spawn_blocking(move || -> Result<Vec<PartitionLag>, KafkaError> {
            let partitions = partition_ids(&consumer, &topic)?;
            let mut wanted = TopicPartitionList::new();
            for p in &partitions {
                wanted.add_partition(&topic, *p);
            }
            let committed = consumer.committed_offsets(wanted, CALL_TIMEOUT)?;
            let mut lags = Vec::with_capacity(partitions.len());
            for p in partitions {
                let (low, high) = consumer.fetch_watermarks(&topic, p, CALL_TIMEOUT)?;
                let at = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    // Never committed: the group starts at the beginning.
                    _ => low,
                };
                lags.push(PartitionLag {
                    partition: p.max(0) as u32,
                    committed: at.max(0) as u64,
                    end: high.max(0) as u64,
                });
            }
            // Dropped here, on this thread: a list outliving the consumer would block its drop.
            drop(committed);
            Ok(lags)
        });
        Box::pin(async move { blocking.await.map_err(|e| PortError::Unexpected(e.into()))?.map_err(err) })
    }

    async fn close(mut self: Box<Self>) {
        if let Some(consumer) = self.consumer.take() {
            consumer.unsubscribe();
            // Dropping a consumer leaves the group; it can block, so bound it off the runtime.
            let drop = tokio::task::spawn_blocking(move || drop(consumer));
            if tokio::time::timeout(CALL_TIMEOUT, drop).await.is_err() {
                tracing::warn!("the Kafka consumer did not close in time");
            }
        }
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        // Not closed: leave the group off the async runtime, where blocking is harmless.
        if let Some(consumer) = self.consumer.take() {
            std::thread::spawn(move || drop(consumer));
        }
    }
}

struct KafkaFollower {
    /// Taken by `Drop`.
    consumer: Option<Arc<StreamConsumer>>,
}

#[async_trait]
impl EventFollower for KafkaFollower {
    async fn next(&mut self) -> Result<Record, PortError> {
        match &self.consumer {
            Some(consumer) => receive(consumer).await.map_err(err),
            None => Err(PortError::Unexpected(anyhow::anyhow!("the follower is closed"))),
        }
    }
}

impl Drop for KafkaFollower {
    fn drop(&mut self) {
        // Destroying a client can block on its threads: not on the async runtime.
        if let Some(consumer) = self.consumer.take() {
            std::thread::spawn(move || drop(consumer));
        }
    }
}
