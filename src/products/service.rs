//! The products service's use cases. Every write goes to the store together
//! with its event (the outbox), then wakes the relay and updates the read
//! cache. Reads by id go through the read cache; writes read the store.
//! Writes are the admin's alone: the routes check the role before calling them.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;
use uuid::Uuid;

use super::domain::{Product, ProductFields, ProductQuery};
use super::events;
use super::ports::ProductStore;
use super::read_cache::{Lookup, ReadCache};
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
    /// Off (never serving) unless given with `with_read_cache`.
    cache: Arc<ReadCache>,
}

impl ProductService {
    pub fn new(store: Arc<dyn ProductStore>, relay_wake: Arc<Notify>) -> Self {
        ProductService { store, relay_wake, cache: Arc::new(ReadCache::new(std::time::Duration::ZERO)) }
    }

    /// Reads by id through `cache` (which serves once its follower runs).
    pub fn with_read_cache(mut self, cache: Arc<ReadCache>) -> Self {
        self.cache = cache;
        self
    }

    pub async fn list(&self, query: &ProductQuery) -> Result<Page<Product>, ProductError> {
        Ok(self.store.list(query).await?)
    }

    pub async fn get(&self, id: Uuid) -> Result<Product, ProductError> {
        let fill = match self.cache.lookup(id) {
            Lookup::Hit(product) => return Ok(Product::clone(&product)),
            Lookup::Miss => true,
            Lookup::Off => false,
        };
        let product = self.stored(id).await?;
        if fill {
            self.cache.fill(&product);
        }
        Ok(product)
    }

    /// The product as the store has it now (what a write must start from).
    async fn stored(&self, id: Uuid) -> Result<Product, ProductError> {
        self.store.get(id).await?.ok_or(ProductError::NotFound)
    }

    /// The products found among `ids`, in request order, each once.
    pub async fn batch(&self, ids: &[Uuid]) -> Result<Vec<Product>, ProductError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        let mut fill = true;
        for &id in ids {
            match self.cache.lookup(id) {
                Lookup::Hit(product) => {
                    found.insert(id, Product::clone(&product));
                }
                Lookup::Miss => missing.push(id),
                Lookup::Off => {
                    fill = false;
                    missing.push(id);
                }
            }
        }
        if !missing.is_empty() {
            for product in self.store.get_many(&missing).await? {
                if fill {
                    self.cache.fill(&product);
                }
                found.insert(product.id, product);
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    pub async fn create(&self, fields: ProductFields) -> Result<Product, ProductError> {
        let change = fields.check(true).map_err(ProductError::Validation)?;
        let product = Product::create(change, crate::kernel::clock::now());
        let event = events::changed(EventType::ProductCreated, &product);
        self.store.create(&product, &events::to_outbox(&event, product.id)).await?;
        self.relay_wake.notify_one();
        self.cache.fill(&product);
        Ok(product)
    }

    pub async fn update(&self, id: Uuid, fields: ProductFields) -> Result<Product, ProductError> {
        let change = fields.check(false).map_err(ProductError::Validation)?;
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.stored(id).await?;
            let next = current.changed(&change, crate::kernel::clock::now());
            let event = events::changed(EventType::ProductUpdated, &next);
            match self.store.update(&next, current.version, &events::to_outbox(&event, id)).await {
                Ok(()) => {
                    self.relay_wake.notify_one();
                    self.cache.fill(&next);
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
            let current = self.stored(id).await?;
            let event = events::deleted(&current, crate::kernel::clock::now());
            match self.store.delete(id, current.version, &events::to_outbox(&event, id)).await {
                Ok(()) => {
                    self.relay_wake.notify_one();
                    self.cache.announce(id, event.version);
                    return Ok(());
                }
                Err(WriteError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ProductError::Conflict)
    }
}
