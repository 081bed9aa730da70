//! From a [`RawConfig`] to the typed configurations, with defaults, collecting every problem.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use herald_edge::socket::ConnectionRateLimit;
use herald_edge::{HubTrust, LinkConfig, OutboxLimits, SocketLimits};
use herald_hub::HubConfig;
use herald_hub::api::ApiSettings;
use herald_hub::apps::Apps;
use herald_hub::history::HistoryLimits;
use herald_hub::http::HttpSettings;
use herald_hub::link::{HubTls, LinkSettings};
use herald_hub::registry::{Intervals, Lifetimes, RegistrySettings};
use herald_shared::admin::AdminAccess;
use herald_shared::app::{App, AppSettings, AppTable};
use herald_shared::ids::{AppId, AppKey, EdgeId, HubId};
use herald_shared::secret::Secret;
use rustls::pki_types::CertificateDer;

use super::key::{Defaulted, Key, Optional, Required};
use super::keys::*;
use super::raw::{Origin, RawConfig, Setting, Settings};
use super::{ConfigError, ConfigErrors};
use crate::app_store::poller::StorePlan;
use crate::tls;
use crate::tls::files::CertFiles;
use herald_shared::auth::api::percent_encode;

/// Collects problems while values are resolved. Invalid values resolve to their default (or an
/// empty value) so resolution can go on and report everything; [`Resolver::finish`] then fails.
#[derive(Debug, Default)]
pub struct Resolver {
    errors: Vec<ConfigError>,
}

impl Resolver {
    /// Records a problem with a key.
    pub fn fail(
        &mut self,
        key: impl Into<String>,
        setting: Option<&Setting>,
        problem: impl Into<String>,
    ) {
        self.errors.push(ConfigError::Value {
            key: key.into(),
            origin: setting.map(|s| s.origin.clone()),
            problem: problem.into(),
        });
    }

    /// The value of a key with a default: the parsed setting, or the default when it is absent
    /// (or invalid, recorded).
    pub fn get<T>(&mut self, s: &Settings, key: &Key<T, Defaulted>) -> T {
        match s.get(&key.meta) {
            Some(setting) => self
                .parse(s, key.parse, &key.meta, setting)
                .unwrap_or_else(|| key.default_value()),
            None => key.default_value(),
        }
    }

    /// The value of an optional key, `None` when absent (or invalid, recorded).
    pub fn optional<T>(&mut self, s: &Settings, key: &Key<T, Optional>) -> Option<T> {
        let setting = s.get(&key.meta)?;
        self.parse(s, key.parse, &key.meta, setting)
    }

    /// The value of a required key; its absence is recorded.
    pub fn required<T>(&mut self, s: &Settings, key: &Key<T, Required>) -> Option<T> {
        match s.get(&key.meta) {
            Some(setting) => self.parse(s, key.parse, &key.meta, setting),
            None => {
                let name = s.name(&key.meta);
                let problem = if name == key.meta.path {
                    format!(
                        "is required (set it in the config file, {}, or with its flag)",
                        key.meta.env_name()
                    )
                } else {
                    "is required".to_string()
                };
                self.fail(name, None, problem);
                None
            }
        }
    }

