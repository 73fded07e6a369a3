//! The event bus (Kafka in production): keyed records with headers on
//! partitioned topics, consumed by groups that commit their offsets, or
//! followed from their end outside any group.

use async_trait::async_trait;
use futures::future::BoxFuture;

use super::{PortError, Probe};

/// Record headers, in order (e.g. the trace context, a dead letter's cause).
pub type Headers = Vec<(String, String)>;

/// A record as a consumer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Headers,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Headers,
}

/// A batch that was published only in part: the first `published` messages
/// are durable, the rest are not (and must be published again).
#[derive(Debug, thiserror::Error)]
#[error("{published} message(s) published, then: {cause}")]
pub struct PartlyPublished {
    pub published: usize,
    pub cause: PortError,
}

/// Where a group stands on one partition: `end - committed` records wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: u32,
    /// The offset the group resumes at (0 when it never committed).
    pub committed: u64,
    /// The offset the next record will get.
    pub end: u64,
}

impl PartitionLag {
    pub fn lag(&self) -> u64 {
        self.end.saturating_sub(self.committed)
    }
}

#[async_trait]
pub trait EventBus: Probe {
    /// Appends `messages` in order, in one go. Messages with the same key MUST
    /// go to the same partition, in publish order. Returns once all are
    /// durable; on a failure, says how many of the first ones are, and no
    /// message after a failed one of the same key may be durable before it.
    async fn publish_batch(&self, topic: &str, messages: &[Message]) -> Result<(), PartlyPublished>;

    /// Appends one record without headers.
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), PortError> {
        let message = Message { key: key.to_string(), payload: payload.to_vec(), headers: Vec::new() };
        self.publish_batch(topic, &[message]).await.map_err(|e| e.cause)
    }

    /// Joins consumer group `group` on `topic`. A group with no committed offset
    /// starts at the beginning of each partition; otherwise at the committed
    /// offset. The group's members share the partitions between them.
    /// `instance` (static membership), when given, names this member across
    /// restarts: a member that comes back under the same name takes its
    /// partitions back without waiting for the group to rebalance.
    async fn subscribe_as(
        &self,
        topic: &str,
        group: &str,
        instance: Option<&str>,
    ) -> Result<Box<dyn EventConsumer>, PortError>;

    /// Joins as a dynamic member.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn EventConsumer>, PortError> {
        self.subscribe_as(topic, group, None).await
    }

    /// Reads every partition of `topic` from where it ends now, outside any
    /// group (nothing is committed, no one shares the partitions). Returns once
    /// positioned: every record published after it returns MUST be delivered.
    async fn follow(&self, topic: &str) -> Result<Box<dyn EventFollower>, PortError>;
}

/// A reader of a whole topic, from the end it had when it began.
#[async_trait]
pub trait EventFollower: Send + Sync {
    /// Waits for the next record (cancel-safe).
    async fn next(&mut self) -> Result<Record, PortError>;
}

#[async_trait]
pub trait EventConsumer: Send + Sync {
    /// Waits for the next record of this member's partitions (cancel-safe).
    async fn next(&mut self) -> Result<Record, PortError>;
    /// Whether this member can never consume again (its client failed for
    /// good, e.g. fenced by a newer member under its static name), so that
    /// the caller joins anew at once instead of waiting for it to heal.
    fn is_lost(&self) -> bool {
        false
    }
    /// Commits `record` as handled: the group resumes after it.
    async fn commit(&mut self, record: &Record) -> Result<(), PortError>;
    /// The group's position on every partition of the topic (not only this
    /// member's): what it has committed and where each partition ends. The
    /// future owns what it needs, so the caller goes on consuming while the
    /// broker answers (which may take a fetch's long poll per partition).
    fn backlog(&self) -> BoxFuture<'static, Result<Vec<PartitionLag>, PortError>>;
    /// Leaves the group, so that its partitions go to the other members.
    async fn close(self: Box<Self>);
}
