//! Start-up against configured servers that are not there: it fails within
//! seconds, naming the service and the URL (password hidden), never hangs and
//! never falls back to memory.

use std::time::{Duration, Instant};

use agora::config::{Config, Secret};
use agora::runtime::App;

use crate::helpers::test_config;

fn with_real_secrets(mut config: Config) -> Config {
    config.users.jwt_secret = Secret::new("a-real-secret-a-real-secret-0123456789abcdef");
    config.users.admin_password = Secret::new("a-real-admin-password");
    config.internal.secret = Secret::new("a-real-internal-secret-0123456789abcdef");
    config
}

async fn fails_fast(config: Config, expected: &[&str]) {
    let started = Instant::now();
    let error = match App::start(config).await {
        Ok(_) => panic!("start-up succeeded without its server"),
        Err(e) => format!("{e:#}"),
    };
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    for word in expected {
        assert!(error.contains(word), "{error:?} should name {word}");
    }
    assert!(!error.contains("s3cret"), "the password is hidden: {error}");
}

#[tokio::test]
async fn an_unreachable_server_fails_start_up_fast_and_names_it() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let mut c = with_real_secrets(test_config());
    c.carts.postgres_url = Some("postgres://agora:s3cret@127.0.0.1:1/agora".into());
    fails_fast(c, &["carts", "PostgreSQL", "127.0.0.1:1"]).await;
    let mut c = with_real_secrets(test_config());
    c.products.mysql_url = Some("mysql://agora:s3cret@127.0.0.1:1/agora".into());
    fails_fast(c, &["products", "MySQL", "127.0.0.1:1"]).await;
    let mut c = with_real_secrets(test_config());
    c.users.mongo_url = Some("mongodb://agora:s3cret@127.0.0.1:1/agora".into());
    fails_fast(c, &["users", "MongoDB", "127.0.0.1:1"]).await;
    let mut c = with_real_secrets(test_config());
    c.redis.url = Some("redis://:s3cret@127.0.0.1:1".into());
    fails_fast(c, &["Redis", "127.0.0.1:1"]).await;
    let mut c = with_real_secrets(test_config());
    c.kafka.brokers = Some("127.0.0.1:1".into());
    fails_fast(c, &["Kafka", "127.0.0.1:1"]).await;
}

#[tokio::test]
async fn demo_secrets_are_refused_with_a_real_adapter() {
    let mut c = test_config();
    c.redis.url = Some("redis://127.0.0.1:1".into());
    let error = c.validate().unwrap_err().to_string();
    assert!(error.contains("demo default"), "{error}");
}
