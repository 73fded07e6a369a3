//! `UserStore` on MongoDB: a `users` collection with a unique index on the
//! normalized email (a duplicate-key error becomes `Duplicate`), and a
//! `revoked_tokens` collection whose entries expire with their tokens.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{self, doc};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kernel::identity::Role;
use crate::ports::{PortError, Probe, WriteError};
use crate::users::domain::User;
use crate::users::ports::UserStore;

const DEPENDENCY: &str = "MongoDB";
const DUPLICATE_KEY: i32 = 11000;

#[derive(Clone)]
pub struct MongoUserStore {
    client: Client,
    users: Collection<UserDoc>,
    revoked: Collection<RevokedDoc>,
}

#[derive(Serialize, Deserialize)]
struct UserDoc {
    #[serde(rename = "_id")]
    id: String,
    name: String,
    email: String,
    role: Role,
    password_hash: String,
    /// Absent in documents written before token versions existed: 0.
    #[serde(default)]
    token_version: i64,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    created_at: DateTime<Utc>,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct RevokedDoc {
    #[serde(rename = "_id")]
    jti: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    expires_at: DateTime<Utc>,
}

impl From<&User> for UserDoc {
    fn from(u: &User) -> Self {
        UserDoc {
            id: u.id.to_string(),
            name: u.name.clone(),
            email: u.email.clone(),
            role: u.role,
            password_hash: u.password_hash.clone(),
            token_version: u.token_version.min(i64::MAX as u64) as i64,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

impl TryFrom<UserDoc> for User {
    type Error = PortError;
    fn try_from(d: UserDoc) -> Result<Self, PortError> {
        Ok(User {
            id: Uuid::parse_str(&d.id).map_err(|e| PortError::Unexpected(e.into()))?,
            name: d.name,
            email: d.email,
            role: d.role,
            password_hash: d.password_hash,
            token_version: d.token_version.max(0) as u64,
            created_at: d.created_at,
            updated_at: d.updated_at,
        })
    }
}

fn err(e: MongoError) -> PortError {
    match *e.kind {
        ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => {
            PortError::unavailable(DEPENDENCY, e)
        }
        _ => PortError::Unexpected(anyhow::Error::new(e).context(DEPENDENCY)),
    }
}

/// MongoDB says 11000; FerretDB on SQLite reports a unique violation in an
/// update as an internal error naming the constraint, so that counts too.
fn is_duplicate(e: &MongoError) -> bool {
    let coded = match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    };
    let text = e.to_string();
    coded || text.contains("E11000") || text.contains("UNIQUE constraint failed")
}

impl MongoUserStore {
    /// Connects (server selection bounded, so a missing server fails fast) and
    /// creates the indexes, idempotently. The database is the URL's, else `agora`.
    pub async fn connect(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let mut options = ClientOptions::parse(url).await?;
        // Also the wait of every call while the server is down: keep 503s fast.
        options.server_selection_timeout = Some(timeout.min(Duration::from_secs(2)));
        options.connect_timeout = Some(timeout.min(Duration::from_secs(5)));
        options.app_name = Some("agora".into());
        let database = options.default_database.clone().unwrap_or_else(|| "agora".into());
        let client = Client::with_options(options)?;
        let db = client.database(&database);
        let store = MongoUserStore { client, users: db.collection("users"), revoked: db.collection("revoked_tokens") };
        tokio::time::timeout(timeout, store.migrate()).await??;
        Ok(store)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let unique_email = IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(IndexOptions::builder().unique(true).name("users_email_unique".to_string()).build())
            .build();
        self.users.create_index(unique_email).await?;
        let expiry = IndexModel::builder()
            .keys(doc! { "expires_at": 1 })
            .options(
                IndexOptions::builder().expire_after(Duration::from_secs(0)).name("revoked_expiry".to_string()).build(),
            )
            .build();
        // Expiry is housekeeping only (lookups check `expires_at`, and each
        // revocation sweeps expired entries); FerretDB has no TTL indexes.
        if let Err(e) = self.revoked.create_index(expiry).await {
            tracing::info!(reason = %e.kind, "no TTL index on revoked tokens; revocations sweep them instead");
        }
        Ok(())
    }
}

#[async_trait]
impl Probe for MongoUserStore {
    async fn ping(&self) -> Result<(), PortError> {
        self.client.database("admin").run_command(doc! { "ping": 1 }).await.map_err(err)?;
        Ok(())
    }
}

#[async_trait]
impl UserStore for MongoUserStore {
    async fn insert(&self, user: &User) -> Result<(), WriteError> {
        match self.users.insert_one(UserDoc::from(user)).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(WriteError::Duplicate),
            Err(e) => Err(err(e).into()),
        }
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<User>, PortError> {
        let found = self.users.find_one(doc! { "_id": id.to_string() }).await.map_err(err)?;
        found.map(User::try_from).transpose()
    }

    async fn by_email(&self, email: &str) -> Result<Option<User>, PortError> {
        let found = self.users.find_one(doc! { "email": email }).await.map_err(err)?;
        found.map(User::try_from).transpose()
    }

    async fn update(&self, user: &User) -> Result<(), WriteError> {
        let result = self.users.replace_one(doc! { "_id": user.id.to_string() }, UserDoc::from(user)).await;
        match result {
            Ok(r) if r.matched_count == 0 => Err(WriteError::NotFound),
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(WriteError::Duplicate),
            Err(e) => Err(err(e).into()),
        }
    }

    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<(), PortError> {
        let doc = RevokedDoc { jti: jti.to_string(), expires_at };
        match self.revoked.insert_one(doc).await {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => {}
            Err(e) => return Err(err(e)),
        }
        let now = bson::DateTime::from_chrono(Utc::now());
        self.revoked.delete_many(doc! { "expires_at": { "$lte": now } }).await.map_err(err)?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, PortError> {
        let now = bson::DateTime::from_chrono(Utc::now());
        let found = self.revoked.find_one(doc! { "_id": jti, "expires_at": { "$gt": now } }).await.map_err(err)?;
        Ok(found.is_some())
    }
}
