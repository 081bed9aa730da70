//! Value parsers: from the text of a setting (file, environment or flag) to a typed value, or an
//! [`Invalid`] saying what is wrong with it. Every key names one of these in its declaration
//! ([`super::keys`]); its default is parsed by the same function.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use herald_edge::HubAddress;
use herald_shared::secret::Secret;

/// What is wrong with a value, in words for the operator (`"abc" is not a socket address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parser's result.
pub type Parsed<T> = Result<T, Invalid>;

fn invalid<T>(message: impl Into<String>) -> Parsed<T> {
    Err(Invalid(message.into()))
}

/// A socket address.
pub fn socket_addr(text: &str) -> Parsed<SocketAddr> {
    text.parse().or_else(|_| {
        invalid(format!(
            "{text:?} is not a socket address like 0.0.0.0:8080"
        ))
    })
}

/// A whole number above zero.
pub fn positive<T: FromStr + PartialOrd + Default>(text: &str) -> Parsed<T> {
    match text.parse::<T>() {
        Ok(value) if value > T::default() => Ok(value),
        _ => invalid(format!("{text:?} is not a whole number above 0")),
    }
}

/// A whole number, zero included.
pub fn whole<T: FromStr>(text: &str) -> Parsed<T> {
    text.parse()
        .or_else(|_| invalid(format!("{text:?} is not a whole number")))
}

/// A count above zero.
pub fn nonzero(text: &str) -> Parsed<NonZeroUsize> {
    positive::<usize>(text).map(|n| NonZeroUsize::new(n).expect("positive counts are not zero"))
}

/// A number of seconds above zero.
pub fn seconds(text: &str) -> Parsed<Duration> {
    positive::<u64>(text).map(Duration::from_secs)
}

/// A number of milliseconds above zero.
pub fn millis(text: &str) -> Parsed<Duration> {
    positive::<u64>(text).map(Duration::from_millis)
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub fn boolean(text: &str) -> Parsed<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => invalid(format!("{text:?} is not true or false")),
    }
}

/// Any text but the empty one.
pub fn non_empty(text: &str) -> Parsed<String> {
    if text.is_empty() {
        invalid("is empty")
    } else {
        Ok(text.to_string())
    }
}

/// A secret: any text but the empty one, never printed.
pub fn secret(text: &str) -> Parsed<Secret> {
    non_empty(text).map(Secret::new)
}

/// Any text, the empty one included (a password may be empty).
pub fn any_secret(text: &str) -> Parsed<Secret> {
    Ok(Secret::new(text))
}

/// A file path (read later, where its content is checked).
pub fn path(text: &str) -> Parsed<std::path::PathBuf> {
    non_empty(text).map(std::path::PathBuf::from)
}

/// A shared secret or token: at least 16 characters.
pub fn token(text: &str) -> Parsed<Secret> {
    if text.len() < 16 {
        invalid(format!(
            "is {} characters long; use at least 16 (e.g. `openssl rand -hex 32`)",
            text.len()
        ))
    } else {
        Ok(Secret::new(text))
    }
}

/// A comma-separated list of hub addresses, each `host:port` or `zone=host:port`.
pub fn hub_addresses(text: &str) -> Parsed<Vec<HubAddress>> {
    let items: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() {
        return invalid("no address given");
    }
    items
        .into_iter()
        .map(|item| {
            let (zone, address) = match item.split_once('=') {
                Some((zone, address)) => (Some(zone.trim().to_string()), address.trim()),
                None => (None, item),
            };
            let port = address
                .rsplit_once(':')
                .map(|(_, port)| port.parse::<u16>());
            if !matches!(port, Some(Ok(port)) if port > 0) {
                return invalid(format!("{item:?} is not host:port or zone=host:port"));
            }
            Ok(HubAddress {
                address: address.to_string(),
                zone,
            })
        })
        .collect()
}

/// A comma-separated list of SHA-256 fingerprints (64 hex digits, colons and a `sha256:` prefix
/// allowed).
pub fn pins(text: &str) -> Parsed<Vec<[u8; 32]>> {
    let pins = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let hex_digits: String = item
                .trim_start_matches("sha256:")
                .chars()
                .filter(|c| *c != ':')
                .collect();
            let mut pin = [0u8; 32];
            hex::decode_to_slice(&hex_digits, &mut pin).or_else(|_| {
                invalid(format!(
                    "{item:?} is not a SHA-256 fingerprint (64 hex digits)"
                ))
            })?;
            Ok(pin)
        })
        .collect::<Parsed<Vec<_>>>()?;
    if pins.is_empty() {
        invalid("no fingerprint given")
    } else {
        Ok(pins)
    }
}

