//! The real servers for the suite, from `scripts/infra up` (whose settings
//! `scripts/test` exports as `AGORA_TEST_*`). Each test gets its own PostgreSQL
//! and MySQL database, MongoDB database, Redis namespace, Kafka topic and
//! consumer group, named `agtest_<pid>_<random>`; what earlier runs left is
//! dropped once per run.

use std::io::Write;
use std::time::Duration;

use agora::adapters::kafka::KafkaEventBus;
use agora::adapters::mongo::MongoUserStore;
use agora::adapters::mysql::MySqlProductStore;
use agora::adapters::postgres::PostgresCartStore;
use agora::adapters::redis::{self as redis_adapters, RedisCache, RedisIdempotencyStore, RedisRateLimiter};
use agora::config::{Config, Secret};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use sqlx::Connection;
use tokio::sync::OnceCell;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(8);

/// The servers `scripts/infra up` started.
#[derive(Clone, Debug)]
pub struct Servers {
    pub postgres: String,
    pub mysql: String,
    pub mongo: String,
    pub redis: String,
    pub kafka: String,
    pub jwt_secret: String,
    pub admin_password: String,
    pub internal_secret: String,
}

fn var(key: &str) -> Option<String> {
    std::env::var(format!("AGORA_TEST_{key}")).ok().filter(|v| !v.is_empty())
}

/// `None` when the suite runs without real servers.
pub fn servers() -> Option<Servers> {
    Some(Servers {
        postgres: var("CARTS__POSTGRES_URL")?,
        mysql: var("PRODUCTS__MYSQL_URL")?,
        mongo: var("USERS__MONGO_URL")?,
        redis: var("REDIS__URL")?,
        kafka: var("KAFKA__BROKERS")?,
        jwt_secret: var("USERS__JWT_SECRET")?,
        admin_password: var("USERS__ADMIN_PASSWORD")?,
        internal_secret: var("INTERNAL__SECRET")?,
    })
}

/// The servers, if configured. Without them a real-adapter test is skipped,
/// and the suite says so once on the terminal — unless `scripts/test` runs it
/// (`AGORA_TEST_REQUIRE_REAL=1`), where a missing server is a failure, so a
/// real-adapter test never passes there without having run.
pub fn available() -> Option<Servers> {
    let found = servers();
    if found.is_none() {
        assert!(
            std::env::var_os("AGORA_TEST_REQUIRE_REAL").is_none(),
            "real servers needed: `scripts/test` runs `scripts/infra up` and exports AGORA_TEST_*"
        );
        static NOTE: std::sync::Once = std::sync::Once::new();
        NOTE.call_once(|| {
            // Straight to the terminal: libtest captures only the print macros.
            let _ = writeln!(
                std::io::stderr(),
                "note: the real-server tests were skipped (no AGORA_TEST_* servers); `scripts/test` runs them all"
            );
        });
    }
    found
}

/// Whether the end-to-end suite should run on the real adapters (in one
/// process, or as four).
pub fn e2e_on_real() -> bool {
    std::env::var("AGORA_TEST_BACKEND").is_ok_and(|b| b == "real" || b == "processes")
}

/// Whether the end-to-end suite runs through four `agora serve` processes.
pub fn e2e_in_processes() -> bool {
    std::env::var("AGORA_TEST_BACKEND").is_ok_and(|b| b == "processes")
}

fn prefix() -> String {
    format!("agtest_{}_", std::process::id())
}

/// A fresh name for one test's databases, namespace and topic.
pub fn unique_name() -> String {
    format!("{}{}", prefix(), &Uuid::new_v4().simple().to_string()[..12])
}

/// `scheme://user:pass@host:port/db` with another database.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, format!("?{q}"))).unwrap_or((url, String::new()));
    let cut = base.rfind('/').filter(|i| base[..*i].ends_with(|c: char| c != '/')).unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..cut])
}

static CLEANED: OnceCell<()> = OnceCell::const_new();