    fn parse<T>(
        &mut self,
        s: &Settings,
        parse: fn(&str) -> super::parse::Parsed<T>,
        key: &super::key::Meta,
        setting: &Setting,
    ) -> Option<T> {
        parse(setting.text.trim())
            .map_err(|problem| self.fail(s.name(key), Some(setting), problem.0))
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

/// Who may read `/stats` and `/metrics` on the listener `listen` configures: the admin token
/// when set; without it, anyone on a loopback address and nobody beyond (logged, since the
/// endpoints then answer 403).
fn admin_access(
    s: &Settings,
    r: &mut Resolver,
    listen: &Key<SocketAddr, Defaulted>,
) -> AdminAccess {
    let loopback = r.get(s, listen).ip().is_loopback();
    let access = AdminAccess::for_listener(r.optional(s, &ADMIN_TOKEN), loopback);
    if access == AdminAccess::Closed {
        tracing::warn!(
            message = "/stats and /metrics answer 403 on this listener: it is reachable beyond loopback and admin.token is not set.",
            key = listen.meta.path,
        );
    }
    access
}

/// How many threads run the process's tasks (`runtime.worker_threads`). The runtime is built
/// before a command resolves its plan, from this alone; the plans read it too, so a bad value is
/// reported with every other problem.
pub fn worker_threads(raw: &RawConfig, r: &mut Resolver) -> NonZeroUsize {
    r.get(&raw.settings, &RUNTIME_WORKER_THREADS)
}

/// The cluster key (required, at least 16 characters).
pub fn cluster_key(raw: &RawConfig, r: &mut Resolver) -> Secret {
    r.required(&raw.settings, &CLUSTER_KEY)
        .unwrap_or_else(|| Secret::new(""))
}

/// One app from its `app.*` settings (an `[app]`, an `[[apps]]` entry or an app store row).
pub fn app(s: &Settings, r: &mut Resolver) -> App {
    let id = r.required(s, &APP_ID).unwrap_or_default();
    let key = r.required(s, &APP_KEY).unwrap_or_default();
    let secret = r
        .required(s, &APP_SECRET)
        .unwrap_or_else(|| Secret::new(""));
    let settings = AppSettings {
        enabled: r.get(s, &APP_ENABLED),
        max_event_data_bytes: r.get(s, &APP_MAX_EVENT_DATA_BYTES),
        max_channels_per_trigger: r.get(s, &APP_MAX_CHANNELS_PER_TRIGGER),
        max_batch_events: r.get(s, &APP_MAX_BATCH_EVENTS),
        client_events: r.get(s, &APP_CLIENT_EVENTS),
        client_events_per_second: r.get(s, &APP_CLIENT_EVENTS_PER_SECOND),
        user_authentication_timeout_secs: r.optional(s, &APP_USER_AUTHENTICATION_TIMEOUT_SECS),
        subscription_count_events: r.get(s, &APP_SUBSCRIPTION_COUNT_EVENTS),
        watchlist_events: r.get(s, &APP_WATCHLIST_EVENTS),
        max_presence_members: r.get(s, &APP_MAX_PRESENCE_MEMBERS),
        max_user_info_bytes: r.get(s, &APP_MAX_USER_INFO_BYTES),
        allowed_origins: r.get(s, &APP_ALLOWED_ORIGINS),
        require_origin: r.get(s, &APP_REQUIRE_ORIGIN),
        max_connections: r.optional(s, &APP_MAX_CONNECTIONS),
        api_requests_per_second: r.get(s, &APP_API_REQUESTS_PER_SECOND),
    };
    App {
        id: AppId::new(id),
        key: AppKey::new(key),
        secret,
        previous_secret: None,
        settings,
    }
}

/// The apps: `[app]` (also `REVERB_APP_*` and `--app-*`; any `app.*` key makes it an app, whose
/// id, key and secret are then required) followed by `[[apps]]`. None at all is an error unless
/// an app store holds them (`app_store.url`).
pub fn apps(raw: &RawConfig, r: &mut Resolver) -> Arc<AppTable> {
    let mut list = Vec::new();
    if raw.settings.any_in(APP_ID.meta.section()) {
        list.push(app(&raw.settings, r));
    }
    for entry in &raw.apps {
        list.push(app(entry, r));
    }
    if list.is_empty() && raw.settings.get(&APP_STORE_URL.meta).is_none() {
        r.fail(
            "app",
            None,
            "no app configured (set app.id, app.key and app.secret — or REVERB_APP_ID, REVERB_APP_KEY, REVERB_APP_SECRET — or [[apps]] entries, or app_store.url)",
        );
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
    /// The certificate the HTTP API serves `https://` with; plain HTTP when `None`.
    pub http_tls: Option<Arc<CertFiles>>,
    /// How often served certificate files are checked for a renewal.
    pub tls_watch: Duration,
    /// The app store, when apps live in a database too.
    pub app_store: Option<StorePlan>,
}

/// How the hub reads its app store, if `app_store.url` is set.
pub fn app_store(raw: &RawConfig, r: &mut Resolver) -> Option<StorePlan> {
    let s = &raw.settings;
    let refresh = r.get(s, &APP_STORE_REFRESH_MS);
    let timeout = r.get(s, &APP_STORE_CONNECT_TIMEOUT_SECS);
    r.get(s, &APP_STORE_SECRET_GRACE_SECS);
    Some(StorePlan {
        url: r.optional(s, &APP_STORE_URL)?,
        refresh,
        timeout,
    })
}

fn pem_file(
    s: &Settings,
    key: &Key<std::path::PathBuf, Optional>,
    r: &mut Resolver,
) -> Option<Vec<u8>> {
    let path = r.optional(s, key)?;
    match std::fs::read(Path::new(&path)) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            r.fail(
                s.name(&key.meta),
                s.get(&key.meta),
                format!("cannot read {}: {error}", path.display()),
            );
            None
        }
    }
}

/// The certificate a listener serves, from a pair of keys that are both set or both unset.
fn serving_tls(
    s: &Settings,
    r: &mut Resolver,
    cert_key: &'static Key<std::path::PathBuf, Optional>,
    key_key: &'static Key<std::path::PathBuf, Optional>,
) -> Option<Arc<CertFiles>> {
    let cert = r.optional(s, cert_key);
    let key = r.optional(s, key_key);
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => return None,
        (cert, _) => {
            let (missing, other) = if cert.is_some() {
                (key_key, cert_key)
            } else {
                (cert_key, key_key)
            };
            if s.get(&other.meta).is_some() {
                r.fail(
                    missing.meta.path,
                    None,
                    format!("is required when {} is set", other.meta.path),
                );
            }
            return None;
        }
    };
    match CertFiles::load(cert_key.meta.path, &cert, &key) {
        Ok(files) => Some(files),
        Err(error) => {
            r.fail(cert_key.meta.path, s.get(&cert_key.meta), error.to_string());
            None
        }
    }
}

