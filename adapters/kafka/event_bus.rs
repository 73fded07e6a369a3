//! `EventBus` on Kafka. Topics are created (3 partitions) when first used.
//! Consumers never commit by themselves: `commit` stores `offset + 1` for the
//! record's partition once the caller has handled it (at-least-once).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::ports::events::{EventBus, EventConsumer, Record};
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

fn base(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("socket.timeout.ms", "5000").set("log_level", "4");
    config
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
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), PortError> {
        self.ensure_topic(topic).await?;
        let record = FutureRecord::to(topic).key(key).payload(payload);
        self.producer.send(record, CALL_TIMEOUT).await.map_err(|(e, _)| err(e))?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn EventConsumer>, PortError> {
        self.ensure_topic(topic).await?;
        let consumer: StreamConsumer = base(&self.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .create()
            .map_err(err)?;
        consumer.subscribe(&[topic]).map_err(err)?;
        Ok(Box::new(KafkaConsumer { consumer: Some(Arc::new(consumer)) }))
    }
}

struct KafkaConsumer {
    /// `None` once closed.
    consumer: Option<Arc<StreamConsumer>>,
}

impl KafkaConsumer {
    fn inner(&self) -> Result<&Arc<StreamConsumer>, PortError> {
        self.consumer.as_ref().ok_or_else(|| PortError::Unexpected(anyhow::anyhow!("the consumer is closed")))
    }
}

#[async_trait]
impl EventConsumer for KafkaConsumer {
    async fn next(&mut self) -> Result<Record, PortError> {
        let consumer = self.inner()?;
        let message = consumer.recv().await.map_err(err)?;
        Ok(Record {
            topic: message.topic().to_string(),
            partition: message.partition().max(0) as u32,
            offset: message.offset().max(0) as u64,
            key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default(),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        })
    }

    async fn commit(&mut self, record: &Record) -> Result<(), PortError> {
        let consumer = self.inner()?.clone();
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&record.topic, record.partition as i32, Offset::Offset(record.offset as i64 + 1))
            .map_err(err)?;
        // A synchronous commit blocks its thread until the broker answers.
        tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
            .await
            .map_err(|e| PortError::Unexpected(e.into()))?
            .map_err(err)
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
