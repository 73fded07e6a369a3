//! The internal HTTP calls between services: the gateway asks the users service
//! who holds a token; the carts service asks the products service for many
//! products at once. Both sides use these names and shapes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kernel::identity::{Identity, Role};

/// `GET` with the token as `Authorization: Bearer …`: 200 `IdentityView` or 401.
pub const VALIDATE_TOKEN_PATH: &str = "/api/users/validate-token";

/// `POST {"ids": [...]}`: 200 with the products found, in request order.
pub const PRODUCTS_BATCH_PATH: &str = "/api/products/batch";

/// Most ids one batch call may name.
pub const MAX_BATCH: usize = 100;

/// The answer of the token validation.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdentityView {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
}

impl From<Identity> for IdentityView {
    fn from(i: Identity) -> Self {
        IdentityView { id: i.user_id, email: i.email, role: i.role }
    }
}

impl From<IdentityView> for Identity {
    fn from(v: IdentityView) -> Self {
        Identity { user_id: v.id, email: v.email, role: v.role }
    }
}
