//! The users service's use cases: register, log in and out, profile, and the
//! token validation the gateway relies on.

use std::sync::Arc;

use uuid::Uuid;

use super::domain::{self, User};
use super::password::{HashError, PasswordHasher};
use super::ports::UserStore;
use super::tokens::{IssuedToken, TokenIssueError, TokenIssuer};
use crate::kernel::identity::{Identity, Role};
use crate::kernel::validation::{FieldError, Problems};
use crate::ports::{PortError, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid token")]
    InvalidToken,
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<HashError> for UserError {
    fn from(e: HashError) -> Self {
        UserError::Internal(e.into())
    }
}

impl From<TokenIssueError> for UserError {
    fn from(e: TokenIssueError) -> Self {
        UserError::Internal(e.into())
    }
}

impl From<WriteError> for UserError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Duplicate => UserError::EmailTaken,
            WriteError::NotFound | WriteError::Conflict => UserError::InvalidToken,
            WriteError::Port(p) => UserError::Port(p),
        }
    }
}

/// A registration whose fields passed every rule.
pub struct Registration {
    pub name: String,
    pub email: String,
    pub password: String,
}

impl Registration {
    pub fn parse(name: Option<&str>, email: Option<&str>, password: Option<&str>) -> Result<Self, UserError> {
        let mut p = Problems::new();
        let name = p.check("name", required(name).and_then(domain::name));
        let email = p.check("email", required(email).and_then(domain::email));
        let password = p.check("password", required(password).and_then(domain::password));
        p.finish(|| Registration {
            name: name.unwrap_or_default(),
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
        })
        .map_err(UserError::Validation)
    }
}

/// A profile change; `None` leaves a field as it is. The role is not here: it
/// can never be changed through the API.
#[derive(Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

impl ProfileChange {
    pub fn parse(name: Option<&str>, email: Option<&str>, password: Option<&str>) -> Result<Self, UserError> {
        let mut p = Problems::new();
        let name = name.and_then(|n| p.check("name", domain::name(n)));
        let email = email.and_then(|e| p.check("email", domain::email(e)));
        let password = password.and_then(|pw| p.check("password", domain::password(pw)));
        p.finish(|| ProfileChange { name, email, password }).map_err(UserError::Validation)
    }
}

fn required(value: Option<&str>) -> Result<&str, String> {
    value.ok_or_else(|| "is required".to_string())
}

pub struct UserService {
    store: Arc<dyn UserStore>,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    /// A real hash verified when the email is unknown, so that a login takes as
    /// long whether or not the account exists.
    decoy_hash: String,
}

pub struct Session {
    pub user: User,
    pub token: IssuedToken,
}

impl UserService {
    pub async fn new(
        store: Arc<dyn UserStore>,
        tokens: TokenIssuer,
        hasher: PasswordHasher,
    ) -> Result<Self, UserError> {
        let decoy_hash = hasher.hash(Uuid::new_v4().to_string()).await?;
        Ok(UserService { store, hasher, tokens, decoy_hash })
    }

    pub async fn register(&self, r: Registration) -> Result<Session, UserError> {
        if self.store.by_email(&r.email).await?.is_some() {
            return Err(UserError::EmailTaken);
        }
        let now = crate::kernel::clock::now();
        let user = User {
            id: Uuid::now_v7(),
            name: r.name,
            email: r.email,
            role: Role::User,
            password_hash: self.hasher.hash(r.password).await?,
            token_version: 0,
            created_at: now,
            updated_at: now,
        };
        // The store's unique email is what settles two registrations racing.
        self.store.insert(&user).await?;
        let token = self.tokens.issue(&user)?;
        Ok(Session { user, token })
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<Session, UserError> {
        let email = email.trim().to_lowercase();
        let user = self.store.by_email(&email).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| self.decoy_hash.clone());
        let matches = self.hasher.verify(password.to_string(), hash).await?;
        match user {
            Some(user) if matches => {
                let token = self.tokens.issue(&user)?;
                Ok(Session { user, token })
            }
            _ => Err(UserError::InvalidCredentials),
        }
    }

    /// Revokes the token until it expires.
    pub async fn logout(&self, token: &str) -> Result<(), UserError> {
        let claims = self.tokens.verify(token).ok_or(UserError::InvalidToken)?;
        self.store.revoke_token(&claims.jti, claims.expires_at()).await?;
        Ok(())
    }

    /// Who holds this token: well signed, in its validity period, not revoked,
    /// issued under its user's current token version, and its user still exists.
    pub async fn validate(&self, token: &str) -> Result<Identity, UserError> {
        let claims = self.tokens.verify(token).ok_or(UserError::InvalidToken)?;
        if self.store.is_revoked(&claims.jti).await? {
            return Err(UserError::InvalidToken);
        }
        let user = self.store.by_id(claims.sub).await?.ok_or(UserError::InvalidToken)?;
        if claims.ver != user.token_version {
            return Err(UserError::InvalidToken);
        }
        Ok(Identity { user_id: user.id, email: user.email, role: user.role })
    }

    pub async fn profile(&self, id: Uuid) -> Result<User, UserError> {
        self.store.by_id(id).await?.ok_or(UserError::InvalidToken)
    }

    pub async fn update_profile(&self, id: Uuid, change: ProfileChange) -> Result<User, UserError> {
        let mut user = self.profile(id).await?;
        if let Some(email) = change.email
            && email != user.email
        {
            if self.store.by_email(&email).await?.is_some() {
                return Err(UserError::EmailTaken);
            }
            user.email = email;
        }
        if let Some(name) = change.name {
            user.name = name;
        }
        if let Some(password) = change.password {
            user.password_hash = self.hasher.hash(password).await?;
            // Every token issued so far, this caller's included, stops working.
            user.token_version += 1;
        }
        user.updated_at = crate::kernel::clock::now();
        self.store.update(&user).await?;
        Ok(user)
    }

    /// Makes sure the configured admin exists, with the configured password.
    /// An existing account with that email is promoted: admins come only from here.
    pub async fn ensure_admin(&self, name: &str, email: &str, password: &str) -> Result<User, UserError> {
        let email = domain::email(email).map_err(|m| UserError::Validation(vec![field("users.admin_email", m)]))?;
        let now = crate::kernel::clock::now();
        match self.store.by_email(&email).await? {
            Some(mut user) => {
                let password_ok = self.hasher.verify(password.to_string(), user.password_hash.clone()).await?;
                if user.role == Role::Admin && password_ok {
                    return Ok(user);
                }
                user.role = Role::Admin;
                if !password_ok {
                    user.password_hash = self.hasher.hash(password.to_string()).await?;
                }
                user.updated_at = now;
                self.store.update(&user).await?;
                Ok(user)
            }
            None => {
                let user = User {
                    id: Uuid::now_v7(),
                    name: name.to_string(),
                    email,
                    role: Role::Admin,
                    password_hash: self.hasher.hash(password.to_string()).await?,
                    token_version: 0,
                    created_at: now,
                    updated_at: now,
                };
                self.store.insert(&user).await?;
                Ok(user)
            }
        }
    }
}

fn field(name: &str, message: String) -> FieldError {
    FieldError { field: name.into(), message }
}
