//! The `UserStore` contract. Every user has a fresh id and email, so the tests can share a database
//! with other tests and earlier runs.

use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::MemoryUserStore;
use agora::kernel::identity::Role;
use agora::ports::WriteError;
use agora::users::domain::User;
use agora::users::ports::UserStore;
use tokio::time::timeout;
use uuid::Uuid;

use super::{WAIT, now_ms, unique};

/// `user_store_contract!(name, || async { ... as Arc<dyn UserStore> })`: a module `name` with one
/// `#[tokio::test]` per contract test, each on a store from the factory. Attributes before `name`
/// (e.g. `#[ignore = "needs MongoDB"]`) go on every test.
macro_rules! user_store_contract {
    ($(#[$attr:meta])* $name:ident, $make:expr) => {
        $crate::contract::port_contract!(users, [$(#[$attr])*] $name, $make;
            ping_answers,
            insert_then_read_by_id_and_email,
            unknown_users_are_none,
            duplicate_email_is_refused,
            update_replaces_every_field,
            update_keeping_the_email_is_not_a_duplicate,
            update_to_another_users_email_is_refused,
            update_of_a_missing_user_is_not_found,
            revoked_tokens_are_remembered,
        );
    };
}

user_store_contract!(memory, || async { Some(Arc::new(MemoryUserStore::new()) as Arc<dyn UserStore>) });
// The same contract on the real server (scripts/infra up).
user_store_contract!(mongo, || async { crate::real::user_store().await.map(|s| Arc::new(s) as Arc<dyn UserStore>) });

/// A fresh user with a unique id and (normalized) email.
fn user(role: Role) -> User {
    let now = now_ms();
    User {
        id: Uuid::new_v4(),
        name: "Ada Lovelace".into(),
        email: email(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
        token_version: 7,
        created_at: now,
        updated_at: now,
    }
}

fn email() -> String {
    format!("{}@example.com", unique("user"))
}

async fn insert(store: &dyn UserStore, user: &User) -> Result<(), WriteError> {
    timeout(WAIT, store.insert(user)).await.expect("insert timed out")
}

async fn update(store: &dyn UserStore, user: &User) -> Result<(), WriteError> {
    timeout(WAIT, store.update(user)).await.expect("update timed out")
}

async fn by_id(store: &dyn UserStore, id: Uuid) -> Option<User> {
    timeout(WAIT, store.by_id(id)).await.expect("by_id timed out").expect("by_id failed")
}

async fn by_email(store: &dyn UserStore, email: &str) -> Option<User> {
    timeout(WAIT, store.by_email(email)).await.expect("by_email timed out").expect("by_email failed")
}

async fn is_revoked(store: &dyn UserStore, jti: &str) -> bool {
    timeout(WAIT, store.is_revoked(jti)).await.expect("is_revoked timed out").expect("is_revoked failed")
}

pub async fn ping_answers(store: Arc<dyn UserStore>) {
    timeout(Duration::from_secs(1), store.ping()).await.expect("ping took over a second").expect("ping failed");
}

pub async fn insert_then_read_by_id_and_email(store: Arc<dyn UserStore>) {
    let alice = user(Role::User);
    let admin = user(Role::Admin);
    insert(&*store, &alice).await.expect("insert failed");
    insert(&*store, &admin).await.expect("insert failed");
    assert_eq!(by_id(&*store, alice.id).await, Some(alice.clone()));
    assert_eq!(by_email(&*store, &alice.email).await, Some(alice));
    assert_eq!(by_id(&*store, admin.id).await, Some(admin.clone()));
    assert_eq!(by_email(&*store, &admin.email).await, Some(admin));
}

pub async fn unknown_users_are_none(store: Arc<dyn UserStore>) {
    assert_eq!(by_id(&*store, Uuid::new_v4()).await, None);
    assert_eq!(by_email(&*store, &email()).await, None);
}

pub async fn duplicate_email_is_refused(store: Arc<dyn UserStore>) {
    let first = user(Role::User);
    insert(&*store, &first).await.expect("insert failed");
    let second = User { email: first.email.clone(), name: "Someone Else".into(), ..user(Role::Admin) };
    assert!(matches!(insert(&*store, &second).await, Err(WriteError::Duplicate)), "a second user with the same email");
    assert_eq!(by_id(&*store, second.id).await, None, "the refused user was stored");
    assert_eq!(by_email(&*store, &first.email).await, Some(first));
}

pub async fn update_replaces_every_field(store: Arc<dyn UserStore>) {
    let original = user(Role::User);
    insert(&*store, &original).await.expect("insert failed");
    let changed = User {
        name: "Ada King".into(),
        email: email(),
        role: Role::Admin,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA".into(),
        token_version: original.token_version + 1,
        updated_at: original.updated_at + chrono::Duration::seconds(5),
        ..original.clone()
    };
    update(&*store, &changed).await.expect("update failed");
    assert_eq!(by_id(&*store, original.id).await, Some(changed.clone()));
    assert_eq!(by_email(&*store, &changed.email).await, Some(changed.clone()));
    assert_eq!(by_email(&*store, &original.email).await, None, "the old email still finds the user");

    // The old email is free again.
    let newcomer = User { email: original.email.clone(), ..user(Role::User) };
    insert(&*store, &newcomer).await.expect("the freed email could not be reused");
    assert_eq!(by_email(&*store, &original.email).await, Some(newcomer));
    assert_eq!(by_id(&*store, original.id).await, Some(changed));
}

pub async fn update_keeping_the_email_is_not_a_duplicate(store: Arc<dyn UserStore>) {
    let original = user(Role::User);
    insert(&*store, &original).await.expect("insert failed");
    let renamed = User { name: "Renamed".into(), ..original.clone() };
    update(&*store, &renamed).await.expect("an update that keeps the email failed");
    assert_eq!(by_email(&*store, &original.email).await, Some(renamed));
}

pub async fn update_to_another_users_email_is_refused(store: Arc<dyn UserStore>) {
    let (alice, bob) = (user(Role::User), user(Role::User));
    insert(&*store, &alice).await.expect("insert failed");
    insert(&*store, &bob).await.expect("insert failed");
    let stolen = User { email: alice.email.clone(), name: "Bob Again".into(), ..bob.clone() };
    let result = update(&*store, &stolen).await;
    assert!(matches!(result, Err(WriteError::Duplicate)), "took another user's email: {result:?}");
    assert_eq!(by_id(&*store, bob.id).await, Some(bob.clone()), "the refused update changed the user");
    assert_eq!(by_email(&*store, &alice.email).await, Some(alice));
    assert_eq!(by_email(&*store, &bob.email).await, Some(bob));
}

pub async fn update_of_a_missing_user_is_not_found(store: Arc<dyn UserStore>) {
    let ghost = user(Role::User);
    assert!(matches!(update(&*store, &ghost).await, Err(WriteError::NotFound)), "updated a user that does not exist");
    assert_eq!(by_id(&*store, ghost.id).await, None, "the update inserted the user");
    assert_eq!(by_email(&*store, &ghost.email).await, None, "the update inserted the user");
}

pub async fn revoked_tokens_are_remembered(store: Arc<dyn UserStore>) {
    let (jti, other) = (unique("jti"), unique("jti"));
    assert!(!is_revoked(&*store, &jti).await, "a token nobody revoked is revoked");
    let expires_at = now_ms() + chrono::Duration::hours(1);
    timeout(WAIT, store.revoke_token(&jti, expires_at)).await.expect("revoke timed out").expect("revoke failed");
    assert!(is_revoked(&*store, &jti).await, "the revoked token is not revoked");
    assert!(!is_revoked(&*store, &other).await, "revoking one token revoked another");
    // Revoking again is harmless.
    timeout(WAIT, store.revoke_token(&jti, expires_at))
        .await
        .expect("revoke timed out")
        .expect("revoking twice failed");
    assert!(is_revoked(&*store, &jti).await);
}
