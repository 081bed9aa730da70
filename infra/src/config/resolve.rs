//! From a [`RawConfig`] to the typed configurations, with defaults, collecting every problem.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use herald_edge::{HubAddress, HubTrust, LinkConfig, OutboxLimits, SocketLimits};
use herald_hub::HubConfig;
use herald_hub::api::ApiSettings;
use herald_hub::history::HistoryLimits;
use herald_hub::link::{HubTls, LinkSettings};
use herald_hub::registry::{Intervals, Lifetimes, RegistrySettings};
use herald_shared::app::{App, AppSettings, AppTable};
use herald_shared::ids::{AppId, AppKey, EdgeId, HubId};
use herald_shared::limits;
use herald_shared::secret::Secret;
use rustls::pki_types::CertificateDer;

use super::keys;
use super::raw::{RawApp, RawConfig, Setting};
use super::{ConfigError, ConfigErrors};
use crate::commands::sign::percent_encode;
use crate::config::raw::Origin;
use crate::tls;

/// Collects problems while values are resolved. Invalid values resolve to their default (or an
/// empty value) so resolution can go on and report everything; [`Resolver::finish`] then fails.
#[derive(Debug, Default)]
pub struct Resolver {
    errors: Vec<ConfigError>,
}

impl Resolver {
    /// Records a problem with a key.
    pub fn fail(&mut self, key: &str, setting: Option<&Setting>, problem: impl Into<String>) {
        self.errors.push(ConfigError::Value {
            key: key.to_string(),
            origin: setting.map(|s| s.origin.clone()),
            problem: problem.into(),
        });
    }

    /// The parsed value of a setting, or `default` when it is absent (or invalid, recorded).
    pub fn or<T>(
        &mut self,
        key: &str,
        setting: &Option<Setting>,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match setting {
            Some(setting) => self.parse(key, setting, parse).unwrap_or(default),
            None => default,
        }
    }

    /// The parsed value of a required setting; records a problem when it is absent.
    pub fn required<T>(
        &mut self,
        key: &str,
        setting: &Option<Setting>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match setting {
            Some(setting) => self.parse(key, setting, parse),
            None => {
                self.fail(key, None, missing(key));
                None
            }
        }
    }

    /// The parsed value of a given setting, or `None` with the problem recorded.
    fn parse<T>(
        &mut self,
        key: &str,
        setting: &Setting,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(setting.text.trim())
            .map_err(|problem| self.fail(key, Some(setting), problem))
            .ok()
    }

    /// The value if nothing failed, every problem otherwise.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

fn missing(key: &str) -> String {
    let env = keys::key(key).map_or_else(String::new, |k| format!(", {}", k.env_name()));
    format!("is required (set it in the config file{env}, or with its flag)")
}

/// A socket address.
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a socket address like 0.0.0.0:8080"))
}

/// A whole number above zero.
pub fn positive<T: FromStr + PartialOrd + Default>(text: &str) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(value) if value > T::default() => Ok(value),
        _ => Err(format!("{text:?} is not a whole number above 0")),
    }
}

