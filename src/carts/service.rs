//! The carts service's use cases. Product details are read cache-aside: one
//! cache round trip for all of a cart's products, one catalogue call for the
//! misses, one cache write for what came back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::domain::{self, CartLine, CartView, Live, MAX_QUANTITY, ProductSnapshot};
use super::ports::{CartStore, CartWriteError, ProductCatalog};
use crate::kernel::breaker::Breaker;
use crate::kernel::validation::FieldError;
use crate::ports::PortError;
use crate::ports::cache::{Cache, Versioned};
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum CartError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("product not found")]
    ProductNotFound,
    #[error("item not in cart")]
    ItemNotFound,
    #[error("insufficient stock")]
    InsufficientStock { available: u32 },
    #[error(transparent)]
    Port(#[from] PortError),
}

fn quantity_error(message: &str) -> CartError {
    CartError::Validation(vec![FieldError { field: "quantity".into(), message: message.into() }])
}

/// Checks a requested quantity: whole, 1 to 999 (0 too when `zero_removes`).
pub fn quantity(raw: Option<i64>, default: Option<u32>, zero_removes: bool) -> Result<u32, CartError> {
    let min = if zero_removes { 0 } else { 1 };
    match raw {
        None => default.ok_or_else(|| quantity_error("is required")),
        Some(q) if q < min || q > i64::from(MAX_QUANTITY) => Err(quantity_error(if zero_removes {
            "must be a whole number from 0 to 999"
        } else {
            "must be a whole number from 1 to 999"
        })),
        Some(q) => Ok(q as u32),
    }
}

pub struct CartService {
    store: Arc<dyn CartStore>,
    cache: Arc<dyn Cache>,
    catalog: Arc<dyn ProductCatalog>,
    cache_ttl: Duration,
    namespace: String,
    /// Keeps requests from waiting on a cache that is down.
    cache_breaker: Breaker,
    metrics: Option<Arc<Metrics>>,
}

impl CartService {
    pub fn new(
        store: Arc<dyn CartStore>,
        cache: Arc<dyn Cache>,
        catalog: Arc<dyn ProductCatalog>,
        cache_ttl: Duration,
        namespace: &str,
    ) -> Self {
        let cache_breaker = Breaker::new(1, Duration::from_secs(1));
        CartService { store, cache, catalog, cache_ttl, namespace: namespace.to_string(), cache_breaker, metrics: None }
    }

