//! The client's address for per-IP limits: the TCP peer, or — when the peer is a trusted proxy
//! (`edge.trusted_proxies`, e.g. the load balancer's subnets) — the address it reports in
//! `X-Forwarded-For`. The header is read from the right, skipping trusted proxies, so a client
//! cannot choose its address by sending the header itself: only what a trusted proxy appended
//! counts.

use std::net::IpAddr;

use ipnet::IpNet;

/// The address a connection counts as.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for item in forwarded_for.unwrap_or_default().rsplit(',') {
        match item.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    break;
                }
            }
            // Not an address (garbage, or a port appended): stop at the last good one.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_trusted_proxies_may_name_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/16".parse().unwrap()];
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // A trusted proxy: the rightmost untrusted address it reports.
        assert_eq!(
            client_ip(ip("10.0.1.5"), Some("6.6.6.6, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.0.1.5"), Some("198.51.100.7, 10.0.2.2"), &trusted),
            ip("198.51.100.7")
        );
        // No header, or nothing usable: the proxy itself.
        assert_eq!(client_ip(ip("10.0.1.5"), None, &trusted), ip("10.0.1.5"));
        assert_eq!(
            client_ip(ip("10.0.1.5"), Some("junk"), &trusted),
            ip("10.0.1.5")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.0.1.5"), Some("1.2.3.4"), &trusted),
            ip("1.2.3.4")
        );
    }
}