/// A number of seconds above zero.
pub fn seconds(text: &str) -> Result<Duration, String> {
    positive::<u64>(text).map(Duration::from_secs)
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`).
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

/// A comma-separated list of hub addresses, each `host:port` or `zone=host:port`.
pub fn hub_addresses(text: &str) -> Result<Vec<HubAddress>, String> {
    let items: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() {
        return Err("no address given".into());
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
                return Err(format!("{item:?} is not host:port or zone=host:port"));
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
pub fn pins(text: &str) -> Result<Vec<[u8; 32]>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let hex_digits: String = item
                .trim_start_matches("sha256:")
                .chars()
                .filter(|c| *c != ':')
                .collect();
            let mut pin = [0u8; 32];
            hex::decode_to_slice(&hex_digits, &mut pin)
                .map_err(|_| format!("{item:?} is not a SHA-256 fingerprint (64 hex digits)"))?;
            Ok(pin)
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|pins| {
            if pins.is_empty() {
                Err("no fingerprint given".to_string())
            } else {
                Ok(pins)
            }
        })
}

fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("is empty".into())
    } else {
        Ok(text.to_string())
    }
}

/// A count above zero.
pub fn nonzero(text: &str) -> Result<NonZeroUsize, String> {
    positive::<usize>(text).map(|n| NonZeroUsize::new(n).expect("positive counts are not zero"))
}

fn cpu_count() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// The cluster key (required, at least 16 characters).
pub fn cluster_key(raw: &RawConfig, r: &mut Resolver) -> Secret {
    let key = r.required("cluster.key", &raw.cluster.key, |text| {
        if text.len() < 16 {
            Err(format!(
                "is {} characters long; use at least 16 (e.g. `openssl rand -hex 32`)",
                text.len()
            ))
        } else {
            Ok(Secret::new(text))
        }
    });
    key.unwrap_or_else(|| Secret::new(""))
}

fn app(raw: &RawApp, prefix: &str, r: &mut Resolver) -> App {
    let key = |name: &str| format!("{prefix}.{name}");
    let d = AppSettings::default();
    let id = r
        .required(&key("id"), &raw.id, non_empty)
        .unwrap_or_default();
    let app_key = r
        .required(&key("key"), &raw.key, non_empty)
        .unwrap_or_default();
    let secret = r
        .required(&key("secret"), &raw.secret, non_empty)
        .unwrap_or_default();
    let settings = AppSettings {
        enabled: r.or(&key("enabled"), &raw.enabled, d.enabled, boolean),
        max_event_data_bytes: r.or(
            &key("max_event_data_bytes"),
            &raw.max_event_data_bytes,
            d.max_event_data_bytes,
            positive,
        ),
        max_channels_per_trigger: r.or(
            &key("max_channels_per_trigger"),
            &raw.max_channels_per_trigger,
            d.max_channels_per_trigger,
            positive,
        ),
        max_batch_events: r.or(
            &key("max_batch_events"),
            &raw.max_batch_events,
            d.max_batch_events,
            positive,
        ),
        client_events: r.or(
            &key("client_events"),
            &raw.client_events,
            d.client_events,
            boolean,
        ),
        client_events_per_second: r.or(
            &key("client_events_per_second"),
            &raw.client_events_per_second,
            d.client_events_per_second,
            positive,
        ),
        user_authentication_timeout_secs: r.or(
            &key("user_authentication_timeout_secs"),
            &raw.user_authentication_timeout_secs,
            d.user_authentication_timeout_secs,
            |text| positive(text).map(Some),
        ),
        subscription_count_events: r.or(
            &key("subscription_count_events"),
            &raw.subscription_count_events,
            d.subscription_count_events,
            boolean,
        ),
        watchlist_events: r.or(
            &key("watchlist_events"),
            &raw.watchlist_events,
            d.watchlist_events,
            boolean,
        ),
        max_presence_members: r.or(
            &key("max_presence_members"),
            &raw.max_presence_members,
            d.max_presence_members,
            positive,
        ),
        max_user_info_bytes: r.or(
            &key("max_user_info_bytes"),
            &raw.max_user_info_bytes,
            d.max_user_info_bytes,
            positive,
        ),
    };
    App {
        id: AppId::new(id),
        key: AppKey::new(app_key),
        secret: Secret::new(secret),
        settings,
    }
}

/// The apps: `[app]` (also `REVERB_APP_*` and `--app-*`) followed by `[[apps]]`; `fallback`
/// when none is configured (for `herald dev`), an error otherwise.
pub fn apps(raw: &RawConfig, r: &mut Resolver, fallback: Option<App>) -> Arc<AppTable> {
    let mut list = Vec::new();
    if !raw.app.is_empty() {
        list.push(app(&raw.app, "app", r));
    }
    for (index, entry) in raw.apps.iter().enumerate() {
        list.push(app(entry, &format!("apps[{index}]"), r));
    }
    if list.is_empty() {
        match fallback {
            Some(app) => list.push(app),
            None => r.fail(
                "app",
                None,
                "no app configured (set app.id, app.key and app.secret — or REVERB_APP_ID, REVERB_APP_KEY, REVERB_APP_SECRET — or [[apps]] entries)",
            ),
        }
    }
    match AppTable::new(list) {
        Ok(table) => Arc::new(table),
        Err(error) => {
            r.fail("apps", None, error.to_string());
            Arc::new(AppTable::default())
        }
    }
}

/// A hub's addresses and configuration.
pub struct HubPlan {
    /// HTTP API address.
    pub http_listen: SocketAddr,
    /// QUIC link address.
    pub link_listen: SocketAddr,
    /// The configuration (its `cluster` is filled from `redis` at start).
    pub config: HubConfig,
    /// The region to join, if any.
    pub redis: Option<RedisPlan>,
}

fn pem_file(key: &str, setting: &Option<Setting>, r: &mut Resolver) -> Option<Vec<u8>> {
    r.required(key, setting, |path| {
        std::fs::read(Path::new(path)).map_err(|e| format!("cannot read {path:?}: {e}"))
    })
}

fn hub_tls(raw: &RawConfig, r: &mut Resolver) -> HubTls {
    match (&raw.hub.tls_cert, &raw.hub.tls_key) {
        (None, None) => tls::self_signed(),
        _ => {
            let cert = pem_file("hub.tls_cert", &raw.hub.tls_cert, r);
            let key = pem_file("hub.tls_key", &raw.hub.tls_key, r);
            let (Some(cert), Some(key)) = (cert, key) else {
                return tls::self_signed();
            };
            match tls::from_pem(&cert, &key) {
                Ok(loaded) => loaded,
                Err(problem) => {
                    r.fail("hub.tls_cert", raw.hub.tls_cert.as_ref(), problem);
                    tls::self_signed()
                }
            }
        }
    }
}

/// The hub's configuration.
pub fn hub(
    raw: &RawConfig,
    r: &mut Resolver,
    hub_id: HubId,
    apps: Arc<AppTable>,
    cluster_key: Secret,
) -> HubPlan {
    let h = &raw.hub;
    let default_addr = |text: &str| text.parse().expect("a literal socket address");
    let idle = r.or(
        "hub.link_idle_timeout_secs",
        &h.link_idle_timeout_secs,
        // Bounds how fast a dead edge's presence members are removed (keep-alives every third).
        Duration::from_secs(3),
        seconds,
    );
    HubPlan {
        http_listen: r.or(
            "hub.http_listen",
            &h.http_listen,
            default_addr("0.0.0.0:8081"),
            socket_addr,
        ),
        link_listen: r.or(
            "hub.link_listen",
            &h.link_listen,
            default_addr("0.0.0.0:4433"),
            socket_addr,
        ),
        config: HubConfig {
            hub_id,
            apps,
            cluster_key,
            tls: hub_tls(raw, r),
            link: LinkSettings {
                channel_streams: r.or("hub.channel_streams", &h.channel_streams, 4, positive),
                stream_queue: r.or("hub.stream_queue", &h.stream_queue, 8192, positive),
                idle_timeout: idle,
                hello_timeout: Duration::from_secs(5),
            },
            api: ApiSettings {
                body_limit_bytes: r.or(
                    "hub.body_limit_bytes",
                    &h.body_limit_bytes,
                    256 * 1024,
                    positive,
                ),
                request_timeout: r.or(
                    "hub.request_timeout_secs",
                    &h.request_timeout_secs,
                    Duration::from_secs(10),
                    seconds,
                ),
            },
            registry: RegistrySettings {
                shards: r
                    .or(
                        "hub.registry_shards",
                        &h.registry_shards,
                        cpu_count(),
                        nonzero,
                    )
                    .get(),
                lifetimes: Lifetimes {
                    history: HistoryLimits {
                        max_events: r.or(
                            "hub.history_max_events",
                            &h.history_max_events,
                            2000,
                            positive,
                        ),
                        max_age: r.or(
                            "hub.history_max_age_secs",
                            &h.history_max_age_secs,
                            Duration::from_secs(60),
                            seconds,
                        ),
                    },
                    cache_ttl: r.or(
                        "hub.cache_ttl_secs",
                        &h.cache_ttl_secs,
                        Duration::from_secs(30 * 60),
                        seconds,
                    ),
                },
                intervals: Intervals {
                    subscription_count: r.or(
                        "hub.subscription_count_interval_ms",
                        &h.subscription_count_interval_ms,
                        Duration::from_millis(1000),
                        |text| positive::<u64>(text).map(Duration::from_millis),
                    ),
                    purge: Duration::from_secs(5),
                },
            },
            cluster: None,
        },
        redis: redis(raw, r),
    }
}

/// Where a hub finds Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisSource {
    /// A `redis://` or `rediss://` URL.
    Url(String),
    /// The primary endpoint of an ElastiCache replication group, found at start.
    ElastiCache {
        /// The replication group id.
        group: String,
        /// ACL user.
        username: Option<String>,
        /// Auth token.
        password: Option<String>,
        /// Database index.
        db: u32,
    },
}