/// Drops what earlier runs of the suite left behind (never this run's).
async fn clean_earlier_runs(s: &Servers) {
    CLEANED
        .get_or_init(|| async {
            let mine = prefix();
            let stale = |name: &str| name.starts_with("agtest_") && !name.starts_with(&mine);
            if let Ok(mut pg) = sqlx::PgConnection::connect(&s.postgres).await {
                let names: Vec<String> =
                    sqlx::query_scalar("SELECT datname FROM pg_database").fetch_all(&mut pg).await.unwrap_or_default();
                for name in names.iter().filter(|n| stale(n)) {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut pg).await;
                }
            }
            if let Ok(mut my) = sqlx::MySqlConnection::connect(&s.mysql).await {
                let names: Vec<String> =
                    sqlx::query_scalar("SHOW DATABASES").fetch_all(&mut my).await.unwrap_or_default();
                for name in names.iter().filter(|n| stale(n)) {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`")).execute(&mut my).await;
                }
            }
            if let Ok(client) = mongodb::Client::with_uri_str(&s.mongo).await
                && let Ok(names) = client.list_database_names().await
            {
                for name in names.iter().filter(|n| stale(n)) {
                    let _ = client.database(name).drop().await;
                }
            }
            if let Ok(admin) =
                ClientConfig::new().set("bootstrap.servers", &s.kafka).create::<AdminClient<DefaultClientContext>>()
            {
                let topics: Vec<String> = admin
                    .inner()
                    .fetch_metadata(None, Duration::from_secs(5))
                    .map(|m| m.topics().iter().map(|t| t.name().to_string()).collect())
                    .unwrap_or_default();
                let stale_topics: Vec<&str> = topics.iter().filter(|t| stale(t)).map(String::as_str).collect();
                if !stale_topics.is_empty() {
                    let _ = admin.delete_topics(&stale_topics, &AdminOptions::new()).await;
                }
            }
        })
        .await;
}

/// A fresh, empty PostgreSQL database; its URL.
pub async fn postgres_database(s: &Servers, name: &str) -> String {
    clean_earlier_runs(s).await;
    let mut pg = sqlx::PgConnection::connect(&s.postgres).await.expect("PostgreSQL answers");
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut pg).await.expect("create database");
    with_database(&s.postgres, name)
}

/// A fresh, empty MySQL database; its URL.
pub async fn mysql_database(s: &Servers, name: &str) -> String {
    clean_earlier_runs(s).await;
    let mut my = sqlx::MySqlConnection::connect(&s.mysql).await.expect("MySQL answers");
    sqlx::query(&format!("CREATE DATABASE `{name}`")).execute(&mut my).await.expect("create database");
    with_database(&s.mysql, name)
}

pub fn mongo_database(s: &Servers, name: &str) -> String {
    with_database(&s.mongo, name)
}

/// A whole-system configuration on the real servers, isolated for one test.
pub async fn config(mut config: Config) -> Config {
    let s = servers().expect("AGORA_TEST_BACKEND=real needs the AGORA_TEST_* servers: run `scripts/test`");
    let name = unique_name();
    config.carts.postgres_url = Some(postgres_database(&s, &name).await);
    config.products.mysql_url = Some(mysql_database(&s, &name).await);
    config.users.mongo_url = Some(mongo_database(&s, &name));
    config.redis.url = Some(s.redis.clone());
    config.redis.namespace = name.clone();
    config.kafka.brokers = Some(s.kafka.clone());
    config.kafka.topic = format!("{name}_product_events");
    config.carts.consumer_group = format!("{name}_carts");
    config.users.jwt_secret = Secret::new(s.jwt_secret);
    config.users.admin_password = Secret::new(s.admin_password);
    config.internal.secret = Secret::new(s.internal_secret);
    config
}

pub async fn user_store() -> Option<MongoUserStore> {
    let s = available()?;
    Some(MongoUserStore::connect(&mongo_database(&s, &unique_name()), TIMEOUT).await.expect("MongoDB"))
}

pub async fn product_store() -> Option<MySqlProductStore> {
    let s = available()?;
    let url = mysql_database(&s, &unique_name()).await;
    Some(MySqlProductStore::connect(&url, TIMEOUT).await.expect("MySQL"))
}

pub async fn cart_store() -> Option<PostgresCartStore> {
    let s = available()?;
    let url = postgres_database(&s, &unique_name()).await;
    Some(PostgresCartStore::connect(&url, TIMEOUT).await.expect("PostgreSQL"))
}

pub async fn cache() -> Option<RedisCache> {
    let s = available()?;
    Some(RedisCache::new(redis_adapters::connect(&s.redis, TIMEOUT).await.expect("Redis")))
}

pub async fn idempotency() -> Option<RedisIdempotencyStore> {
    let s = available()?;
    Some(RedisIdempotencyStore::new(redis_adapters::connect(&s.redis, TIMEOUT).await.expect("Redis")))
}

pub async fn rate_limiter() -> Option<RedisRateLimiter> {
    let s = available()?;
    Some(RedisRateLimiter::new(redis_adapters::connect(&s.redis, TIMEOUT).await.expect("Redis")))
}

pub async fn event_bus() -> Option<KafkaEventBus> {
    let s = available()?;
    Some(KafkaEventBus::connect(&s.kafka, &format!("{}_topic", unique_name()), TIMEOUT).await.expect("Kafka"))
}

#[test]
fn database_names_are_replaced() {
    assert_eq!(with_database("postgres://a:b@h:1/agora", "x"), "postgres://a:b@h:1/x");
    assert_eq!(with_database("mysql://a:b@h:1/agora?ssl-mode=disabled", "x"), "mysql://a:b@h:1/x?ssl-mode=disabled");
    assert_eq!(with_database("mongodb://h:1/agora", "x"), "mongodb://h:1/x");
    assert_eq!(with_database("mongodb://h:1", "x"), "mongodb://h:1/x");
}
