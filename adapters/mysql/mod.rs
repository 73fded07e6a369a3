//! MySQL (MariaDB) adapters: the products service's `ProductStore` and its `Outbox`.

pub mod product_store;

pub use product_store::MySqlProductStore;
