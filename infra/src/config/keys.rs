//! The configuration keys, their environment names, and the Reverb aliases.
//!
//! Every key `section.name` is also read from `HERALD_SECTION__NAME`. A few Laravel Reverb names
//! are understood too, so one Laravel `.env` configures both Laravel and Herald; when both a
//! `HERALD_…` variable and its alias are set, the `HERALD_…` one wins. `herald config env`
//! prints this table.

use super::env::Env;
use super::raw::{Origin, RawConfig, Setting};

/// One configuration key.
pub struct Key {
    /// `section.name`.
    pub path: &'static str,
    /// What it sets.
    pub help: &'static str,
    field: fn(&mut RawConfig) -> &mut Option<Setting>,
}

impl Key {
    /// The key's `HERALD_…` environment variable.
    pub fn env_name(&self) -> String {
        format!(
            "HERALD_{}",
            self.path.replace('.', "__").to_ascii_uppercase()
        )
    }

    /// The key's slot in a raw configuration.
    pub fn slot<'a>(&self, raw: &'a mut RawConfig) -> &'a mut Option<Setting> {
        (self.field)(raw)
    }
}

macro_rules! keys {
    ($($path:literal => $section:ident . $name:ident : $help:literal,)*) => {
        /// Every key, in the order `herald config env` lists them.
        pub const KEYS: &[Key] = &[$(
            Key {
                path: $path,
                help: $help,
                field: {
                    fn field(raw: &mut RawConfig) -> &mut Option<Setting> {
                        &mut raw.$section.$name
                    }
                    field
                },
            },
        )*];
    };
}

