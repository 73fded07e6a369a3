//! In-memory `CartStore`: lines per user, and the products known to be gone,
//! under one lock, so an add is one atomic read-modify-write (the upsert a
//! database does in one statement) that never races a product's removal.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::carts::domain::{CartLine, ProductSnapshot};
use crate::carts::ports::{CartStore, CartWriteError, Refresh, Removal};
use crate::ports::{PortError, Probe};

#[derive(Default)]
pub struct MemoryCartStore {
    carts: Mutex<Carts>,
}

#[derive(Default)]
struct Carts {
    lines: HashMap<Uuid, Vec<CartLine>>,
    /// Products known to be gone: no line may be added for them.
    removed: HashSet<Uuid>,
}

impl MemoryCartStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Probe for MemoryCartStore {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl CartStore for MemoryCartStore {
    async fn lines(&self, user: Uuid) -> Result<Vec<CartLine>, PortError> {
        Ok(self.carts.lock().lines.get(&user).cloned().unwrap_or_default())
    }

    async fn add(
        &self,
        user: Uuid,
        product: &ProductSnapshot,
        quantity: u32,
        max_quantity: u32,
    ) -> Result<Vec<CartLine>, CartWriteError> {
        let mut inner = self.carts.lock();
        if inner.removed.contains(&product.id) {
            return Err(CartWriteError::ProductGone);
        }
        let lines = inner.lines.entry(user).or_default();
        match lines.iter_mut().find(|l| l.product_id == product.id) {
            Some(line) => {
                if line.quantity + quantity > max_quantity {
                    return Err(CartWriteError::LimitExceeded { current: line.quantity });
                }
                line.quantity += quantity;
                line.refresh(product);
            }
            None => {
                if quantity > max_quantity {
                    return Err(CartWriteError::LimitExceeded { current: 0 });
                }
                lines.push(CartLine::new(product, quantity, crate::kernel::clock::now()));
            }
        }
        Ok(lines.clone())
    }

    async fn set_quantity(&self, user: Uuid, product_id: Uuid, quantity: u32) -> Result<(), CartWriteError> {
        let mut carts = self.carts.lock();
        let line = carts
            .lines
            .get_mut(&user)
            .and_then(|lines| lines.iter_mut().find(|l| l.product_id == product_id))
            .ok_or(CartWriteError::NotFound)?;
        line.quantity = quantity;
        Ok(())
    }

    async fn remove(&self, user: Uuid, product_id: Uuid) -> Result<bool, PortError> {
        let mut carts = self.carts.lock();
        let Some(lines) = carts.lines.get_mut(&user) else { return Ok(false) };
        let before = lines.len();
        lines.retain(|l| l.product_id != product_id);
        Ok(lines.len() < before)
    }

    async fn clear(&self, user: Uuid) -> Result<(), PortError> {
        self.carts.lock().lines.remove(&user);
        Ok(())
    }

    async fn refresh_product(&self, product: &ProductSnapshot) -> Result<Refresh, PortError> {
        let mut carts = self.carts.lock();
        let mut done = Refresh::default();
        for line in carts.lines.values_mut().flatten().filter(|l| l.product_id == product.id) {
            if line.refresh(product) {
                done.changed += 1;
            } else {
                done.current += 1;
            }
        }
        Ok(done)
    }

    async fn remove_product(&self, product_id: Uuid) -> Result<Removal, PortError> {
        let mut inner = self.carts.lock();
        let already = !inner.removed.insert(product_id);
        let mut removed = 0;
        for lines in inner.lines.values_mut() {
            let before = lines.len();
            lines.retain(|l| l.product_id != product_id);
            removed += (before - lines.len()) as u64;
        }
        Ok(Removal { removed, already })
    }
}
