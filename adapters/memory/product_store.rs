//! In-memory `ProductStore` and `Outbox`: the products and their unsent events
//! live under one lock, so a change and its event are stored together or not
//! at all, as a database transaction would.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use crate::ports::{Page, PortError, Probe, WriteError};
use crate::products::domain::{Product, ProductQuery, SortKey};
use crate::products::ports::{Outbox, OutboxEvent, ProductStore};

#[derive(Default)]
pub struct MemoryProductStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    products: HashMap<Uuid, Product>,
    /// Unsent events in commit order, with the lease each may be under.
    outbox: Vec<(OutboxEvent, Option<Lease>)>,
}

/// Who holds an event, and until when.
struct Lease {
    owner: String,
    until: Instant,
}

impl MemoryProductStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn matches(p: &Product, q: &ProductQuery) -> bool {
    let text = q.q.as_ref().map(|t| t.to_lowercase());
    q.category.as_ref().is_none_or(|c| p.category.eq_ignore_ascii_case(c))
        && text.as_ref().is_none_or(|t| p.name.to_lowercase().contains(t) || p.description.to_lowercase().contains(t))
        && q.min_price.is_none_or(|m| p.price >= m)
        && q.max_price.is_none_or(|m| p.price <= m)
}

fn compare(a: &Product, b: &Product, key: SortKey) -> Ordering {
    match key {
        SortKey::Price => a.price.cmp(&b.price),
        SortKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
        SortKey::CreatedAt => a.created_at.cmp(&b.created_at),
    }
}

#[async_trait]
impl Probe for MemoryProductStore {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl ProductStore for MemoryProductStore {
    async fn list(&self, q: &ProductQuery) -> Result<Page<Product>, PortError> {
        let inner = self.inner.lock();
        let mut found: Vec<&Product> = inner.products.values().filter(|p| matches(p, q)).collect();
        found.sort_by(|a, b| {
            let order = compare(a, b, q.sort.key).then_with(|| a.id.cmp(&b.id));
            if q.sort.descending { order.reverse() } else { order }
        });
        let total = found.len() as u64;
        let items = found.into_iter().skip(q.offset() as usize).take(q.limit as usize).cloned().collect();
        Ok(Page { items, total })
    }

    async fn get(&self, id: Uuid) -> Result<Option<Product>, PortError> {
        Ok(self.inner.lock().products.get(&id).cloned())
    }

    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Product>, PortError> {
        let inner = self.inner.lock();
        let unique: HashSet<&Uuid> = ids.iter().collect();
        Ok(unique.into_iter().filter_map(|id| inner.products.get(id).cloned()).collect())
    }

    async fn create(&self, product: &Product, event: &OutboxEvent) -> Result<(), WriteError> {
        let mut inner = self.inner.lock();
        if inner.products.contains_key(&product.id) {
            return Err(WriteError::Duplicate);
        }
        inner.products.insert(product.id, product.clone());
        inner.outbox.push((event.clone(), None));
        Ok(())
    }

    async fn update(&self, product: &Product, expected_version: u64, event: &OutboxEvent) -> Result<(), WriteError> {
        let mut inner = self.inner.lock();
        match inner.products.get(&product.id) {
            None => return Err(WriteError::NotFound),
            Some(p) if p.version != expected_version => return Err(WriteError::Conflict),
            Some(_) => {}
        }
        inner.products.insert(product.id, product.clone());
        inner.outbox.push((event.clone(), None));
        Ok(())
    }

    async fn delete(&self, id: Uuid, expected_version: u64, event: &OutboxEvent) -> Result<(), WriteError> {
        let mut inner = self.inner.lock();
        match inner.products.get(&id) {
            None => return Err(WriteError::NotFound),
            Some(p) if p.version != expected_version => return Err(WriteError::Conflict),
            Some(_) => {}
        }
        inner.products.remove(&id);
        inner.outbox.push((event.clone(), None));
        Ok(())
    }
}

#[async_trait]
impl Outbox for MemoryProductStore {
    async fn claim(&self, owner: &str, limit: usize, lease: Duration) -> Result<Vec<OutboxEvent>, PortError> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let mut blocked: HashSet<String> = HashSet::new();
        let mut claimed = Vec::new();
        for (event, held) in inner.outbox.iter_mut() {
            if claimed.len() >= limit {
                break;
            }
            let theirs = held.as_ref().is_some_and(|l| l.until > now && l.owner != owner);
            if theirs || blocked.contains(&event.key) {
                // Later events of this key wait until this one is out.
                blocked.insert(event.key.clone());
                continue;
            }
            *held = Some(Lease { owner: owner.to_owned(), until: now + lease });
            claimed.push(event.clone());
        }
        Ok(claimed)
    }

    async fn mark_sent(&self, ids: &[Uuid]) -> Result<(), PortError> {
        let ids: HashSet<&Uuid> = ids.iter().collect();
        self.inner.lock().outbox.retain(|(e, _)| !ids.contains(&e.id));
        Ok(())
    }

    async fn pending(&self) -> Result<u64, PortError> {
        Ok(self.inner.lock().outbox.len() as u64)
    }
}
