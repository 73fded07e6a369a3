//! `gateway.trusted_proxies`: the peers whose `X-Forwarded-For` is believed, as
//! `ipnet` blocks. A bare address is a block of one; IPv4-mapped IPv6
//! addresses compare as IPv4.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A list of trusted blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// IPv4-mapped IPv6 peers (`::ffff:1.2.3.4`) compare as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn parse(s: &str) -> Result<IpNet, String> {
    let bad = || format!("'{s}' is not an IP address or CIDR block");
    match s.split_once('/') {
        Some(_) => s.parse::<IpNet>().map(|net| net.trunc()).map_err(|_| bad()),
        None => s.parse::<IpAddr>().map(|ip| IpNet::from(canonical(ip))).map_err(|_| bad()),
    }
}

impl std::str::FromStr for TrustedProxies {
    type Err = String;
    /// One comma-separated string: `10.0.0.1, 10.0.0.0/8`.
    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(parse).collect::<Result<_, _>>().map(TrustedProxies)
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// Accepts a list (`["10.0.0.1"]`, or `[10.0.0.1]` from an environment variable)
/// or one comma-separated string (`10.0.0.1, 10.0.0.2`).
impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<String>),
            One(String),
        }
        let joined = match Raw::deserialize(d)? {
            Raw::List(items) => items.join(","),
            Raw::One(s) => s,
        };
        joined.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_addresses_and_mapped_v6() {
        let t: TrustedProxies = "10.0.0.0/8, 192.168.1.7, ::1".parse().unwrap();
        assert_eq!(t.len(), 3);
        assert!(t.contains("10.2.3.4".parse().unwrap()));
        assert!(!t.contains("11.2.3.4".parse().unwrap()));
        assert!(t.contains("::ffff:192.168.1.7".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("nope".parse::<TrustedProxies>().is_err());
    }
}
