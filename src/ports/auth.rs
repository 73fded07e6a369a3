//! The gateway's question to the users service: who holds this token?

use async_trait::async_trait;
use uuid::Uuid;

use super::{PortError, Probe};
use crate::users::domain::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Missing, malformed, expired, revoked or wrongly signed.
    #[error("invalid token")]
    Invalid,
    #[error(transparent)]
    Port(#[from] PortError),
}

#[async_trait]
pub trait TokenValidator: Probe {
    async fn validate(&self, token: &str) -> Result<Identity, TokenError>;
}
