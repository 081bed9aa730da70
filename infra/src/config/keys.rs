//! Every configuration key, declared once (see [`super`] for how to add one).
//!
//! Every key `section.name` is also read from `HERALD_SECTION__NAME`. A few Laravel Reverb names
//! are understood too, so one Laravel `.env` configures both Laravel and Herald; when both a
//! `HERALD_…` variable and its alias are set, the `HERALD_…` one wins.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use herald_edge::HubAddress;
use herald_shared::app::AppSettings;
use herald_shared::limits;
use herald_shared::secret::Secret;
use ipnet::IpNet;

use herald_hub::cluster::RedisMode;
use herald_hub::webhooks::{RetryPolicy, WebhookSettings};

use super::key::Meta;
use super::parse;
use super::webhooks::{self, WebhookSpec};

fn cpu_count() -> String {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .to_string()
}

declare_keys! {
    /// shared secret that signs edge-hub link tokens (at least 16 characters)
    CLUSTER_KEY: Secret = "cluster.key", required, parse::token;

    /// app id (Pusher/Reverb app_id)
    APP_ID: String = "app.id", required, parse::non_empty, aliases["REVERB_APP_ID"];
    /// app key (clients connect to /app/{key})
    APP_KEY: String = "app.key", required, parse::non_empty, aliases["REVERB_APP_KEY"];
    /// app secret (signs API requests and channel auth)
    APP_SECRET: Secret = "app.secret", required, parse::secret, aliases["REVERB_APP_SECRET"];
    /// false refuses the app's connections (4003) and triggers (403)
    APP_ENABLED: bool = "app.enabled",
        computed(|| AppSettings::default().enabled.to_string()), parse::boolean;
    /// largest event data, bytes
    APP_MAX_EVENT_DATA_BYTES: u32 = "app.max_event_data_bytes",
        computed(|| AppSettings::default().max_event_data_bytes.to_string()), parse::positive;
    /// most channels per trigger
    APP_MAX_CHANNELS_PER_TRIGGER: u32 = "app.max_channels_per_trigger",
        computed(|| AppSettings::default().max_channels_per_trigger.to_string()), parse::positive;
    /// most events per batch trigger
    APP_MAX_BATCH_EVENTS: u32 = "app.max_batch_events",
        computed(|| AppSettings::default().max_batch_events.to_string()), parse::positive;
    /// allow client-* events on private and presence channels (like Reverb)
    APP_CLIENT_EVENTS: bool = "app.client_events",
        computed(|| AppSettings::default().client_events.to_string()), parse::boolean;
    /// client events per socket per second
    APP_CLIENT_EVENTS_PER_SECOND: u32 = "app.client_events_per_second",
        computed(|| AppSettings::default().client_events_per_second.to_string()), parse::positive;
    /// authorized connections: close sockets not signed in after this many seconds with 4009
    APP_USER_AUTHENTICATION_TIMEOUT_SECS: u32 = "app.user_authentication_timeout_secs",
        optional("off"), parse::positive;
    /// send pusher_internal:subscription_count to subscribers
    APP_SUBSCRIPTION_COUNT_EVENTS: bool = "app.subscription_count_events",
        computed(|| AppSettings::default().subscription_count_events.to_string()), parse::boolean;
    /// send watchlist online/offline events to signed-in users
    APP_WATCHLIST_EVENTS: bool = "app.watchlist_events",
        computed(|| AppSettings::default().watchlist_events.to_string()), parse::boolean;
    /// most users per presence channel
    APP_MAX_PRESENCE_MEMBERS: u32 = "app.max_presence_members",
        computed(|| AppSettings::default().max_presence_members.to_string()), parse::positive;
    /// largest presence user_info, bytes
    APP_MAX_USER_INFO_BYTES: u32 = "app.max_user_info_bytes",
        computed(|| AppSettings::default().max_user_info_bytes.to_string()), parse::positive;
    /// webhook endpoints: [[app.webhooks]] tables in the file (url, event_types, headers,
    /// channel_prefix, channel_suffix), or the same list as JSON in the environment
    APP_WEBHOOKS: Vec<WebhookSpec> = "app.webhooks", optional("none"), webhooks::specs;

    /// hosts whose pages may connect, comma-separated: example.com, *.example.com, or * for
    /// any (Reverb's rules; scheme and port do not count)
    APP_ALLOWED_ORIGINS: Vec<String> = "app.allowed_origins",
        computed(|| AppSettings::default().allowed_origins.join(",")), parse::origins;
    /// refuse upgrades without an Origin header (non-browser clients: mobile apps, servers)
    /// unless app.allowed_origins is *
    APP_REQUIRE_ORIGIN: bool = "app.require_origin",
        computed(|| AppSettings::default().require_origin.to_string()), parse::boolean;
    /// most connections the app may hold across the region (every edge of every hub); more get
    /// 4004
    APP_MAX_CONNECTIONS: u32 = "app.max_connections", optional("no limit"), parse::positive;
    /// HTTP API requests the app may make per second on each hub; more get 429
    APP_API_REQUESTS_PER_SECOND: u32 = "app.api_requests_per_second",
        computed(|| AppSettings::default().api_requests_per_second.to_string()), parse::positive;

    /// apps in a database besides the file's: postgres://user:password@host:5432/database or
    /// mysql://user:password@host:3306/database (MariaDB too); Herald creates its table
    /// herald_apps there
    APP_STORE_URL: crate::app_store::StoreUrl = "app_store.url",
        optional("unset: apps from the file and environment only"), parse::store_url;
    /// how often hubs re-read the app store, milliseconds: added, changed, disabled and removed
    /// apps apply on every hub and edge within about this
    APP_STORE_REFRESH_MS: Duration = "app_store.refresh_ms", default("1000"), parse::millis;
    /// how long connecting to the app store may take at start (and per refresh), seconds
    APP_STORE_CONNECT_TIMEOUT_SECS: Duration = "app_store.connect_timeout_secs", default("5"),
        parse::seconds;
    /// how long herald apps rotate-secret keeps the previous secret valid, seconds (24 h)
    APP_STORE_SECRET_GRACE_SECS: Duration = "app_store.secret_grace_secs", default("86400"),
        parse::seconds;

    /// HTTP API address
    HUB_HTTP_LISTEN: SocketAddr = "hub.http_listen", default("0.0.0.0:8081"), parse::socket_addr;
    /// QUIC link address, UDP
    HUB_LINK_LISTEN: SocketAddr = "hub.link_listen", default("0.0.0.0:4433"), parse::socket_addr;
    /// link certificate chain, PEM file
    HUB_TLS_CERT: PathBuf = "hub.tls_cert", optional("self-signed at start"), parse::path;
    /// link private key, PEM file
    HUB_TLS_KEY: PathBuf = "hub.tls_key", optional("self-signed at start"), parse::path;
    /// certificate chain (PEM file) the HTTP API serves https:// with; re-read on SIGHUP and
    /// when the file changes
    HUB_HTTP_TLS_CERT: PathBuf = "hub.http_tls_cert", optional("plain http://"), parse::path;
    /// private key (PEM file) of hub.http_tls_cert
    HUB_HTTP_TLS_KEY: PathBuf = "hub.http_tls_key", optional("plain http://"), parse::path;
    /// seconds a new HTTP connection has to send a complete request head (TLS handshake
    /// included) before it is closed
    HUB_HTTP_HEADER_TIMEOUT_SECS: Duration = "hub.http_header_timeout_secs",
        default("5"), parse::seconds;
    /// seconds a keep-alive HTTP connection may wait for its next request before it is closed
    /// (above a load balancer's own idle timeout, 60 s on AWS ALB)
    HUB_HTTP_IDLE_TIMEOUT_SECS: Duration = "hub.http_idle_timeout_secs",
        default("75"), parse::seconds;
    /// most HTTP connections served at once; more are answered 503 and closed
    HUB_HTTP_MAX_CONNECTIONS: usize = "hub.http_max_connections", default("10000"),
        parse::positive;
    /// channel registry shards
    HUB_REGISTRY_SHARDS: NonZeroUsize = "hub.registry_shards",
        machine("the CPU count", cpu_count), parse::nonzero;
    /// QUIC streams per edge for channel frames
    HUB_CHANNEL_STREAMS: u16 = "hub.channel_streams", default("4"), parse::positive;
    /// frames queued per edge stream before the edge counts as lagging
    HUB_STREAM_QUEUE: usize = "hub.stream_queue", default("8192"), parse::positive;
    /// events kept per channel for resume and backfill (10 s of 200 events/s)
    HUB_HISTORY_MAX_EVENTS: usize = "hub.history_max_events", default("2000"), parse::positive;
    /// seconds events stay in history
    HUB_HISTORY_MAX_AGE_SECS: Duration = "hub.history_max_age_secs", default("60"), parse::seconds;
    /// largest HTTP request body, bytes
    HUB_BODY_LIMIT_BYTES: usize = "hub.body_limit_bytes", default("262144"), parse::positive;
    /// longest HTTP request, seconds
    HUB_REQUEST_TIMEOUT_SECS: Duration = "hub.request_timeout_secs", default("10"), parse::seconds;
    /// a token that signs in to the debug console (/console) for any app, besides each app's
    /// key and secret (at least 16 characters)
    HUB_CONSOLE_TOKEN: Secret = "hub.console_token", optional("unset: apps' key and secret only"),
        parse::token;
    /// link silence before an edge is gone; its presence members are removed then
    /// (keep-alives go every third of it)
    HUB_LINK_IDLE_TIMEOUT_SECS: Duration = "hub.link_idle_timeout_secs",
        default("3"), parse::seconds;
    /// how long cache channels keep their last event, seconds
    HUB_CACHE_TTL_SECS: Duration = "hub.cache_ttl_secs", default("1800"), parse::seconds;
    /// at most one subscription_count event per channel per interval, milliseconds
    HUB_SUBSCRIPTION_COUNT_INTERVAL_MS: Duration = "hub.subscription_count_interval_ms",
        default("1000"), parse::millis;

    /// join a region of hubs through Redis
    REDIS_ENABLED: bool = "redis.enabled",
        optional("true when redis.url, redis.host or redis.elasticache_replication_group is set other than by Laravel's REDIS_* names"),
        parse::boolean, aliases["REVERB_SCALING_ENABLED"];
    /// redis:// or rediss:// URL (user, password and database in it)
    REDIS_URL: Secret = "redis.url", optional("unset"), parse::redis_url, aliases["REDIS_URL"];
    /// Redis host, when no URL is given
    REDIS_HOST: String = "redis.host", default("127.0.0.1"), parse::non_empty, aliases["REDIS_HOST"];
    /// Redis port
    REDIS_PORT: u16 = "redis.port", default("6379"), parse::positive, aliases["REDIS_PORT"];
    /// Redis ACL user
    REDIS_USERNAME: String = "redis.username", optional("unset"), parse::non_empty,
        aliases["REDIS_USERNAME"];
    /// Redis password or ElastiCache auth token
    REDIS_PASSWORD: Secret = "redis.password", optional("unset"), parse::any_secret,
        aliases["REDIS_PASSWORD"];
    /// Redis database index
    REDIS_DB: u32 = "redis.db", default("0"), parse::whole, aliases["REDIS_DB"];
    /// connect with TLS (rediss)
    REDIS_TLS: bool = "redis.tls", default("false"), parse::boolean;
    /// discover the primary endpoint of this ElastiCache replication group (AWS credentials and
    /// region from the environment)
    REDIS_ELASTICACHE_REPLICATION_GROUP: String = "redis.elasticache_replication_group",
        optional("unset"), parse::non_empty;
    /// how Redis runs: auto (asked at start with INFO cluster), standalone (one primary, with
    /// replicas perhaps) or cluster (Redis Cluster: sharded keys and pub/sub)
    REDIS_MODE: Option<RedisMode> = "redis.mode", default("auto"), parse::redis_mode;
    /// prefix of every Redis key and channel; separates environments sharing a Redis
    REDIS_PREFIX: String = "redis.prefix", default("herald"), parse::redis_prefix;
    /// a hub without heartbeat for this long is dead and its presence members are reaped,
    /// seconds
    REDIS_HUB_TTL_SECS: Duration = "redis.hub_ttl_secs", default("10"), parse::seconds;
    /// stay subscribed to a channel this long after its last interest, seconds
    REDIS_LINGER_SECS: Duration = "redis.linger_secs", default("5"), parse::seconds;
    /// replicas that must hold a triggered event before the trigger is answered 200 (WAIT);
    /// 0 answers once the primary has it
    REDIS_MIN_REPLICAS_ACKED: u32 = "redis.min_replicas_acked",
        optional("unset: 1 when the primary has a replica as the hub starts, else 0"), parse::whole;
    /// how long a trigger waits for those replicas before it is answered 503, milliseconds
    REDIS_REPLICA_ACK_TIMEOUT_MS: Duration = "redis.replica_ack_timeout_ms", default("1000"),
        parse::millis;

    /// webhook events queued per endpoint before the oldest are dropped
    WEBHOOKS_QUEUE_MAX: usize = "webhooks.queue_max",
        computed(|| WebhookSettings::default().queue_max.to_string()), parse::positive;
    /// how long a failing webhook batch is retried before it is dropped, seconds (Pusher's)
    WEBHOOKS_RETRY_FOR_SECS: Duration = "webhooks.retry_for_secs",
        computed(|| RetryPolicy::default().retry_for.as_secs().to_string()), parse::seconds;
    /// wait after a webhook request's first failure, milliseconds; it doubles per failure
    WEBHOOKS_BACKOFF_MIN_MS: Duration = "webhooks.backoff_min_ms",
        computed(|| RetryPolicy::default().backoff_min.as_millis().to_string()), parse::millis;
    /// longest wait between two webhook attempts, milliseconds
    WEBHOOKS_BACKOFF_MAX_MS: Duration = "webhooks.backoff_max_ms",
        computed(|| RetryPolicy::default().backoff_max.as_millis().to_string()), parse::millis;

    /// bearer token /stats and /metrics require (Authorization: Bearer <token>, at least 16
    /// characters); without it they answer only on loopback listeners
    ADMIN_TOKEN: Secret = "admin.token", optional("unset: open on loopback listeners, closed elsewhere"),
        parse::token;

    /// seconds between two checks of the served certificate files (edge.tls_cert,
    /// hub.http_tls_cert) for a renewal; SIGHUP re-reads them at once
    TLS_WATCH_INTERVAL_SECS: Duration = "tls.watch_interval_secs", default("2"), parse::seconds;

    /// threads that run this process's tasks; set it to the process's share of the cores where
    /// several Herald processes share a machine (each thread left idle costs wake-ups)
    RUNTIME_WORKER_THREADS: NonZeroUsize = "runtime.worker_threads",
        machine("the CPU count", cpu_count), parse::nonzero;

    /// WebSocket address (also REVERB_SERVER_HOST + REVERB_SERVER_PORT)
    EDGE_LISTEN: SocketAddr = "edge.listen", default("0.0.0.0:8080"), parse::socket_addr;
    /// admin HTTP address for /up and /stats
    EDGE_ADMIN_LISTEN: SocketAddr = "edge.admin_listen", default("0.0.0.0:9080"),
        parse::socket_addr;
    /// certificate chain (PEM file) the WebSocket port serves wss:// with; re-read on SIGHUP and
    /// when the file changes
    EDGE_TLS_CERT: PathBuf = "edge.tls_cert", optional("plain ws://"), parse::path;
    /// private key (PEM file) of edge.tls_cert
    EDGE_TLS_KEY: PathBuf = "edge.tls_key", optional("plain ws://"), parse::path;
    /// most client connections this edge holds; more get 4100 and /up answers 503 "full"
    EDGE_MAX_CONNECTIONS: u64 = "edge.max_connections", optional("no cap"), parse::positive;
    /// channels one connection may be subscribed to at once
    EDGE_MAX_CHANNELS_PER_SOCKET: usize = "edge.max_channels_per_socket",
        computed(|| limits::DEFAULT_MAX_CHANNELS_PER_SOCKET.to_string()), parse::positive;
    /// new WebSocket connections one client address may sustain per second (off: no limit);
    /// more get HTTP 429
    EDGE_CONNECTIONS_PER_IP_PER_SECOND: Option<NonZeroU32> =
        "edge.connections_per_ip_per_second", default("1000"), parse::rate_or_off;
    /// new WebSocket connections one client address may open at once
    EDGE_CONNECTIONS_PER_IP_BURST: NonZeroU32 = "edge.connections_per_ip_burst",
        default("10000"), parse::nonzero_u32;
    /// proxies (CIDRs, comma-separated: the load balancer's subnets) whose X-Forwarded-For
    /// names the client for edge.connections_per_ip_per_second
    EDGE_TRUSTED_PROXIES: Vec<IpNet> = "edge.trusted_proxies", optional("none"), parse::cidrs;
    /// hub link addresses host:port or zone=host:port, comma-separated; own zone first
    EDGE_HUBS: Vec<HubAddress> = "edge.hubs", required, parse::hub_addresses;
    /// this edge's availability zone (hubs in it are preferred)
    EDGE_ZONE: String = "edge.zone", optional("unset"), parse::non_empty;
    /// CA certificate hub certificates chain to: a PEM file, or the PEM text itself (starting
    /// with -----BEGIN, as an ECS task gets it from SSM)
    EDGE_HUB_CA: PathBuf = "edge.hub_ca", optional("unset"), parse::path;
    /// SHA-256 pins of hub certificates, hex, comma-separated
    EDGE_HUB_CERT_SHA256: Vec<[u8; 32]> = "edge.hub_cert_sha256", optional("unset"), parse::pins;
    /// the name hub certificates are verified for (with edge.hub_ca), the same for every hub
    EDGE_HUB_SERVER_NAME: String = "edge.hub_server_name",
        optional("the host of each edge.hubs address"), parse::non_empty;
    /// client silence before a server ping, seconds
    EDGE_ACTIVITY_TIMEOUT_SECS: Duration = "edge.activity_timeout_secs",
        computed(|| limits::DEFAULT_ACTIVITY_TIMEOUT_SECS.to_string()), parse::seconds;
    /// wait for pong before closing with 4201, seconds
    EDGE_PONG_TIMEOUT_SECS: Duration = "edge.pong_timeout_secs",
        computed(|| limits::DEFAULT_PONG_TIMEOUT_SECS.to_string()), parse::seconds;
    /// largest client message, bytes
    EDGE_MAX_MESSAGE_BYTES: usize = "edge.max_message_bytes",
        computed(|| limits::DEFAULT_MAX_CLIENT_MESSAGE_BYTES.to_string()), parse::positive;
    /// bytes a socket reads at once: a buffer taken when the client sends and given back once its bytes are handled (an idle socket holds none)
    EDGE_READ_BUFFER_BYTES: usize = "edge.read_buffer_bytes", default("2048"), parse::positive;
    /// frames queued per socket before it is closed as slow
    EDGE_OUTBOX_FRAMES: usize = "edge.outbox_frames", default("1024"), parse::positive;
    /// bytes queued per socket before it is closed as slow
    EDGE_OUTBOX_BYTES: usize = "edge.outbox_bytes", default("1048576"), parse::positive;
    /// seconds to drain on SIGTERM
    EDGE_DRAIN_TIMEOUT_SECS: Duration = "edge.drain_timeout_secs", default("25"), parse::seconds;
    /// local channel index shards
    EDGE_INDEX_SHARDS: NonZeroUsize = "edge.index_shards",
        machine("the CPU count", cpu_count), parse::nonzero;
    /// link silence before the hub is gone and the edge fails over, milliseconds (a hub whose
    /// process died is noticed sooner, by its closed port)
    EDGE_LINK_SILENCE_MS: Duration = "edge.link_silence_ms", default("800"), parse::millis;
    /// QUIC idle timeout of the link, seconds: the backstop to edge.link_silence_ms
    EDGE_LINK_IDLE_TIMEOUT_SECS: Duration = "edge.link_idle_timeout_secs",
        default("3"), parse::seconds;
}

