//! PostgreSQL adapters: the carts service's `CartStore`.

pub mod cart_store;

pub use cart_store::PostgresCartStore;
