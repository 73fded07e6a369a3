//! Configuration: the built-in defaults (`defaults.toml`, embedded) < `agora.toml`
//! (or the file named by `AGORA_CONFIG`) < `AGORA_<SECTION>__<KEY>` environment
//! variables, validated once loaded. An adapter whose URL is unset is the
//! in-memory one.
//!
//! `secret` holds secret values that never print; `proxies` the trusted-proxy
//! list; `urls` what is done with URLs (is one set, its password hidden).

mod proxies;
mod secret;
mod urls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

pub use proxies::{TrustedProxies, canonical};
pub use secret::Secret;
pub use urls::{configured, shown};

/// The defaults, readable in one place.
pub const DEFAULTS: &str = include_str!("defaults.toml");
/// The demo secrets: accepted only while every adapter is in memory.
pub const DEMO_JWT_SECRET: &str = "agora-demo-secret-change-me-0123456789abcdef";
pub const DEMO_ADMIN_PASSWORD: &str = "admin12345";
pub const DEMO_INTERNAL_SECRET: &str = "agora-demo-internal-secret-0123456789abcdef";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub server: ServerConfig,
    pub internal: InternalConfig,
    pub gateway: GatewayConfig,
    pub users: UsersConfig,
    pub products: ProductsConfig,
    pub carts: CartsConfig,
    pub kafka: KafkaConfig,
    pub redis: RedisConfig,
    pub telemetry: TelemetryConfig,
    pub demo: DemoConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerConfig {
    pub max_connections: usize,
    pub header_read_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub drain_delay_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InternalConfig {
    pub secret: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub rate_limit: RateLimitConfig,
    pub trusted_proxies: TrustedProxies,
    pub auth_cache_ttl_secs: u64,
    pub upstream_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimitConfig {
    pub requests: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsersConfig {
    pub listen: SocketAddr,
    pub url: Option<String>,
    pub jwt_secret: Secret,
    pub token_ttl_secs: u64,
    pub admin_email: String,
    pub admin_password: Secret,
    pub admin_name: String,
    pub mongo_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductsConfig {
    pub listen: SocketAddr,
    pub url: Option<String>,
    pub mysql_url: Option<String>,
    pub relay_interval_ms: u64,
    pub read_cache_ttl_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CartsConfig {
    pub listen: SocketAddr,
    pub url: Option<String>,
    pub postgres_url: Option<String>,
    pub product_cache_ttl_secs: u64,
    pub consumer_group: String,
    pub consumer_instance_id: String,
    pub consumer_stall_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KafkaConfig {
    pub brokers: Option<String>,
    /// The product events topic (tests give each run its own).
    pub topic: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisConfig {
    pub url: Option<String>,
    pub namespace: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// An OTLP/HTTP collector (e.g. `http://jaeger:4318`): spans are exported there when set.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoConfig {
    pub seed_catalogue: bool,
}

impl Default for Config {
    /// The built-in defaults alone.
    fn default() -> Self {
        // `DEFAULTS` is part of the binary and a unit test extracts it.
        #[allow(clippy::expect_used)]
        Figment::from(Toml::string(DEFAULTS)).extract().expect("the built-in defaults are valid")
    }
}

impl Config {
    /// Defaults < `agora.toml` or `$AGORA_CONFIG` < `AGORA_*` variables, validated.
    pub fn load() -> Result<Config, ConfigError> {
        let file = std::env::var_os("AGORA_CONFIG").map(PathBuf::from).unwrap_or_else(|| "agora.toml".into());
        Self::from_figment(Self::figment(file))
    }

    pub fn figment(file: PathBuf) -> Figment {
        Figment::from(Toml::string(DEFAULTS))
            .merge(Toml::file(file))
            .merge(Env::prefixed("AGORA_").split("__").ignore(&["config"]))
    }

    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Every key the configuration reads, as the environment variable that sets
    /// it (`AGORA_GATEWAY__RATE_LIMIT__REQUESTS`…), derived from the structure.
    pub fn env_vars() -> Vec<String> {
        fn walk(name: &str, value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(fields) => {
                    for (key, value) in fields {
                        let key = key.to_uppercase();
                        walk(
                            &if name.is_empty() { format!("AGORA_{key}") } else { format!("{name}__{key}") },
                            value,
                            out,
                        );
                    }
                }
                _ => out.push(name.to_string()),
            }
        }
        let mut out = Vec::new();
        walk("", &serde_json::to_value(Config::default()).unwrap_or_default(), &mut out);
        out
    }

    /// The real adapters configured, by config key (empty = the all-in-memory demo).
    pub fn real_adapters(&self) -> Vec<&'static str> {
        [
            ("users.mongo_url", &self.users.mongo_url),
            ("products.mysql_url", &self.products.mysql_url),
            ("carts.postgres_url", &self.carts.postgres_url),
            ("kafka.brokers", &self.kafka.brokers),
            ("redis.url", &self.redis.url),
        ]
        .into_iter()
        .filter(|(_, url)| configured(url).is_some())
        .map(|(key, _)| key)
        .collect()
    }

    /// The rules a loaded configuration must meet to start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        for (key, secret) in [("users.jwt_secret", &self.users.jwt_secret), ("internal.secret", &self.internal.secret)]
        {
            if secret.expose().len() < 32 {
                return invalid(format!("{key} must be at least 32 bytes"));
            }
        }
        if self.server.max_connections == 0 || self.server.request_timeout_secs == 0 {
            return invalid("server.max_connections and server.request_timeout_secs must be at least 1".into());
        }
        if self.users.admin_password.expose().len() < 8 {
            return invalid("users.admin_password must be at least 8 characters".into());
        }
        if self.gateway.rate_limit.requests == 0 || self.gateway.rate_limit.window_secs == 0 {
            return invalid("gateway.rate_limit.requests and window_secs must be at least 1".into());
        }
        if self.users.token_ttl_secs == 0 {
            return invalid("users.token_ttl_secs must be at least 1".into());
        }
        if let Some(endpoint) = self.otlp_endpoint()
            && !endpoint.starts_with("http://")
        {
            // The exporter's HTTP client is built without TLS, like every client here.
            return invalid(format!("telemetry.otlp_endpoint must be an http:// URL, not {endpoint:?}"));
        }
        let real = self.real_adapters();
        if !real.is_empty() {
            for (key, value, demo) in [
                ("users.jwt_secret", &self.users.jwt_secret, DEMO_JWT_SECRET),
                ("users.admin_password", &self.users.admin_password, DEMO_ADMIN_PASSWORD),
                ("internal.secret", &self.internal.secret, DEMO_INTERNAL_SECRET),
            ] {
                if value.expose() == demo {
                    return invalid(format!(
                        "{key} is the demo default, refused with real adapters configured ({})",
                        real.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// A copy fit for printing: URL passwords hidden (secrets never print anyway).
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        for url in [&mut c.users.mongo_url, &mut c.products.mysql_url, &mut c.carts.postgres_url, &mut c.redis.url] {
            if let Some(u) = url.as_mut() {
                *u = shown(u);
            }
        }
        c
    }

    /// The OTLP collector spans go to, if export is on.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        urls::configured(&self.telemetry.otlp_endpoint)
    }

    pub fn users_url(&self) -> String {
        urls::service_url(&self.users.url, self.users.listen)
    }
    pub fn products_url(&self) -> String {
        urls::service_url(&self.products.url, self.products.listen)
    }
    pub fn carts_url(&self) -> String {
        urls::service_url(&self.carts.url, self.carts.listen)
    }
}

impl ServerConfig {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    pub fn drain_delay(&self) -> Duration {
        Duration::from_millis(self.drain_delay_ms)
    }
}

impl GatewayConfig {
    pub fn rate_window(&self) -> Duration {
        Duration::from_secs(self.rate_limit.window_secs)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's own signature
mod tests {
    use figment::Jail;

    use super::*;

    fn load() -> Result<Config, ConfigError> {
        Config::from_figment(Config::figment("agora.toml".into()))
    }

    #[test]
    fn defaults_are_the_demo() {
        Jail::expect_with(|_jail| {
            let c = load().unwrap();
            assert_eq!(c.gateway.listen, "127.0.0.1:3000".parse().unwrap());
            assert_eq!(c.gateway.rate_limit.requests, 100);
            assert_eq!(c.gateway.auth_cache_ttl_secs, 30);
            assert_eq!(c.users_url(), "http://127.0.0.1:3001");
            assert_eq!(c.users.admin_email, "admin@agora.local");
            assert_eq!(c.users.jwt_secret.expose(), DEMO_JWT_SECRET);
            assert_eq!(c.users.admin_password.expose(), DEMO_ADMIN_PASSWORD);
            assert_eq!(c.carts.product_cache_ttl_secs, 3600);
            assert_eq!(c.redis.namespace, "agora");
            assert!(c.real_adapters().is_empty());
            Ok(())
        });
    }

    #[test]
    fn file_then_env_override() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "agora.toml",
                "[gateway]\nlisten = \"127.0.0.1:4000\"\n[gateway.rate_limit]\nrequests = 5\n",
            )?;
            jail.set_env("AGORA_GATEWAY__RATE_LIMIT__REQUESTS", "7");
            jail.set_env("AGORA_GATEWAY__TRUSTED_PROXIES", "[127.0.0.1, 10.0.0.0/8]");
            jail.set_env("AGORA_USERS__ADMIN_EMAIL", "boss@example.com");
            let c = load().unwrap();
            assert_eq!(c.gateway.listen, "127.0.0.1:4000".parse().unwrap());
            assert_eq!(c.gateway.rate_limit.requests, 7);
            assert_eq!(c.gateway.rate_limit.window_secs, 60, "the rest of the section keeps its defaults");
            assert_eq!(c.users.admin_email, "boss@example.com");
            assert_eq!(c.gateway.trusted_proxies.len(), 2);
            assert!(c.gateway.trusted_proxies.contains("10.2.3.4".parse().unwrap()));
            assert!(!c.gateway.trusted_proxies.contains("11.2.3.4".parse().unwrap()));
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_from_a_comma_separated_string() {
        Jail::expect_with(|jail| {
            jail.set_env("AGORA_GATEWAY__TRUSTED_PROXIES", "127.0.0.1,::1");
            let c = load().unwrap();
            assert_eq!(c.gateway.trusted_proxies.len(), 2);
            assert!(c.gateway.trusted_proxies.contains("::1".parse().unwrap()));
            Ok(())
        });
    }

    #[test]
    fn short_secret_and_demo_defaults_with_real_adapters_are_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("AGORA_USERS__JWT_SECRET", "short");
            assert!(load().unwrap_err().to_string().contains("32 bytes"));
            jail.set_env("AGORA_USERS__JWT_SECRET", DEMO_JWT_SECRET);
            jail.set_env("AGORA_REDIS__URL", "redis://127.0.0.1:6379");
            assert!(load().unwrap_err().to_string().contains("demo default"));
            Ok(())
        });
    }

    #[test]
    fn env_vars_name_every_key() {
        let vars = Config::env_vars();
        for expected in [
            "AGORA_GATEWAY__LISTEN",
            "AGORA_GATEWAY__RATE_LIMIT__REQUESTS",
            "AGORA_GATEWAY__TRUSTED_PROXIES",
            "AGORA_USERS__JWT_SECRET",
            "AGORA_USERS__MONGO_URL",
            "AGORA_PRODUCTS__URL",
            "AGORA_CARTS__POSTGRES_URL",
            "AGORA_KAFKA__BROKERS",
            "AGORA_REDIS__NAMESPACE",
        ] {
            assert!(vars.iter().any(|v| v == expected), "{expected} in {vars:?}");
        }
        assert!(!vars.iter().any(|v| v == "AGORA_GATEWAY__RATE_LIMIT"), "sections are not keys");
    }

    #[test]
    fn printing_hides_secrets_and_url_passwords() {
        let mut c = Config::default();
        c.carts.postgres_url = Some("postgres://agora:hunter2@127.0.0.1/agora".into());
        let text = toml::to_string(&c.redacted()).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(!text.contains(DEMO_JWT_SECRET));
        assert!(text.contains("postgres://agora:[redacted]@127.0.0.1/agora"));
        assert_eq!(format!("{:?}", c.users.jwt_secret), "[redacted]");
    }
}