fn hub_tls(raw: &RawConfig, r: &mut Resolver) -> HubTls {
    let s = &raw.settings;
    let (cert_setting, key_setting) = (s.get(&HUB_TLS_CERT.meta), s.get(&HUB_TLS_KEY.meta));
    if cert_setting.is_none() && key_setting.is_none() {
        return tls::self_signed();
    }
    for (key, given) in [(&HUB_TLS_CERT, cert_setting), (&HUB_TLS_KEY, key_setting)] {
        if given.is_none() {
            r.fail(
                key.meta.path,
                None,
                "is required when hub.tls_cert or hub.tls_key is set",
            );
        }
    }
    let cert = pem_file(s, &HUB_TLS_CERT, r);
    let key = pem_file(s, &HUB_TLS_KEY, r);
    let (Some(cert), Some(key)) = (cert, key) else {
        return tls::self_signed();
    };
    match tls::from_pem(&cert, &key) {
        Ok(loaded) => loaded,
        Err(problem) => {
            r.fail(HUB_TLS_CERT.meta.path, cert_setting, problem);
            tls::self_signed()
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
    let app_store = app_store(raw, r);
    let s = &raw.settings;
    let request_timeout = r.get(s, &HUB_REQUEST_TIMEOUT_SECS);
    HubPlan {
        http_listen: r.get(s, &HUB_HTTP_LISTEN),
        link_listen: r.get(s, &HUB_LINK_LISTEN),
        config: HubConfig {
            hub_id,
            apps: Apps::fixed(apps),
            cluster_key,
            tls: hub_tls(raw, r),
            link: LinkSettings {
                channel_streams: r.get(s, &HUB_CHANNEL_STREAMS),
                stream_queue: r.get(s, &HUB_STREAM_QUEUE),
                idle_timeout: r.get(s, &HUB_LINK_IDLE_TIMEOUT_SECS),
                hello_timeout: Duration::from_secs(5),
            },
            api: ApiSettings {
                body_limit_bytes: r.get(s, &HUB_BODY_LIMIT_BYTES),
                request_timeout,
            },
            admin: admin_access(s, r, &HUB_HTTP_LISTEN),
            http: HttpSettings {
                header_timeout: r.get(s, &HUB_HTTP_HEADER_TIMEOUT_SECS),
                idle_timeout: r.get(s, &HUB_HTTP_IDLE_TIMEOUT_SECS),
                max_connections: r.get(s, &HUB_HTTP_MAX_CONNECTIONS),
                shutdown_grace: request_timeout,
            },
            registry: RegistrySettings {
                shards: r.get(s, &HUB_REGISTRY_SHARDS).get(),
                lifetimes: Lifetimes {
                    history: HistoryLimits {
                        max_events: r.get(s, &HUB_HISTORY_MAX_EVENTS),
                        max_age: r.get(s, &HUB_HISTORY_MAX_AGE_SECS),
                    },
                    cache_ttl: r.get(s, &HUB_CACHE_TTL_SECS),
                },
                intervals: Intervals {
                    subscription_count: r.get(s, &HUB_SUBSCRIPTION_COUNT_INTERVAL_MS),
                },
            },
            cluster: None,
            webhooks: super::webhooks::webhooks(raw, r),
            console_token: r.optional(s, &HUB_CONSOLE_TOKEN),
        },
        redis: redis(raw, r),
        http_tls: serving_tls(s, r, &HUB_HTTP_TLS_CERT, &HUB_HTTP_TLS_KEY),
        tls_watch: r.get(s, &TLS_WATCH_INTERVAL_SECS),
        app_store,
    }
}

/// Where a hub finds Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisSource {
    /// A `redis://` or `rediss://` URL (it may hold a password).
    Url(Secret),
    /// The primary endpoint of an ElastiCache replication group, found at start.
    ElastiCache {
        /// The replication group id.
        group: String,
        /// ACL user.
        username: Option<String>,
        /// Auth token.
        password: Option<Secret>,
        /// Database index.
        db: u32,
    },
}

/// How a hub joins its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisPlan {
    /// Where Redis is.
    pub source: RedisSource,
    /// How Redis runs, when `redis.mode` says so (`None`: auto, asked at start).
    pub mode: Option<herald_hub::cluster::RedisMode>,
    /// The key prefix.
    pub prefix: String,
    /// How long a hub is alive after a heartbeat.
    pub hub_ttl: Duration,
    /// How long to stay subscribed after the last interest.
    pub linger: Duration,
    /// Replicas that must hold an event before its trigger is answered (unset: decided from
    /// the server at start).
    pub min_replicas_acked: Option<u32>,
    /// How long a trigger waits for them.
    pub replica_ack_timeout: Duration,
}

