//! The gateway's port: its question to the users service, who holds this token?

use async_trait::async_trait;

use crate::kernel::identity::Identity;
use crate::ports::{PortError, Probe};

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