/// Reverb's server host and port, which together set [`EDGE_LISTEN`] (each defaulting to the
/// key's default part when only the other is set).
pub const REVERB_SERVER_HOST: &str = "REVERB_SERVER_HOST";
/// See [`REVERB_SERVER_HOST`].
pub const REVERB_SERVER_PORT: &str = "REVERB_SERVER_PORT";

/// `HERALD_` variables that are not configuration keys: the process reads them itself.
pub const PROCESS_VARIABLES: &[(&str, &str)] = &[
    (
        "HERALD_LOG",
        "log filter, e.g. info,herald_edge=debug (default info; RUST_LOG works too)",
    ),
    ("HERALD_LOG_FORMAT", "json for JSON log lines"),
    (
        crate::process::PARENT_PID_VAR,
        "set by herald dev on the processes it starts",
    ),
];

/// The key at `path`.
pub fn key(path: &str) -> Option<&'static Meta> {
    KEYS.iter().copied().find(|key| key.path == path)
}

/// The key whose environment variable is `name`.
pub fn by_env_name(name: &str) -> Option<&'static Meta> {
    KEYS.iter().copied().find(|key| key.env_name() == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_default_parses_with_the_keys_parser() {
        for key in KEYS {
            if let Some(text) = key.fallback.text() {
                assert_eq!((key.check)(&text), Ok(()), "{}", key.path);
            }
        }
    }

    #[test]
    fn paths_env_names_and_aliases_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for key in KEYS {
            assert!(
                seen.insert(key.path.to_string()),
                "{} is declared twice",
                key.path
            );
            assert!(
                seen.insert(key.env_name()),
                "{} is declared twice",
                key.path
            );
            assert!(
                key.section() != key.path
                    && key
                        .path
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c)),
                "{} is not section.name in lower case",
                key.path
            );
            for alias in key.aliases {
                assert!(seen.insert(alias.to_string()), "{alias} names two keys");
            }
        }
        assert_eq!(
            key("hub.http_listen").unwrap().env_name(),
            "HERALD_HUB__HTTP_LISTEN"
        );
        assert!(KEYS.iter().all(|k| by_env_name(&k.env_name()).is_some()));
    }

    #[test]
    fn typed_defaults_are_the_documented_ones() {
        assert_eq!(
            HUB_HTTP_LISTEN.default_value(),
            "0.0.0.0:8081".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            APP_MAX_EVENT_DATA_BYTES.default_value(),
            AppSettings::default().max_event_data_bytes
        );
        assert_eq!(
            APP_MAX_EVENT_DATA_BYTES.meta.fallback.doc(),
            format!("`{}`", limits::DEFAULT_MAX_EVENT_DATA_BYTES)
        );
    }
}
