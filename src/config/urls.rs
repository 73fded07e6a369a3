//! What the configuration does with URLs: whether a server URL is set (the
//! real adapter is wanted), how a service is reached, and a URL fit for a log.

use std::net::SocketAddr;

use super::secret::REDACTED;

/// A server URL that is set and not blank: the real adapter is wanted.
pub fn configured(url: &Option<String>) -> Option<&str> {
    url.as_deref().map(str::trim).filter(|u| !u.is_empty())
}

/// The configured URL of a service, else `http://` + its listen address.
pub fn service_url(url: &Option<String>, listen: SocketAddr) -> String {
    configured(url).map(str::to_string).unwrap_or_else(|| format!("http://{listen}"))
}

/// A URL fit for a log or an error message: `scheme://user:pass@host` becomes
/// `scheme://user:[redacted]@host`.
pub fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, Some(p))).unwrap_or((rest, None));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_string() };
    let user = userinfo.split_once(':').map(|(u, _)| format!("{u}:{REDACTED}")).unwrap_or(userinfo.to_string());
    let path = path.map(|p| format!("/{p}")).unwrap_or_default();
    format!("{scheme}://{user}@{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(shown("mysql://a:b@h:1/db"), "mysql://a:[redacted]@h:1/db");
        assert_eq!(shown("redis://:pw@h:1"), "redis://:[redacted]@h:1");
        assert_eq!(shown("kafka:9092"), "kafka:9092");
        assert_eq!(service_url(&Some(" ".into()), "127.0.0.1:1".parse().unwrap()), "http://127.0.0.1:1");
    }
}
