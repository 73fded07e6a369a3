//! The event bus (Kafka in production): keyed records on partitioned topics,
//! consumed by groups that commit their offsets.

use async_trait::async_trait;

use super::{PortError, Probe};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: String,
    pub payload: Vec<u8>,
}

#[async_trait]
pub trait EventBus: Probe {
    /// Appends a record. Records with the same key MUST go to the same partition,
    /// in publish order. Returns once the record is durable.
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), PortError>;
    /// Joins consumer group `group` on `topic`. A group with no committed offset
    /// starts at the beginning of each partition; otherwise at the committed
    /// offset. The group's members share the partitions between them.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn EventConsumer>, PortError>;
}

#[async_trait]
pub trait EventConsumer: Send {
    /// Waits for the next record of this member's partitions (cancel-safe).
    async fn next(&mut self) -> Result<Record, PortError>;
    /// Commits `record` as handled: the group resumes after it.
    async fn commit(&mut self, record: &Record) -> Result<(), PortError>;
    /// Leaves the group, so that its partitions go to the other members.
    async fn close(self: Box<Self>);
}
