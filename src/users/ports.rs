//! Storage of user accounts and revoked tokens (MongoDB in production).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::domain::User;
use crate::ports::{PortError, Probe, WriteError};

#[async_trait]
pub trait UserStore: Probe {
    /// MUST fail with `Duplicate` when another user has the same (normalized) email.
    async fn insert(&self, user: &User) -> Result<(), WriteError>;
    async fn by_id(&self, id: Uuid) -> Result<Option<User>, PortError>;
    /// `email` is already normalized (trimmed, lowercased).
    async fn by_email(&self, email: &str) -> Result<Option<User>, PortError>;
    /// Replaces the stored user with the same id. MUST fail with `NotFound` when
    /// there is none and `Duplicate` when the email belongs to another user.
    async fn update(&self, user: &User) -> Result<(), WriteError>;
    /// Records that the token `jti` is revoked until `expires_at` (after which it
    /// is invalid anyway, so the record may be dropped).
    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<(), PortError>;
    async fn is_revoked(&self, jti: &str) -> Result<bool, PortError>;
}
