//! The products service's use cases. Every write goes to the store together
//! with its event (the outbox), then wakes the relay. Writes are the admin's
//! alone: the routes check the role before calling them.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;
use uuid::Uuid;

use super::domain::{Product, ProductFields, ProductQuery};
use super::events;
use super::ports::ProductStore;
use crate::contracts::product_events::EventType;
use crate::kernel::validation::FieldError;
use crate::ports::{Page, PortError, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("product not found")]
    NotFound,
    #[error("concurrent change")]
    Conflict,
    #[error(transparent)]
    Port(#[from] PortError),
}

impl From<WriteError> for ProductError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotFound => ProductError::NotFound,
            WriteError::Conflict | WriteError::Duplicate => ProductError::Conflict,
            WriteError::Port(p) => ProductError::Port(p),
        }
    }
}

/// Optimistic retries of an update that raced another writer.
const WRITE_ATTEMPTS: usize = 5;

pub struct ProductService {
    store: Arc<dyn ProductStore>,
    relay_wake: Arc<Notify>,
}

impl ProductService {
    pub fn new(store: Arc<dyn ProductStore>, relay_wake: Arc<Notify>) -> Self {
        ProductService { store, relay_wake }
    }

    pub async fn list(&self, query: &ProductQuery) -> Result<Page<Product>, ProductError> {
        Ok(self.store.list(query).await?)
    }

    pub async fn get(&self, id: Uuid) -> Result<Product, ProductError> {
        self.store.get(id).await?.ok_or(ProductError::NotFound)
    }

    /// The products found among `ids`, in request order, each once.
    pub async fn batch(&self, ids: &[Uuid]) -> Result<Vec<Product>, ProductError> {
        let mut found: HashMap<Uuid, Product> =
            self.store.get_many(ids).await?.into_iter().map(|p| (p.id, p)).collect();
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    pub async fn create(&self, fields: ProductFields) -> Result<Product, ProductError> {
        let change = fields.check(true).map_err(ProductError::Validation)?;
        let product = Product::create(change, crate::kernel::clock::now());
        let event = events::changed(EventType::ProductCreated, &product);
        self.store.create(&product, &events::to_outbox(&event, product.id)).await?;
        self.relay_wake.notify_one();
        Ok(product)
    }

    pub async fn update(&self, id: Uuid, fields: ProductFields) -> Result<Product, ProductError> {
        let change = fields.check(false).map_err(ProductError::Validation)?;
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.get(id).await?;
            let next = current.changed(&change, crate::kernel::clock::now());
            let event = events::changed(EventType::ProductUpdated, &next);
            match self.store.update(&next, current.version, &events::to_outbox(&event, id)).await {
                Ok(()) => {
                    self.relay_wake.notify_one();
                    return Ok(next);
                }
                Err(WriteError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ProductError::Conflict)
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), ProductError> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.get(id).await?;
            let event = events::deleted(&current, crate::kernel::clock::now());
            match self.store.delete(id, current.version, &events::to_outbox(&event, id)).await {
                Ok(()) => {
                    self.relay_wake.notify_one();
                    return Ok(());
                }
                Err(WriteError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ProductError::Conflict)
    }
}