/// A Redis URL from its parts; user and password are percent-encoded.
pub fn redis_url(
    tls: bool,
    host: &str,
    port: u16,
    username: Option<&str>,
    password: Option<&Secret>,
    db: u32,
) -> Secret {
    let scheme = if tls { "rediss" } else { "redis" };
    let credentials = match (username, password) {
        (None, None) => String::new(),
        (user, password) => format!(
            "{}:{}@",
            percent_encode(user.unwrap_or_default()),
            percent_encode(password.map(Secret::expose).unwrap_or_default())
        ),
    };
    Secret::new(format!("{scheme}://{credentials}{host}:{port}/{db}"))
}

/// Whether a setting was given for Herald (a file, a flag, a `HERALD_` variable) rather than
/// found among Laravel's `REDIS_*` connection variables, which alone never make a region.
fn set_for_herald(setting: Option<&Setting>) -> bool {
    setting.is_some_and(|s| !matches!(&s.origin, Origin::Env(name) if name.starts_with("REDIS_")))
}

/// The hub's region, if it joins one: `redis.enabled` (also `REVERB_SCALING_ENABLED`), which
/// defaults to true when a URL, host or replication group is configured for Herald.
pub fn redis(raw: &RawConfig, r: &mut Resolver) -> Option<RedisPlan> {
    let s = &raw.settings;
    let default_enabled = [
        &REDIS_URL.meta,
        &REDIS_HOST.meta,
        &REDIS_ELASTICACHE_REPLICATION_GROUP.meta,
    ]
    .into_iter()
    .any(|key| set_for_herald(s.get(key)));
    if !r.optional(s, &REDIS_ENABLED).unwrap_or(default_enabled) {
        return None;
    }
    let username = r.optional(s, &REDIS_USERNAME);
    let password = r.optional(s, &REDIS_PASSWORD);
    let db = r.get(s, &REDIS_DB);
    let source = if let Some(group) = r.optional(s, &REDIS_ELASTICACHE_REPLICATION_GROUP) {
        RedisSource::ElastiCache {
            group,
            username,
            password,
            db,
        }
    } else if s.get(&REDIS_URL.meta).is_some() {
        RedisSource::Url(r.optional(s, &REDIS_URL).unwrap_or_else(|| Secret::new("")))
    } else {
        RedisSource::Url(redis_url(
            r.get(s, &REDIS_TLS),
            &r.get(s, &REDIS_HOST),
            r.get(s, &REDIS_PORT),
            username.as_deref(),
            password.as_ref(),
            db,
        ))
    };
    Some(RedisPlan {
        source,
        mode: r.get(s, &REDIS_MODE),
        prefix: r.get(s, &REDIS_PREFIX),
        hub_ttl: r.get(s, &REDIS_HUB_TTL_SECS),
        linger: r.get(s, &REDIS_LINGER_SECS),
        min_replicas_acked: r.optional(s, &REDIS_MIN_REPLICAS_ACKED),
        replica_ack_timeout: r.get(s, &REDIS_REPLICA_ACK_TIMEOUT_MS),
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
    /// Link silence before the hub is gone.
    pub link_silence: Duration,
    /// Link idle timeout (QUIC's backstop).
    pub link_idle_timeout: Duration,
    /// The certificate the WebSocket port serves `wss://` with; plain `ws://` when `None`.
    pub tls: Option<Arc<CertFiles>>,
    /// How often served certificate files are checked for a renewal.
    pub tls_watch: Duration,
    /// Who may read `/stats` and `/metrics` on the admin port.
    pub admin_access: AdminAccess,
    /// The edge's connection cap.
    pub max_connections: Option<u64>,
    /// New connections per client address.
    pub connection_rate: Option<ConnectionRateLimit>,
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
            admin: self.admin_access.clone(),
            max_connections: self.max_connections,
            connection_rate: self.connection_rate.clone(),
        }
    }
}

