//! The carts service's `ProductCatalog` over the products service's batch call
//! (`contracts::service_api`).

use async_trait::async_trait;
use axum::http::{HeaderMap, Method, StatusCode};
use uuid::Uuid;

use crate::carts::domain::ProductSnapshot;
use crate::carts::ports::ProductCatalog;
use crate::contracts::service_api::{MAX_BATCH, PRODUCTS_BATCH_PATH};
use crate::http::upstream::Upstream;
use crate::ports::{PortError, Probe};

pub struct HttpProductCatalog {
    products: Upstream,
}

impl HttpProductCatalog {
    pub fn new(products: Upstream) -> Self {
        HttpProductCatalog { products }
    }
}

#[async_trait]
impl Probe for HttpProductCatalog {
    /// The catalogue answering at all is enough for the carts service to be ready.
    async fn ping(&self) -> Result<(), PortError> {
        let (status, _) = self.products.exchange(Method::GET, "/health", HeaderMap::new(), None).await?;
        if status.is_success() { Ok(()) } else { Err(PortError::unavailable("products service", status)) }
    }
}

#[async_trait]
impl ProductCatalog for HttpProductCatalog {
    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<ProductSnapshot>, PortError> {
        let mut found = Vec::with_capacity(ids.len());
        // One call for a cart of up to 100 products; more (rare) take one per 100.
        for chunk in ids.chunks(MAX_BATCH) {
            let body = serde_json::to_vec(&serde_json::json!({ "ids": chunk })).map_err(anyhow::Error::from)?;
            let (status, bytes) =
                self.products.exchange(Method::POST, PRODUCTS_BATCH_PATH, HeaderMap::new(), Some(body)).await?;
            if status != StatusCode::OK {
                return Err(PortError::unavailable("products service", format!("batch answered {status}")));
            }
            let products: Vec<ProductSnapshot> = super::data(&bytes)
                .map_err(|e| PortError::Unexpected(anyhow::anyhow!("products service answered oddly: {e}")))?;
            found.extend(products);
        }
        Ok(found)
    }
}
