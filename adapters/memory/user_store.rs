//! In-memory `UserStore`: users by id with a unique email index, and revoked
//! token ids that are dropped once their token has expired anyway.

use parking_lot::Mutex;
use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ports::{PortError, Probe, WriteError};
use crate::users::domain::User;
use crate::users::ports::UserStore;

#[derive(Default)]
pub struct MemoryUserStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    users: HashMap<Uuid, User>,
    by_email: HashMap<String, Uuid>,
    revoked: HashMap<String, DateTime<Utc>>,
}

impl MemoryUserStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Probe for MemoryUserStore {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn insert(&self, user: &User) -> Result<(), WriteError> {
        let mut inner = self.inner.lock();
        if inner.by_email.contains_key(&user.email) || inner.users.contains_key(&user.id) {
            return Err(WriteError::Duplicate);
        }
        inner.by_email.insert(user.email.clone(), user.id);
        inner.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<User>, PortError> {
        Ok(self.inner.lock().users.get(&id).cloned())
    }

    async fn by_email(&self, email: &str) -> Result<Option<User>, PortError> {
        let inner = self.inner.lock();
        Ok(inner.by_email.get(email).and_then(|id| inner.users.get(id)).cloned())
    }

    async fn update(&self, user: &User) -> Result<(), WriteError> {
        let mut inner = self.inner.lock();
        let Some(old_email) = inner.users.get(&user.id).map(|u| u.email.clone()) else {
            return Err(WriteError::NotFound);
        };
        if old_email != user.email {
            if inner.by_email.contains_key(&user.email) {
                return Err(WriteError::Duplicate);
            }
            inner.by_email.remove(&old_email);
            inner.by_email.insert(user.email.clone(), user.id);
        }
        inner.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<(), PortError> {
        let mut inner = self.inner.lock();
        let now = Utc::now();
        inner.revoked.retain(|_, exp| *exp > now);
        inner.revoked.insert(jti.to_string(), expires_at);
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, PortError> {
        Ok(self.inner.lock().revoked.contains_key(jti))
    }
}