/// The edge's own settings.
pub fn edge(raw: &RawConfig, r: &mut Resolver) -> EdgePlan {
    let s = &raw.settings;
    let pong_timeout = r.get(s, &EDGE_PONG_TIMEOUT_SECS);
    let drain_timeout = r.get(s, &EDGE_DRAIN_TIMEOUT_SECS);
    // Every key is read, so a bad value is reported even where the rate limit is off.
    let burst = r.get(s, &EDGE_CONNECTIONS_PER_IP_BURST);
    let trusted_proxies = r.optional(s, &EDGE_TRUSTED_PROXIES).unwrap_or_default();
    let connection_rate = r
        .get(s, &EDGE_CONNECTIONS_PER_IP_PER_SECOND)
        .map(|per_second| ConnectionRateLimit {
            per_second,
            burst,
            trusted_proxies,
        });
    EdgePlan {
        websocket: r.get(s, &EDGE_LISTEN),
        admin: r.get(s, &EDGE_ADMIN_LISTEN),
        sockets: SocketLimits {
            activity_timeout: r.get(s, &EDGE_ACTIVITY_TIMEOUT_SECS),
            pong_timeout,
            handshake_timeout: Duration::from_secs(10),
            max_message_bytes: r.get(s, &EDGE_MAX_MESSAGE_BYTES),
            read_buffer_bytes: r.get(s, &EDGE_READ_BUFFER_BYTES),
            outbox: OutboxLimits {
                frames: r.get(s, &EDGE_OUTBOX_FRAMES),
                bytes: r.get(s, &EDGE_OUTBOX_BYTES),
            },
            write_timeout: pong_timeout,
            // Leave the last part of the drain timeout for the closing handshakes.
            drain_window: drain_timeout.mul_f64(0.8),
            max_channels: r.get(s, &EDGE_MAX_CHANNELS_PER_SOCKET),
        },
        index_shards: r.get(s, &EDGE_INDEX_SHARDS),
        drain_timeout,
        link_silence: r.get(s, &EDGE_LINK_SILENCE_MS),
        link_idle_timeout: r.get(s, &EDGE_LINK_IDLE_TIMEOUT_SECS),
        tls: serving_tls(s, r, &EDGE_TLS_CERT, &EDGE_TLS_KEY),
        tls_watch: r.get(s, &TLS_WATCH_INTERVAL_SECS),
        admin_access: admin_access(s, r, &EDGE_ADMIN_LISTEN),
        max_connections: r.optional(s, &EDGE_MAX_CONNECTIONS),
        connection_rate,
    }
}