/// Allowed origins: comma-separated host patterns ([`herald_shared::origin`]), lower-cased.
pub fn origins(text: &str) -> Parsed<Vec<String>> {
    let patterns: Vec<String> = text
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect();
    if patterns.is_empty() {
        return invalid("no origin given (* allows every origin)");
    }
    for pattern in &patterns {
        herald_shared::origin::validate(pattern).map_err(|error| Invalid(error.to_string()))?;
    }
    Ok(patterns)
}

/// A rate per second above zero, or `off`.
pub fn rate_or_off(text: &str) -> Parsed<Option<std::num::NonZeroU32>> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    nonzero_u32(text)
        .map(Some)
        .map_err(|_| Invalid(format!("{text:?} is not a whole number above 0, or off")))
}

/// A whole number above zero, as a `NonZeroU32`.
pub fn nonzero_u32(text: &str) -> Parsed<std::num::NonZeroU32> {
    positive::<u32>(text)
        .map(|n| std::num::NonZeroU32::new(n).expect("positive counts are not zero"))
}

/// CIDRs, comma-separated (`10.0.0.0/16, 2001:db8::/32`; a bare address is one host).
pub fn cidrs(text: &str) -> Parsed<Vec<ipnet::IpNet>> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .or_else(|_| invalid(format!("{item:?} is not a CIDR like 10.0.0.0/16")))
        })
        .collect()
}

/// A `redis://` or `rediss://` URL.
pub fn redis_url(text: &str) -> Parsed<Secret> {
    match redis::Client::open(text) {
        Ok(_) => Ok(Secret::new(text)),
        // The URL may hold a password: name only the scheme.
        Err(error) => invalid(format!("is not a redis:// or rediss:// URL: {error}")),
    }
}

/// How Redis runs: `auto` (`None`: asked at start), `standalone` or `cluster`.
pub fn redis_mode(text: &str) -> Parsed<Option<herald_hub::cluster::RedisMode>> {
    use herald_hub::cluster::RedisMode;
    match text.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(None),
        "standalone" => Ok(Some(RedisMode::Standalone)),
        "cluster" => Ok(Some(RedisMode::Cluster)),
        _ => invalid(format!("{text:?} is not auto, standalone or cluster")),
    }
}

/// An app store URL (`postgres://`, `mysql://`); a problem never shows its password.
pub fn store_url(text: &str) -> Parsed<crate::app_store::StoreUrl> {
    crate::app_store::StoreUrl::parse(text).map_err(|error| Invalid(error.to_string()))
}

/// A Redis key prefix: no whitespace, and no `{` or `}` (keys carry their Redis Cluster hash
/// tag after the prefix; a brace in it would put every key in one slot).
pub fn redis_prefix(text: &str) -> Parsed<String> {
    if text.is_empty() || text.contains(char::is_whitespace) {
        invalid(format!("{text:?} is not a usable key prefix"))
    } else if text.contains(['{', '}']) {
        invalid(format!(
            "{text:?} holds a brace; keys carry their hash tag after the prefix, so it may not"
        ))
    } else {
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_parsers() {
        assert_eq!(
            hub_addresses("a:1, eu-1a=b:2")
                .unwrap()
                .into_iter()
                .map(|h| (h.zone, h.address))
                .collect::<Vec<_>>(),
            vec![
                (None, "a:1".to_string()),
                (Some("eu-1a".to_string()), "b:2".to_string())
            ]
        );
        assert!(hub_addresses("a").is_err());
        assert!(hub_addresses("a:0").is_err());
        assert_eq!(positive::<usize>("3"), Ok(3));
        assert!(positive::<usize>("0").is_err());
        assert_eq!(boolean("FALSE"), Ok(false));
        let pin = "ab".repeat(32);
        assert_eq!(pins(&format!("sha256:{pin}")).unwrap(), vec![[0xab; 32]]);
        assert!(pins("abcd").is_err());
    }

    #[test]
    fn redis_modes_are_auto_standalone_or_cluster() {
        use herald_hub::cluster::RedisMode;
        assert_eq!(redis_mode("auto"), Ok(None));
        assert_eq!(redis_mode("Standalone"), Ok(Some(RedisMode::Standalone)));
        assert_eq!(redis_mode("cluster"), Ok(Some(RedisMode::Cluster)));
        assert_eq!(
            redis_mode("sharded"),
            Err(Invalid(
                "\"sharded\" is not auto, standalone or cluster".into()
            ))
        );
    }

    #[test]
    fn redis_prefixes_with_braces_or_spaces_are_refused() {
        assert_eq!(redis_prefix("herald:prod"), Ok("herald:prod".to_string()));
        for bad in ["", "a b", "{herald}", "her}ald"] {
            assert!(redis_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_redis_url_is_refused_without_echoing_it() {
        let Err(Invalid(problem)) = redis_url("redis://:hunter2@[bad") else {
            panic!("a broken URL is refused");
        };
        assert!(!problem.contains("hunter2"), "{problem}");
    }
}
