//! What two services agree on, kept apart from both so that neither imports the
//! other: the product events on the bus, and the internal HTTP calls between
//! services. Changing a type here changes a contract.

pub mod product_events;
pub mod service_api;
