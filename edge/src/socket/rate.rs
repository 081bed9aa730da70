//! New connections per client address per second (governor's GCRA): what one address may open
//! in a burst and sustain. Over it, the upgrade is answered `429 Too Many Requests` with
//! `Retry-After`, before any WebSocket state exists. The client address is the peer's, or the
//! one a trusted proxy reports ([`super::client_ip`]).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::client_ip::client_ip;

/// The limit's settings.
#[derive(Debug, Clone)]
pub struct ConnectionRateLimit {
    /// New connections per second one address may sustain.
    pub per_second: NonZeroU32,
    /// How many one address may open at once.
    pub burst: NonZeroU32,
    /// Proxies whose `X-Forwarded-For` names the client (the load balancer's subnets).
    pub trusted_proxies: Vec<IpNet>,
}

/// The limiter of one edge.
pub struct ConnectionRate {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trusted_proxies: Vec<IpNet>,
}

impl std::fmt::Debug for ConnectionRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRate")
            .field("addresses", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

impl ConnectionRate {
    /// A limiter with these settings.
    pub fn new(limit: &ConnectionRateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            trusted_proxies: limit.trusted_proxies.clone(),
        }
    }

    /// Takes one connection from the client's allowance; `Err` says when to retry.
    pub fn check(&self, peer: IpAddr, forwarded_for: Option<&str>) -> Result<(), Duration> {
        let client = client_ip(peer, forwarded_for, &self.trusted_proxies);
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets addresses whose allowance is full again, so the table holds only recent ones.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_per_address() {
        let rate = ConnectionRate::new(&ConnectionRateLimit {
            per_second: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(3).unwrap(),
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        });
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        for _ in 0..3 {
            assert!(rate.check(one, None).is_ok());
        }
        let wait = rate.check(one, None).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another client behind the trusted proxy has its own allowance…
        assert!(rate.check(proxy, Some("198.51.100.1")).is_ok());
        // …and the proxy cannot be used to spend the first client's: it counts as that client.
        assert!(rate.check(proxy, Some("192.0.2.1")).is_err());
    }
}
