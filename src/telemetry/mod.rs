//! What the system says about itself: logs (`logs`), Prometheus metrics
//! (`metrics`), W3C trace context (`trace`), carried across HTTP calls and
//! Kafka records so that one request's or one change's trail can be followed
//! through every service, and the export of its spans over OTLP (`otlp`).

pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod trace;

pub use logs::{Export, init};
pub use metrics::Metrics;