keys! {
    "cluster.key" => cluster.key: "shared secret that signs edge-hub link tokens (at least 16 characters)",
    "app.id" => app.id: "app id (Pusher/Reverb app_id)",
    "app.key" => app.key: "app key (clients connect to /app/{key})",
    "app.secret" => app.secret: "app secret (signs API requests and channel auth)",
    "app.enabled" => app.enabled: "false refuses the app's connections (4003) and triggers (403)",
    "app.max_event_data_bytes" => app.max_event_data_bytes: "largest event data (default 10240)",
    "app.max_channels_per_trigger" => app.max_channels_per_trigger: "most channels per trigger (default 100)",
    "app.max_batch_events" => app.max_batch_events: "most events per batch trigger (default 10)",
    "app.client_events" => app.client_events: "allow client-* events on private and presence channels (default true, like Reverb)",
    "app.client_events_per_second" => app.client_events_per_second: "client events per socket per second (default 10)",
    "app.user_authentication_timeout_secs" => app.user_authentication_timeout_secs: "authorized connections: close sockets not signed in after this many seconds with 4009 (default off)",
    "app.subscription_count_events" => app.subscription_count_events: "send pusher_internal:subscription_count to subscribers (default false)",
    "app.watchlist_events" => app.watchlist_events: "send watchlist online/offline events to signed-in users (default true)",
    "app.max_presence_members" => app.max_presence_members: "most users per presence channel (default 100)",
    "app.max_user_info_bytes" => app.max_user_info_bytes: "largest presence user_info (default 1024)",
    "hub.http_listen" => hub.http_listen: "HTTP API address (default 0.0.0.0:8081)",
    "hub.link_listen" => hub.link_listen: "QUIC link address, UDP (default 0.0.0.0:4433)",
    "hub.tls_cert" => hub.tls_cert: "link certificate chain, PEM file (default: self-signed at start)",
    "hub.tls_key" => hub.tls_key: "link private key, PEM file",
    "hub.registry_shards" => hub.registry_shards: "channel registry shards (default: CPU count)",
    "hub.channel_streams" => hub.channel_streams: "QUIC streams per edge for channel frames (default 4)",
    "hub.stream_queue" => hub.stream_queue: "frames queued per edge stream before the edge counts as lagging (default 8192)",
    "hub.history_max_events" => hub.history_max_events: "events kept per channel for resume and backfill (default 2000: 10 s of 200 events/s)",
    "hub.history_max_age_secs" => hub.history_max_age_secs: "seconds events stay in history (default 60)",
    "hub.body_limit_bytes" => hub.body_limit_bytes: "largest HTTP request body (default 262144)",
    "hub.request_timeout_secs" => hub.request_timeout_secs: "longest HTTP request (default 10)",
    "hub.link_idle_timeout_secs" => hub.link_idle_timeout_secs: "link silence before an edge is gone; its presence members are removed then (default 3)",
    "hub.cache_ttl_secs" => hub.cache_ttl_secs: "how long cache channels keep their last event (default 1800)",
    "hub.subscription_count_interval_ms" => hub.subscription_count_interval_ms: "at most one subscription_count event per channel per interval (default 1000)",
    "redis.enabled" => redis.enabled: "join a region of hubs through Redis (default: true when redis.url, host or replication group is set other than by Laravel's REDIS_* names)",
    "redis.url" => redis.url: "redis:// or rediss:// URL (user, password and database in it)",
    "redis.host" => redis.host: "Redis host, when no URL is given",
    "redis.port" => redis.port: "Redis port (default 6379)",
    "redis.username" => redis.username: "Redis ACL user",
    "redis.password" => redis.password: "Redis password or ElastiCache auth token",
    "redis.db" => redis.db: "Redis database index (default 0)",
    "redis.tls" => redis.tls: "connect with TLS (rediss)",
    "redis.elasticache_replication_group" => redis.elasticache_replication_group: "discover the primary endpoint of this ElastiCache replication group (AWS credentials and region from the environment)",
    "redis.prefix" => redis.prefix: "prefix of every Redis key and channel (default herald); separates environments sharing a Redis",
    "redis.hub_ttl_secs" => redis.hub_ttl_secs: "a hub without heartbeat for this long is dead and its presence members are reaped (default 10)",
    "redis.linger_secs" => redis.linger_secs: "stay subscribed to a channel this long after its last interest (default 5)",
    "edge.listen" => edge.listen: "WebSocket address (default 0.0.0.0:8080)",
    "edge.admin_listen" => edge.admin_listen: "admin HTTP address for /up and /stats (default 0.0.0.0:9080)",
    "edge.hubs" => edge.hubs: "hub link addresses host:port or zone=host:port, comma-separated; own zone first",
    "edge.zone" => edge.zone: "this edge's availability zone (hubs in it are preferred)",
    "edge.hub_ca" => edge.hub_ca: "CA certificate (PEM file) hub certificates chain to",
    "edge.hub_cert_sha256" => edge.hub_cert_sha256: "SHA-256 pins of hub certificates, hex, comma-separated",
    "edge.hub_server_name" => edge.hub_server_name: "name in the hub certificates (default herald-hub)",
    "edge.activity_timeout_secs" => edge.activity_timeout_secs: "client silence before a server ping (default 120)",
    "edge.pong_timeout_secs" => edge.pong_timeout_secs: "wait for pong before closing with 4201 (default 30)",
    "edge.max_message_bytes" => edge.max_message_bytes: "largest client message (default 10240)",
    "edge.read_buffer_bytes" => edge.read_buffer_bytes: "WebSocket read buffer per socket (default 2048)",
    "edge.outbox_frames" => edge.outbox_frames: "frames queued per socket before it is closed as slow (default 1024)",
    "edge.outbox_bytes" => edge.outbox_bytes: "bytes queued per socket before it is closed as slow (default 1048576)",
    "edge.drain_timeout_secs" => edge.drain_timeout_secs: "seconds to drain on SIGTERM (default 25)",
    "edge.index_shards" => edge.index_shards: "local channel index shards (default: CPU count)",
    "edge.link_idle_timeout_secs" => edge.link_idle_timeout_secs: "link silence before the hub is gone and the edge fails over (default 3)",
}