/// How a hub joins its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisPlan {
    /// Where Redis is.
    pub source: RedisSource,
    /// The key prefix.
    pub prefix: String,
    /// How long a hub is alive after a heartbeat.
    pub hub_ttl: Duration,
    /// How long to stay subscribed after the last interest.
    pub linger: Duration,
}

/// A Redis URL from its parts; user and password are percent-encoded.
pub fn redis_url(
    tls: bool,
    host: &str,
    port: u16,
    username: Option<&str>,
    password: Option<&str>,
    db: u32,
) -> String {
    let scheme = if tls { "rediss" } else { "redis" };
    let credentials = match (username, password) {
        (None, None) => String::new(),
        (user, password) => format!(
            "{}:{}@",
            percent_encode(user.unwrap_or_default()),
            percent_encode(password.unwrap_or_default())
        ),
    };
    format!("{scheme}://{credentials}{host}:{port}/{db}")
}

fn redis_url_setting(text: &str) -> Result<String, String> {
    redis::Client::open(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("{text:?} is not a redis:// or rediss:// URL: {e}"))
}

/// Whether a setting was given for Herald (a file, a flag, a `HERALD_` variable) rather than
/// found among Laravel's `REDIS_*` connection variables, which alone never make a region.
fn set_for_herald(setting: &Option<Setting>) -> bool {
    setting
        .as_ref()
        .is_some_and(|s| !matches!(&s.origin, Origin::Env(name) if name.starts_with("REDIS_")))
}

