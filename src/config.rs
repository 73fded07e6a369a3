//! Configuration: built-in defaults < `agora.toml` (or the file named by
//! `AGORA_CONFIG`) < `AGORA_<SECTION>__<KEY>` environment variables.
//! An adapter whose URL is unset is the in-memory one.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

/// The demo secret: accepted only while every adapter is in-memory.
pub const DEMO_JWT_SECRET: &str = "agora-demo-secret-change-me-0123456789abcdef";
pub const DEMO_ADMIN_EMAIL: &str = "admin@agora.local";
pub const DEMO_ADMIN_PASSWORD: &str = "admin12345";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Config {
    pub gateway: GatewayConfig,
    pub users: UsersConfig,
    pub products: ProductsConfig,
    pub carts: CartsConfig,
    pub kafka: KafkaConfig,
    pub redis: RedisConfig,
    pub demo: DemoConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub rate_limit: RateLimitConfig,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDR blocks).
    #[serde(deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<TrustedProxy>,
    /// How long a validated token is trusted without asking the users service (0 = always ask).
    pub auth_cache_ttl_secs: u64,
    /// Longest wait for a service's answer before a 504.
    pub upstream_timeout_secs: u64,
    /// Bound on draining in-flight requests at shutdown.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RateLimitConfig {
    pub requests: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProductsConfig {
    pub listen: SocketAddr,
    pub url: Option<String>,
    pub mysql_url: Option<String>,
    /// How often the outbox relay looks for unsent events when not woken.
    pub relay_interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CartsConfig {
    pub listen: SocketAddr,
    pub url: Option<String>,
    pub postgres_url: Option<String>,
    pub product_cache_ttl_secs: u64,
    pub consumer_group: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct KafkaConfig {
    pub brokers: Option<String>,
    /// The product events topic (tests give each run its own).
    pub topic: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig { brokers: None, topic: "product-events".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RedisConfig {
    pub url: Option<String>,
    pub namespace: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DemoConfig {
    /// Load the catalogue in `fixtures/` into an empty product store at start-up.
    pub seed_catalogue: bool,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: addr(3000),
            rate_limit: RateLimitConfig::default(),
            trusted_proxies: Vec::new(),
            auth_cache_ttl_secs: 30,
            upstream_timeout_secs: 10,
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { requests: 100, window_secs: 60 }
    }
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig {
            listen: addr(3001),
            url: None,
            jwt_secret: Secret::new(DEMO_JWT_SECRET),
            token_ttl_secs: 3600,
            admin_email: DEMO_ADMIN_EMAIL.into(),
            admin_password: Secret::new(DEMO_ADMIN_PASSWORD),
            admin_name: "Agora Admin".into(),
            mongo_url: None,
        }
    }
}

impl Default for ProductsConfig {
    fn default() -> Self {
        ProductsConfig { listen: addr(3002), url: None, mysql_url: None, relay_interval_ms: 500 }
    }
}

impl Default for CartsConfig {
    fn default() -> Self {
        CartsConfig {
            listen: addr(3003),
            url: None,
            postgres_url: None,
            product_cache_ttl_secs: 3600,
            consumer_group: "cart-service-group".into(),
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig { url: None, namespace: "agora".into() }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { seed_catalogue: true }
    }
}

impl Config {
    /// Defaults < `agora.toml` or `$AGORA_CONFIG` < `AGORA_*` variables, validated.
    pub fn load() -> Result<Config, ConfigError> {
        let file = std::env::var_os("AGORA_CONFIG").map(PathBuf::from).unwrap_or_else(|| "agora.toml".into());
        Self::from_figment(Self::figment(file))
    }

    pub fn figment(file: PathBuf) -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("AGORA_").split("__").ignore(&["config"]))
    }

    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
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

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.users.jwt_secret.expose().len() < 32 {
            return invalid("users.jwt_secret must be at least 32 bytes".into());
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
        let real = self.real_adapters();
        if !real.is_empty() {
            if self.users.jwt_secret.expose() == DEMO_JWT_SECRET {
                return invalid(format!(
                    "users.jwt_secret is the demo default, refused with real adapters configured ({})",
                    real.join(", ")
                ));
            }
            if self.users.admin_password.expose() == DEMO_ADMIN_PASSWORD {
                return invalid(format!(
                    "users.admin_password is the demo default, refused with real adapters configured ({})",
                    real.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// A URL fit for a log or an error message: its password hidden.
    pub fn shown(url: &str) -> String {
        redact_url_password(url)
    }

    /// A copy fit for printing: secrets and URL passwords hidden.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.users.jwt_secret = Secret::new(REDACTED);
        c.users.admin_password = Secret::new(REDACTED);
        for url in [&mut c.users.mongo_url, &mut c.products.mysql_url, &mut c.carts.postgres_url, &mut c.redis.url] {
            if let Some(u) = url.as_mut() {
                *u = redact_url_password(u);
            }
        }
        c
    }

    pub fn users_url(&self) -> String {
        service_url(&self.users.url, self.users.listen)
    }
    pub fn products_url(&self) -> String {
        service_url(&self.products.url, self.products.listen)
    }
    pub fn carts_url(&self) -> String {
        service_url(&self.carts.url, self.carts.listen)
    }
}

impl GatewayConfig {
    pub fn rate_window(&self) -> Duration {
        Duration::from_secs(self.rate_limit.window_secs)
    }
}

/// A server URL that is set and not blank: the real adapter is wanted.
pub fn configured(url: &Option<String>) -> Option<&str> {
    url.as_deref().map(str::trim).filter(|u| !u.is_empty())
}

fn service_url(url: &Option<String>, listen: SocketAddr) -> String {
    url.clone().unwrap_or_else(|| format!("http://{listen}"))
}

const REDACTED: &str = "[redacted]";

/// `scheme://user:pass@host` becomes `scheme://user:[redacted]@host`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, Some(p))).unwrap_or((rest, None));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_string() };
    let user = userinfo.split_once(':').map(|(u, _)| format!("{u}:{REDACTED}")).unwrap_or(userinfo.to_string());
    let path = path.map(|p| format!("/{p}")).unwrap_or_default();
    format!("{scheme}://{user}@{host}{path}")
}

/// A secret value: never shown by `Debug`; `agora config` prints a redacted copy.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A trusted proxy: one address, or a CIDR block such as `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    addr: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_eq(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_eq(u128::from(net), u128::from(ip), self.prefix, 128),
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 peers (`::ffff:1.2.3.4`) compare as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn mask_eq(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix.min(bits));
    (a >> shift) == (b >> shift)
}

impl std::str::FromStr for TrustedProxy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (ip, prefix) = s.split_once('/').map(|(a, p)| (a, Some(p))).unwrap_or((s, None));
        let addr = canonical(ip.parse::<IpAddr>().map_err(|_| format!("'{s}' is not an IP address or CIDR block"))?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("'{s}' has a bad prefix"))?,
        };
        Ok(TrustedProxy { addr, prefix })
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max { write!(f, "{}", self.addr) } else { write!(f, "{}/{}", self.addr, self.prefix) }
    }
}

impl Serialize for TrustedProxy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Accepts a list (`["10.0.0.1"]`, or `[10.0.0.1]` from an environment variable)
/// or one comma-separated string (`10.0.0.1, 10.0.0.2`).
fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TrustedProxy>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        One(String),
    }
    let items = match Raw::deserialize(d)? {
        Raw::List(items) => items,
        Raw::One(s) => s.split(',').map(str::to_string).collect(),
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's own signature
mod tests {
    use super::*;
    use figment::Jail;

    fn load() -> Result<Config, ConfigError> {
        Config::from_figment(Config::figment("agora.toml".into()))
    }

    #[test]
    fn defaults_are_the_demo() {
        Jail::expect_with(|_jail| {
            let c = load().unwrap();
            assert_eq!(c.gateway.listen, addr(3000));
            assert_eq!(c.gateway.rate_limit.requests, 100);
            assert_eq!(c.gateway.auth_cache_ttl_secs, 30);
            assert_eq!(c.users_url(), "http://127.0.0.1:3001");
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
            assert_eq!(c.gateway.listen, addr(4000));
            assert_eq!(c.gateway.rate_limit.requests, 7);
            assert_eq!(c.users.admin_email, "boss@example.com");
            assert_eq!(c.gateway.trusted_proxies.len(), 2);
            assert!(c.gateway.trusted_proxies[1].contains("10.2.3.4".parse().unwrap()));
            assert!(!c.gateway.trusted_proxies[1].contains("11.2.3.4".parse().unwrap()));
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_from_a_comma_separated_string() {
        Jail::expect_with(|jail| {
            jail.set_env("AGORA_GATEWAY__TRUSTED_PROXIES", "127.0.0.1,::1");
            let c = load().unwrap();
            assert_eq!(c.gateway.trusted_proxies.len(), 2);
            assert!(c.gateway.trusted_proxies[1].contains("::1".parse().unwrap()));
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
    fn redaction_hides_secrets_and_url_passwords() {
        let mut c = Config::default();
        c.carts.postgres_url = Some("postgres://agora:hunter2@127.0.0.1/agora".into());
        let text = toml::to_string(&c.redacted()).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(!text.contains(DEMO_JWT_SECRET));
        assert!(text.contains("postgres://agora:[redacted]@127.0.0.1/agora"));
        assert_eq!(format!("{:?}", c.users.jwt_secret), "[redacted]");
    }
}