/// How the edge reaches and trusts its hubs.
pub fn edge_link(
    raw: &RawConfig,
    r: &mut Resolver,
    plan: &EdgePlan,
    cluster_key: Secret,
) -> LinkConfig {
    let s = &raw.settings;
    let hubs = r.required(s, &EDGE_HUBS).unwrap_or_default();
    let ca = s.get(&EDGE_HUB_CA.meta);
    let trust = match (ca, s.get(&EDGE_HUB_CERT_SHA256.meta)) {
        (Some(_), Some(_)) => {
            r.fail(
                EDGE_HUB_CA.meta.path,
                ca,
                "set either edge.hub_ca or edge.hub_cert_sha256, not both",
            );
            HubTrust::Pinned(Vec::new())
        }
        (None, None) => {
            r.fail(
                EDGE_HUB_CA.meta.path,
                None,
                "the edge must trust its hubs: set edge.hub_ca (a CA PEM file) or edge.hub_cert_sha256 (certificate pins)",
            );
            HubTrust::Pinned(Vec::new())
        }
        (None, Some(_)) => {
            HubTrust::Pinned(r.optional(s, &EDGE_HUB_CERT_SHA256).unwrap_or_default())
        }
        (Some(setting), None) => {
            // The PEM text itself (an ECS task's secret from SSM) or a file holding it.
            let pem = if setting.text.trim_start().starts_with("-----BEGIN") {
                Some(setting.text.as_bytes().to_vec())
            } else {
                pem_file(s, &EDGE_HUB_CA, r)
            };
            let cas = pem.as_deref().map(pem_certs).unwrap_or_default();
            if pem.is_some() && cas.is_empty() {
                r.fail(EDGE_HUB_CA.meta.path, ca, "holds no PEM certificate");
            }
            HubTrust::CertificateAuthorities(cas)
        }
    };
    LinkConfig {
        hubs,
        zone: r.optional(s, &EDGE_ZONE),
        server_name: r.optional(s, &EDGE_HUB_SERVER_NAME),
        trust,
        cluster_key,
        silence: plan.link_silence,
        idle_timeout: plan.link_idle_timeout,
        max_backoff: Duration::from_secs(3),
    }
}

/// The certificates in PEM text (unreadable ones skipped).
fn pem_certs(mut pem: &[u8]) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem)
        .filter_map(Result::ok)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
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
            key: &APP_ID.meta,
            value: "from-flag".into(),
            flag: "--app-id",
        }];
        let raw = raw(
            "[app]\nid = \"from-file\"\nkey = \"k\"\nsecret = \"s\"\n",
            &[("REVERB_APP_ID", "from-env"), ("REVERB_APP_KEY", "env-key")],
            &flags,
        );
        assert_eq!(
            raw.settings.get(&APP_ID.meta).unwrap().origin,
            Origin::Flag("--app-id".into())
        );
        let mut r = Resolver::default();
        let table = apps(&raw, &mut r);
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
        apps(&raw, &mut r);
        let errors = r.finish(()).unwrap_err().0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0]
                .to_string()
                .starts_with("cluster.key (in the config file): is 5 characters long")
        );
        assert!(errors[1].to_string().starts_with("app: no app configured"));
    }

    /// The problems resolving the apps of this file and environment finds.
    fn app_problems(toml_text: &str, env: &[(&str, &str)]) -> Vec<String> {
        let raw = raw(toml_text, env, &[]);
        let mut r = Resolver::default();
        apps(&raw, &mut r);
        let errors = r.finish(()).unwrap_err().0;
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn one_app_setting_alone_asks_for_the_apps_credentials() {
        assert_eq!(
            app_problems("", &[("HERALD_APP__ENABLED", "false")]),
            vec![
                "app.id: is required (set it in the config file, HERALD_APP__ID, or with its flag)",
                "app.key: is required (set it in the config file, HERALD_APP__KEY, or with its flag)",
                "app.secret: is required (set it in the config file, HERALD_APP__SECRET, or with its flag)",
            ]
        );
    }

    #[test]
    fn apps_entries_are_reported_by_index() {
        assert_eq!(
            app_problems(
                "[[apps]]\nid = \"1\"\nkey = \"k\"\nmax_batch_events = 0\n",
                &[]
            ),
            vec![
                "apps[0].secret: is required",
                "apps[0].max_batch_events (in the config file): \"0\" is not a whole number above 0",
            ]
        );
    }

    #[test]
    fn a_bad_redis_mode_is_an_error_naming_the_key() {
        let raw = raw(
            "[redis]\nurl = \"redis://127.0.0.1:6379\"\n",
            &[("HERALD_REDIS__MODE", "sharded")],
            &[],
        );
        let mut r = Resolver::default();
        redis(&raw, &mut r);
        let errors = r.finish(()).unwrap_err().to_string();
        assert!(
            errors.contains(
                "redis.mode (from HERALD_REDIS__MODE): \"sharded\" is not auto, standalone or cluster"
            ),
            "{errors}"
        );
    }

    #[test]
    fn redis_passwords_never_reach_an_error() {
        let raw = raw("[redis]\nurl = \"redis://:hunter2@[broken\"\n", &[], &[]);
        let mut r = Resolver::default();
        redis(&raw, &mut r);
        let errors = r.finish(()).unwrap_err().to_string();
        assert!(
            errors.contains("redis.url (in the config file)"),
            "{errors}"
        );
        assert!(!errors.contains("hunter2"), "{errors}");
    }
}