/// The hub's region, if it joins one: `redis.enabled` (also `REVERB_SCALING_ENABLED`), which
/// defaults to true when a URL, host or replication group is configured for Herald.
pub fn redis(raw: &RawConfig, r: &mut Resolver) -> Option<RedisPlan> {
    let c = &raw.redis;
    let default_enabled = set_for_herald(&c.url)
        || set_for_herald(&c.host)
        || set_for_herald(&c.elasticache_replication_group);
    if !r.or("redis.enabled", &c.enabled, default_enabled, boolean) {
        return None;
    }
    let username = r.or("redis.username", &c.username, None, |t| {
        non_empty(t).map(Some)
    });
    let password = r.or("redis.password", &c.password, None, |t| {
        Ok(Some(t.to_string()))
    });
    let db = r.or("redis.db", &c.db, 0u32, |t| {
        t.parse()
            .map_err(|_| format!("{t:?} is not a database index"))
    });
    let source = if let Some(group) = &c.elasticache_replication_group {
        RedisSource::ElastiCache {
            group: group.text.trim().to_string(),
            username,
            password,
            db,
        }
    } else if c.url.is_some() {
        RedisSource::Url(r.or("redis.url", &c.url, String::new(), redis_url_setting))
    } else {
        let host = r.or("redis.host", &c.host, "127.0.0.1".to_string(), non_empty);
        let port = r.or("redis.port", &c.port, 6379u16, positive);
        let tls = r.or("redis.tls", &c.tls, false, boolean);
        RedisSource::Url(redis_url(
            tls,
            &host,
            port,
            username.as_deref(),
            password.as_deref(),
            db,
        ))
    };
    let prefix = r.or("redis.prefix", &c.prefix, "herald".to_string(), |t| {
        if t.is_empty() || t.contains(char::is_whitespace) {
            Err(format!("{t:?} is not a usable key prefix"))
        } else {
            Ok(t.to_string())
        }
    });
    Some(RedisPlan {
        source,
        prefix,
        hub_ttl: r.or(
            "redis.hub_ttl_secs",
            &c.hub_ttl_secs,
            Duration::from_secs(10),
            seconds,
        ),
        linger: r.or(
            "redis.linger_secs",
            &c.linger_secs,
            Duration::from_secs(5),
            seconds,
        ),
    })
}