    /// Counts cache hits and misses in `metrics`.
    pub fn observed(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub async fn view(&self, user: Uuid) -> Result<CartView, CartError> {
        let lines = self.store.lines(user).await?;
        self.priced(lines).await
    }

    /// `lines` priced with the live catalogue (their own copies if it is down).
    async fn priced(&self, lines: Vec<CartLine>) -> Result<CartView, CartError> {
        if lines.is_empty() {
            return Ok(domain::price(&[], Live::Unknown));
        }
        let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
        match self.products(&ids).await {
            Ok(live) => Ok(domain::price(&lines, Live::Known(&live))),
            Err(e) => {
                tracing::warn!(error = %e, "catalogue unavailable; pricing the cart from its own copies");
                Ok(domain::price(&lines, Live::Unknown))
            }
        }
    }

    pub async fn add(&self, user: Uuid, product_id: Uuid, quantity: u32) -> Result<CartView, CartError> {
        let product = self.product(product_id).await?;
        let max = product.stock.min(MAX_QUANTITY);
        let lines = match self.store.add(user, &product, quantity, max).await {
            Ok(lines) => lines,
            Err(CartWriteError::LimitExceeded { current }) => {
                return Err(if u64::from(current) + u64::from(quantity) > u64::from(product.stock) {
                    CartError::InsufficientStock { available: product.stock }
                } else {
                    quantity_error("would take the line above 999")
                });
            }
            Err(CartWriteError::NotFound | CartWriteError::ProductGone) => return Err(CartError::ProductNotFound),
            Err(CartWriteError::Port(e)) => return Err(e.into()),
        };
        self.priced(lines).await
    }

    /// Sets a line's quantity; 0 removes it.
    pub async fn set_quantity(&self, user: Uuid, product_id: Uuid, quantity: u32) -> Result<CartView, CartError> {
        if quantity == 0 {
            return self.remove(user, product_id).await;
        }
        let lines = self.store.lines(user).await?;
        let line = lines.iter().find(|l| l.product_id == product_id).ok_or(CartError::ItemNotFound)?;
        match self.product(product_id).await {
            Ok(p) if p.stock < quantity => return Err(CartError::InsufficientStock { available: p.stock }),
            Ok(_) => {}
            // A vanished product's line may still be lowered (its removal event is on the way), never raised.
            Err(CartError::ProductNotFound) if quantity <= line.quantity => {}
            Err(e) => return Err(e),
        }
        match self.store.set_quantity(user, product_id, quantity).await {
            Ok(()) => self.view(user).await,
            Err(CartWriteError::NotFound) => Err(CartError::ItemNotFound),
            Err(CartWriteError::LimitExceeded { .. }) => Err(quantity_error("must be a whole number from 0 to 999")),
            Err(CartWriteError::ProductGone) => Err(CartError::ProductNotFound),
            Err(CartWriteError::Port(e)) => Err(e.into()),
        }
    }

    pub async fn remove(&self, user: Uuid, product_id: Uuid) -> Result<CartView, CartError> {
        if !self.store.remove(user, product_id).await? {
            return Err(CartError::ItemNotFound);
        }
        self.view(user).await
    }

    pub async fn clear(&self, user: Uuid) -> Result<CartView, CartError> {
        self.store.clear(user).await?;
        Ok(domain::price(&[], Live::Unknown))
    }

    async fn product(&self, id: Uuid) -> Result<ProductSnapshot, CartError> {
        self.products(&[id]).await?.remove(&id).ok_or(CartError::ProductNotFound)
    }

    /// Cache-aside lookup of many products. A cache that fails counts as all
    /// misses (and is left alone for a second, so that an outage costs no
    /// waiting); the catalogue failing is an error.
    pub async fn products(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, ProductSnapshot>, PortError> {
        let keys: Vec<String> = ids.iter().map(|id| product_key(&self.namespace, *id)).collect();
        let cached = match self.cache_breaker.admit() {
            Some(admission) => {
                let got = self.cache.get_many(&keys).await;
                admission.record(got.is_ok());
                got.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "product cache unavailable; reading the catalogue");
                    vec![None; keys.len()]
                })
            }
            None => vec![None; keys.len()],
        };
        let mut found = HashMap::with_capacity(ids.len());
        let mut misses = Vec::new();
        for (id, value) in ids.iter().zip(cached) {
            match value.and_then(|bytes| serde_json::from_slice::<ProductSnapshot>(&bytes).ok()) {
                Some(p) => {
                    found.insert(*id, p);
                }
                None => misses.push(*id),
            }
        }
        if let Some(metrics) = &self.metrics {
            Metrics::cache_lookup(&metrics.product_cache, found.len() as u64, misses.len() as u64);
        }
        if misses.is_empty() {
            return Ok(found);
        }
        let fetched = self.catalog.get_many(&misses).await?;
        let entries: Vec<Versioned> = fetched
            .iter()
            .filter_map(|p| {
                let value = serde_json::to_vec(p).ok()?;
                Some(Versioned { key: product_key(&self.namespace, p.id), version: p.version, value })
            })
            .collect();
        if !entries.is_empty()
            && let Some(admission) = self.cache_breaker.admit()
        {
            // What an event invalidated meanwhile is newer than what we read: it stays out.
            let filled = self.cache.put_many(&entries, self.cache_ttl).await;
            if let Err(e) = &filled {
                tracing::warn!(error = %e, "could not fill the product cache");
            }
            admission.record(filled.is_ok());
        }
        found.extend(fetched.into_iter().map(|p| (p.id, p)));
        Ok(found)
    }
}

/// `<namespace>:product:<id>` (built without the formatting machinery: a cart
/// view makes one per line).
pub fn product_key(namespace: &str, id: Uuid) -> String {
    const INFIX: &str = ":product:";
    let mut key = String::with_capacity(namespace.len() + INFIX.len() + uuid::fmt::Hyphenated::LENGTH);
    key.push_str(namespace);
    key.push_str(INFIX);
    key.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_key_names_the_namespace_and_the_id() {
        let id = Uuid::new_v4();
        assert_eq!(product_key("agora", id), format!("agora:product:{id}"));
    }
}
