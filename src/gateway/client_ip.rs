//! Who is asking: the socket peer, unless the peer is a trusted proxy, in which
//! case the nearest untrusted address in `X-Forwarded-For`.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::{TrustedProxies, canonical};

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.contains(ip);
    if !is_trusted(peer) {
        return peer;
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok().map(canonical))
        .collect();
    // Walk from the nearest hop; the first address we do not trust is the client.
    chain.iter().rev().copied().find(|ip| !is_trusted(*ip)).or_else(|| chain.first().copied()).unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_peers() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let peer: IpAddr = "10.1.1.1".parse().unwrap();
        let stranger: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(client_ip(stranger, &headers("1.2.3.4"), &trusted), stranger);
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &trusted), "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(
            client_ip(peer, &headers("6.6.6.6, 1.2.3.4, 10.0.0.2"), &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, &headers("garbage"), &trusted), peer);
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }
}