/// An edge's addresses and everything but its link.
pub struct EdgePlan {
    /// WebSocket address.
    pub websocket: SocketAddr,
    /// Admin address.
    pub admin: SocketAddr,
    /// Socket limits.
    pub sockets: SocketLimits,
    /// Index shards.
    pub index_shards: NonZeroUsize,
    /// Drain timeout.
    pub drain_timeout: Duration,
    /// Link idle timeout.
    pub link_idle_timeout: Duration,
}

impl EdgePlan {
    /// The edge configuration with its link.
    pub fn config(&self, edge_id: EdgeId, link: LinkConfig) -> herald_edge::EdgeConfig {
        herald_edge::EdgeConfig {
            edge_id,
            link,
            sockets: self.sockets,
            index_shards: self.index_shards,
            drain_timeout: self.drain_timeout,
        }
    }
}

/// The edge's own settings.
pub fn edge(raw: &RawConfig, r: &mut Resolver) -> EdgePlan {
    let e = &raw.edge;
    let default_addr = |text: &str| text.parse().expect("a literal socket address");
    let pong_timeout = r.or(
        "edge.pong_timeout_secs",
        &e.pong_timeout_secs,
        Duration::from_secs(limits::DEFAULT_PONG_TIMEOUT_SECS),
        seconds,
    );
    let drain_timeout = r.or(
        "edge.drain_timeout_secs",
        &e.drain_timeout_secs,
        Duration::from_secs(25),
        seconds,
    );
    EdgePlan {
        websocket: r.or(
            "edge.listen",
            &e.listen,
            default_addr("0.0.0.0:8080"),
            socket_addr,
        ),
        admin: r.or(
            "edge.admin_listen",
            &e.admin_listen,
            default_addr("0.0.0.0:9080"),
            socket_addr,
        ),
        sockets: SocketLimits {
            activity_timeout: r.or(
                "edge.activity_timeout_secs",
                &e.activity_timeout_secs,
                Duration::from_secs(limits::DEFAULT_ACTIVITY_TIMEOUT_SECS),
                seconds,
            ),
            pong_timeout,
            handshake_timeout: Duration::from_secs(10),
            max_message_bytes: r.or(
                "edge.max_message_bytes",
                &e.max_message_bytes,
                limits::DEFAULT_MAX_CLIENT_MESSAGE_BYTES,
                positive,
            ),
            read_buffer_bytes: r.or(
                "edge.read_buffer_bytes",
                &e.read_buffer_bytes,
                2048,
                positive,
            ),
            outbox: OutboxLimits {
                frames: r.or("edge.outbox_frames", &e.outbox_frames, 1024, positive),
                bytes: r.or("edge.outbox_bytes", &e.outbox_bytes, 1024 * 1024, positive),
            },
            write_timeout: pong_timeout,
            // Leave the last part of the drain timeout for the closing handshakes.
            drain_window: drain_timeout.mul_f64(0.8),
        },
        index_shards: r.or("edge.index_shards", &e.index_shards, cpu_count(), nonzero),
        drain_timeout,
        link_idle_timeout: r.or(
            "edge.link_idle_timeout_secs",
            &e.link_idle_timeout_secs,
            // Bounds how fast the edge notices a dead hub and fails over.
            Duration::from_secs(3),
            seconds,
        ),
    }
}

