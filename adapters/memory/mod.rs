//! In-memory adapters: the same contracts as the real servers, held in process.

pub mod cache;
pub mod cart_store;
pub mod event_bus;
pub mod idempotency;
pub mod product_store;
pub mod rate_limiter;
pub mod user_store;

pub use cache::MemoryCache;
pub use cart_store::MemoryCartStore;
pub use event_bus::MemoryEventBus;
pub use idempotency::MemoryIdempotencyStore;
pub use product_store::MemoryProductStore;
pub use rate_limiter::MemoryRateLimiter;
pub use user_store::MemoryUserStore;
