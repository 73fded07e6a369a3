//! What the system says about itself: logs (`logs`), Prometheus metrics
//! (`metrics`) and W3C trace context (`trace`), carried across HTTP calls and
//! Kafka records so that one request's or one change's trail can be followed
//! through every service.

pub mod logs;
pub mod metrics;
pub mod trace;

pub use logs::init;
pub use metrics::Metrics;
