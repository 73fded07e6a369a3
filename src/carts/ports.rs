//! Storage of cart lines (PostgreSQL in production) and the carts service's view
//! of the catalogue (the products service, over HTTP or in-process).

use async_trait::async_trait;
use uuid::Uuid;

use super::domain::{CartLine, ProductSnapshot};
use crate::ports::{PortError, Probe};

#[derive(Debug, thiserror::Error)]
pub enum CartWriteError {
    /// The line's quantity would rise above the allowed maximum; `current` is what it holds.
    #[error("quantity limit exceeded (line holds {current})")]
    LimitExceeded { current: u32 },
    #[error("no such line")]
    NotFound,
    /// The product was removed (`remove_product`): no line may be added for it.
    #[error("the product is gone")]
    ProductGone,
    #[error(transparent)]
    Port(#[from] PortError),
}

/// What a refresh did to the product's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Refresh {
    pub changed: u64,
    /// Lines already at the snapshot's version or newer: left as they were.
    pub current: u64,
}

/// What removing a product did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removal {
    pub removed: u64,
    /// The product was already known to be gone (a repeated removal).
    pub already: bool,
}

#[async_trait]
pub trait CartStore: Probe {
    /// The user's lines, oldest first.
    async fn lines(&self, user: Uuid) -> Result<Vec<CartLine>, PortError>;
    /// Atomically adds `quantity` to the user's line for `product`, creating the
    /// line from the snapshot (its price becomes `priceAtAdd`) if absent. MUST
    /// refuse with `LimitExceeded` when the line would exceed `max_quantity`, and
    /// MUST NOT lose an update under concurrent adds. A newer snapshot also
    /// refreshes the line's denormalized fields. MUST refuse with `ProductGone`
    /// (and leave no line) for a product removed by `remove_product`, before
    /// or while this add runs. Returns the user's lines after the add, as
    /// `lines` gives them, the added line as this add left it (the cart the
    /// add answers with; the store may read it with its removal check).
    async fn add(
        &self,
        user: Uuid,
        product: &ProductSnapshot,
        quantity: u32,
        max_quantity: u32,
    ) -> Result<Vec<CartLine>, CartWriteError>;
    /// Sets the quantity of an existing line; `NotFound` when there is none.
    async fn set_quantity(&self, user: Uuid, product_id: Uuid, quantity: u32) -> Result<(), CartWriteError>;
    /// Removes one line; false when there was none.
    async fn remove(&self, user: Uuid, product_id: Uuid) -> Result<bool, PortError>;
    async fn clear(&self, user: Uuid) -> Result<(), PortError>;
    /// Rewrites name, price and image of every line for the product whose stored
    /// version is older than the snapshot's, atomically; says how many lines
    /// changed and how many already reflected that version or a newer one.
    async fn refresh_product(&self, product: &ProductSnapshot) -> Result<Refresh, PortError>;
    /// Records that the product is gone, then removes every line for it.
    async fn remove_product(&self, product_id: Uuid) -> Result<Removal, PortError>;
}

/// The carts service's read access to the catalogue.
#[async_trait]
pub trait ProductCatalog: Probe {
    /// The products that exist among `ids` (one call, whatever their number).
    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<ProductSnapshot>, PortError>;
}
