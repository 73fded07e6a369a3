//! Kafka adapters: the `EventBus` on rdkafka — an idempotent producer
//! (`acks=all`) keyed by product id, and consumer groups that commit an offset
//! only when told an event was handled.

pub mod event_bus;

pub use event_bus::KafkaEventBus;
