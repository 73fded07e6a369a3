//! The one place that chooses adapters from configuration: an unset URL means
//! the in-memory adapter. Real adapters come with the infrastructure issue;
//! until then a set URL refuses to start rather than silently using memory.

use std::sync::Arc;

use crate::adapters::memory::{
    MemoryCache, MemoryCartStore, MemoryEventBus, MemoryProductStore, MemoryRateLimiter, MemoryUserStore,
};
use crate::config::Config;
use crate::ports::cache::Cache;
use crate::ports::carts::CartStore;
use crate::ports::events::EventBus;
use crate::ports::products::{Outbox, ProductStore};
use crate::ports::rate_limit::RateLimiter;
use crate::ports::users::UserStore;

/// Every infrastructure port, wired.
#[derive(Clone)]
pub struct Adapters {
    pub users: Arc<dyn UserStore>,
    pub products: Arc<dyn ProductStore>,
    pub outbox: Arc<dyn Outbox>,
    pub carts: Arc<dyn CartStore>,
    pub cache: Arc<dyn Cache>,
    pub limiter: Arc<dyn RateLimiter>,
    pub bus: Arc<dyn EventBus>,
}

impl Adapters {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        if let Some(key) = config.real_adapters().first() {
            anyhow::bail!(
                "{key} is set, but this build has no real adapter for it yet; unset it to run on in-memory adapters"
            );
        }
        Ok(Self::in_memory())
    }

    pub fn in_memory() -> Self {
        let products = Arc::new(MemoryProductStore::new());
        Adapters {
            users: Arc::new(MemoryUserStore::new()),
            products: products.clone(),
            outbox: products,
            carts: Arc::new(MemoryCartStore::new()),
            cache: Arc::new(MemoryCache::new()),
            limiter: Arc::new(MemoryRateLimiter::new()),
            bus: Arc::new(MemoryEventBus::default()),
        }
    }
}