/// How the edge reaches and trusts its hubs.
pub fn edge_link(
    raw: &RawConfig,
    r: &mut Resolver,
    plan: &EdgePlan,
    cluster_key: Secret,
) -> LinkConfig {
    let e = &raw.edge;
    let hubs = r
        .required("edge.hubs", &e.hubs, hub_addresses)
        .unwrap_or_default();
    let trust = match (&e.hub_ca, &e.hub_cert_sha256) {
        (Some(_), Some(_)) => {
            r.fail(
                "edge.hub_ca",
                e.hub_ca.as_ref(),
                "set either edge.hub_ca or edge.hub_cert_sha256, not both",
            );
            HubTrust::Pinned(Vec::new())
        }
        (None, None) => {
            r.fail(
                "edge.hub_ca",
                None,
                "the edge must trust its hubs: set edge.hub_ca (a CA PEM file) or edge.hub_cert_sha256 (certificate pins)",
            );
            HubTrust::Pinned(Vec::new())
        }
        (None, Some(_)) => {
            HubTrust::Pinned(r.or("edge.hub_cert_sha256", &e.hub_cert_sha256, Vec::new(), pins))
        }
        (Some(ca), None) => {
            let pem = pem_file("edge.hub_ca", &e.hub_ca, r).unwrap_or_default();
            let cas: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
                .filter_map(Result::ok)
                .collect();
            if cas.is_empty() {
                r.fail("edge.hub_ca", Some(ca), "holds no PEM certificate");
            }
            HubTrust::CertificateAuthorities(cas)
        }
    };
    LinkConfig {
        hubs,
        zone: r.or("edge.zone", &e.zone, None, |text| non_empty(text).map(Some)),
        server_name: r.or(
            "edge.hub_server_name",
            &e.hub_server_name,
            tls::HUB_SERVER_NAME.to_string(),
            non_empty,
        ),
        trust,
        cluster_key,
        idle_timeout: plan.link_idle_timeout,
        max_backoff: Duration::from_secs(3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::Origin;
    use crate::config::{Override, load};
    use std::collections::HashMap;

    fn raw(toml_text: &str, env: &[(&str, &str)], flags: &[Override]) -> RawConfig {
        let dir = std::env::temp_dir().join(format!("herald-config-{}", fastrand::u64(..)));
        std::fs::write(&dir, toml_text).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let raw = load(Some(&dir), &env, flags).unwrap();
        let _ = std::fs::remove_file(&dir);
        raw
    }

    #[test]
    fn every_problem_is_reported_with_its_key_and_origin() {
        let raw = raw(
            "[edge]\nlisten = \"nope\"\nhubs = \"hub-without-port\"\n",
            &[("HERALD_EDGE__DRAIN_TIMEOUT_SECS", "soon")],
            &[],
        );
        let mut r = Resolver::default();
        let plan = edge(&raw, &mut r);
        edge_link(&raw, &mut r, &plan, Secret::new("k"));
        let errors = r.finish(()).unwrap_err().0;
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(text.contains(&"edge.listen (in the config file): \"nope\" is not a socket address like 0.0.0.0:8080".to_string()), "{text:#?}");
        assert!(
            text.iter()
                .any(|t| t
                    .starts_with("edge.drain_timeout_secs (from HERALD_EDGE__DRAIN_TIMEOUT_SECS)")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("edge.hubs (in the config file): \"hub-without-port\"")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("edge.hub_ca: the edge must trust its hubs")),
            "{text:#?}"
        );
    }

    #[test]
    fn flags_beat_env_beats_file() {
        let flags = [Override {
            path: "app.id",
            value: "from-flag".into(),
            flag: "--app-id",
        }];
        let raw = raw(
            "[app]\nid = \"from-file\"\nkey = \"k\"\nsecret = \"s\"\n",
            &[("REVERB_APP_ID", "from-env"), ("REVERB_APP_KEY", "env-key")],
            &flags,
        );
        assert_eq!(
            raw.app.id.as_ref().unwrap().origin,
            Origin::Flag("--app-id".into())
        );
        let mut r = Resolver::default();
        let table = apps(&raw, &mut r, None);
        r.finish(()).unwrap();
        let app = table.apps().next().unwrap();
        assert_eq!(app.id.as_str(), "from-flag");
        assert_eq!(app.key.as_str(), "env-key");
    }

    #[test]
    fn a_short_cluster_key_and_missing_apps_are_errors() {
        let raw = raw("[cluster]\nkey = \"short\"\n", &[], &[]);
        let mut r = Resolver::default();
        cluster_key(&raw, &mut r);
        apps(&raw, &mut r, None);
        let errors = r.finish(()).unwrap_err().0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0]
                .to_string()
                .starts_with("cluster.key (in the config file): is 5 characters long")
        );
        assert!(errors[1].to_string().starts_with("app: no app configured"));
    }

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
}