/// Other environment names for keys (Laravel Reverb's).
pub const ALIASES: &[(&str, &str)] = &[
    ("REVERB_APP_ID", "app.id"),
    ("REVERB_APP_KEY", "app.key"),
    ("REVERB_APP_SECRET", "app.secret"),
    ("REVERB_SCALING_ENABLED", "redis.enabled"),
    ("REDIS_URL", "redis.url"),
    ("REDIS_HOST", "redis.host"),
    ("REDIS_PORT", "redis.port"),
    ("REDIS_USERNAME", "redis.username"),
    ("REDIS_PASSWORD", "redis.password"),
    ("REDIS_DB", "redis.db"),
];

/// Reverb's server host and port, which together set `edge.listen`.
const REVERB_SERVER_HOST: &str = "REVERB_SERVER_HOST";
const REVERB_SERVER_PORT: &str = "REVERB_SERVER_PORT";

/// The key at `path`.
pub fn key(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.path == path)
}

/// Overrides the raw configuration with the environment.
pub fn apply_env(raw: &mut RawConfig, env: &dyn Env) {
    for (alias, path) in ALIASES {
        if let (Some(value), Some(key)) = (env.var(alias), key(path)) {
            *key.slot(raw) = Some(Setting::new(value, Origin::Env(alias.to_string())));
        }
    }
    let host = env.var(REVERB_SERVER_HOST);
    let port = env.var(REVERB_SERVER_PORT);
    if host.is_some() || port.is_some() {
        let origin = format!("{REVERB_SERVER_HOST}/{REVERB_SERVER_PORT}");
        let listen = format!(
            "{}:{}",
            host.as_deref().unwrap_or("0.0.0.0"),
            port.as_deref().unwrap_or("8080")
        );
        raw.edge.listen = Some(Setting::new(listen, Origin::Env(origin)));
    }
    for key in KEYS {
        let name = key.env_name();
        if let Some(value) = env.var(&name) {
            *key.slot(raw) = Some(Setting::new(value, Origin::Env(name)));
        }
    }
}

/// The table `herald config env` prints.
pub fn describe() -> String {
    let mut out = String::from("key\tenvironment\talso read from\tmeaning\n");
    for key in KEYS {
        let mut aliases: Vec<&str> = ALIASES
            .iter()
            .filter(|(_, path)| *path == key.path)
            .map(|(alias, _)| *alias)
            .collect();
        if key.path == "edge.listen" {
            aliases.push("REVERB_SERVER_HOST + REVERB_SERVER_PORT");
        }
        let aliases = if aliases.is_empty() {
            "-".to_string()
        } else {
            aliases.join(", ")
        };
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            key.path,
            key.env_name(),
            aliases,
            key.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_names_follow_the_path() {
        assert_eq!(
            key("hub.http_listen").unwrap().env_name(),
            "HERALD_HUB__HTTP_LISTEN"
        );
        assert!(KEYS.iter().all(|k| key(k.path).is_some()));
    }

    #[test]
    fn reverb_names_set_the_app_and_herald_names_win() {
        let mut raw = RawConfig::default();
        apply_env(
            &mut raw,
            &env(&[
                ("REVERB_APP_ID", "42"),
                ("REVERB_APP_KEY", "reverb-key"),
                ("HERALD_APP__KEY", "herald-key"),
            ]),
        );
        assert_eq!(raw.app.id.unwrap().text, "42");
        let app_key = raw.app.key.unwrap();
        assert_eq!(app_key.text, "herald-key");
        assert_eq!(app_key.origin, Origin::Env("HERALD_APP__KEY".into()));
    }

    #[test]
    fn reverb_server_host_and_port_set_the_websocket_address() {
        let mut raw = RawConfig::default();
        apply_env(&mut raw, &env(&[("REVERB_SERVER_PORT", "6001")]));
        assert_eq!(raw.edge.listen.unwrap().text, "0.0.0.0:6001");
    }
}
