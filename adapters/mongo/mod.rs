//! MongoDB adapters: the users service's `UserStore`.

pub mod user_store;

pub use user_store::MongoUserStore;
