//! The services' calls to each other, over an `Upstream` (in-process router or
//! HTTP client: the same code either way).

pub mod product_catalog;
pub mod token_validator;

pub use product_catalog::HttpProductCatalog;
pub use token_validator::HttpTokenValidator;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The success envelope as a client reads it.
#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

pub(crate) fn data<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice::<Envelope<T>>(bytes).map(|e| e.data)
}
