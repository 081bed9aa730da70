//! The configuration as given, before defaults and validation: every value is an optional
//! [`Setting`] that remembers where it came from, so a bad value is reported with its key and
//! its source (file, environment variable or flag).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File,
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
    /// A default of the command (e.g. `herald dev`'s loopback addresses).
    CommandDefault(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => f.write_str("in the config file"),
            Self::Env(name) => write!(f, "from {name}"),
            Self::Flag(name) => write!(f, "from {name}"),
            Self::CommandDefault(command) => write!(f, "the default of {command}"),
        }
    }
}

/// One configured value, as text, with its origin. Lists are comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value as text.
    pub text: String,
    /// Where it came from.
    pub origin: Origin,
}

impl Setting {
    /// A value with its origin.
    pub fn new(text: impl Into<String>, origin: Origin) -> Self {
        Self {
            text: text.into(),
            origin,
        }
    }
}

struct SettingVisitor;

impl<'de> Visitor<'de> for SettingVisitor {
    type Value = Setting;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean or list of them")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Setting, E> {
        Ok(Setting::new(value, Origin::File))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Setting, E> {
        Ok(Setting::new(value.to_string(), Origin::File))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Setting, E> {
        Ok(Setting::new(value.to_string(), Origin::File))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Setting, E> {
        Ok(Setting::new(value.to_string(), Origin::File))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Setting, E> {
        Ok(Setting::new(value.to_string(), Origin::File))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Setting, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Setting>()? {
            items.push(item.text);
        }
        Ok(Setting::new(items.join(","), Origin::File))
    }
}

impl<'de> Deserialize<'de> for Setting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SettingVisitor)
    }
}

/// `[cluster]`: what all hubs and edges of a deployment share.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// The key link tokens are signed with.
    pub key: Option<Setting>,
}

/// `[hub]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHub {
    /// HTTP API address.
    pub http_listen: Option<Setting>,
    /// QUIC link address (UDP).
    pub link_listen: Option<Setting>,
    /// Link certificate chain (PEM file).
    pub tls_cert: Option<Setting>,
    /// Link private key (PEM file).
    pub tls_key: Option<Setting>,
    /// Registry shards.
    pub registry_shards: Option<Setting>,
    /// Channel streams per edge.
    pub channel_streams: Option<Setting>,
    /// Frames queued per channel stream.
    pub stream_queue: Option<Setting>,
    /// Events kept per channel.
    pub history_max_events: Option<Setting>,
    /// Seconds events stay in history.
    pub history_max_age_secs: Option<Setting>,
    /// Largest HTTP request body.
    pub body_limit_bytes: Option<Setting>,
    /// Longest HTTP request.
    pub request_timeout_secs: Option<Setting>,
    /// Seconds of link silence before an edge is considered gone.
    pub link_idle_timeout_secs: Option<Setting>,
    /// Seconds a cache channel keeps its last event.
    pub cache_ttl_secs: Option<Setting>,
    /// Milliseconds between two subscription-count announcements of a channel.
    pub subscription_count_interval_ms: Option<Setting>,
}

/// `[edge]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEdge {
    /// WebSocket address.
    pub listen: Option<Setting>,
    /// Admin HTTP address.
    pub admin_listen: Option<Setting>,
    /// Hub link addresses.
    pub hubs: Option<Setting>,
    /// The edge's availability zone.
    pub zone: Option<Setting>,
    /// CA certificate (PEM file) the hub certificates chain to.
    pub hub_ca: Option<Setting>,
    /// SHA-256 pins of hub certificates.
    pub hub_cert_sha256: Option<Setting>,
    /// The name hub certificates carry.
    pub hub_server_name: Option<Setting>,
    /// Seconds of client silence before a server ping.
    pub activity_timeout_secs: Option<Setting>,
    /// Seconds to wait for the pong.
    pub pong_timeout_secs: Option<Setting>,
    /// Largest client message.
    pub max_message_bytes: Option<Setting>,
    /// WebSocket read buffer per socket.
    pub read_buffer_bytes: Option<Setting>,
    /// Frames queued per socket.
    pub outbox_frames: Option<Setting>,
    /// Bytes queued per socket.
    pub outbox_bytes: Option<Setting>,
    /// Seconds to drain on shutdown.
    pub drain_timeout_secs: Option<Setting>,
    /// Local index shards.
    pub index_shards: Option<Setting>,
    /// Seconds of link silence before the hub is considered gone.
    pub link_idle_timeout_secs: Option<Setting>,
}

/// `[redis]`: joining a region of hubs through Redis.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// Whether the hub joins a region.
    pub enabled: Option<Setting>,
    /// `redis://` or `rediss://` URL.
    pub url: Option<Setting>,
    /// Host (when no URL).
    pub host: Option<Setting>,
    /// Port.
    pub port: Option<Setting>,
    /// ACL user name.
    pub username: Option<Setting>,
    /// Password or ElastiCache auth token.
    pub password: Option<Setting>,
    /// Database index.
    pub db: Option<Setting>,
    /// Whether to use TLS.
    pub tls: Option<Setting>,
    /// ElastiCache replication group to discover the primary endpoint of.
    pub elasticache_replication_group: Option<Setting>,
    /// Key prefix.
    pub prefix: Option<Setting>,
    /// Seconds a hub counts as alive after its last heartbeat.
    pub hub_ttl_secs: Option<Setting>,
    /// Seconds to stay subscribed after the last interest.
    pub linger_secs: Option<Setting>,
}

/// One app (`[app]` or an entry of `[[apps]]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    /// App id.
    pub id: Option<Setting>,
    /// App key.
    pub key: Option<Setting>,
    /// App secret.
    pub secret: Option<Setting>,
    /// Whether the app is enabled.
    pub enabled: Option<Setting>,
    /// Largest event data.
    pub max_event_data_bytes: Option<Setting>,
    /// Most channels per trigger.
    pub max_channels_per_trigger: Option<Setting>,
    /// Most events per batch.
    pub max_batch_events: Option<Setting>,
    /// Whether client events are allowed.
    pub client_events: Option<Setting>,
    /// Client events per socket per second.
    pub client_events_per_second: Option<Setting>,
    /// Seconds a socket has to sign in (authorized connections).
    pub user_authentication_timeout_secs: Option<Setting>,
    /// Whether subscription-count events are sent.
    pub subscription_count_events: Option<Setting>,
    /// Whether watchlist events are sent.
    pub watchlist_events: Option<Setting>,
    /// Most users per presence channel.
    pub max_presence_members: Option<Setting>,
    /// Largest presence `user_info`.
    pub max_user_info_bytes: Option<Setting>,
}

impl RawApp {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.key.is_none() && self.secret.is_none()
    }
}

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[cluster]`.
    #[serde(default)]
    pub cluster: RawCluster,
    /// `[hub]`.
    #[serde(default)]
    pub hub: RawHub,
    /// `[edge]`.
    #[serde(default)]
    pub edge: RawEdge,
    /// `[redis]`.
    #[serde(default)]
    pub redis: RawRedis,
    /// `[app]`: one app, also set by `REVERB_APP_*` and `--app-*`.
    #[serde(default)]
    pub app: RawApp,
    /// `[[apps]]`: more apps.
    #[serde(default)]
    pub apps: Vec<RawApp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_lists_become_text() {
        let raw: RawConfig = toml::from_str(
            r#"
            [edge]
            hubs = ["a:1", "b:2"]
            drain_timeout_secs = 25
            [[apps]]
            id = "1"
            enabled = false
            "#,
        )
        .unwrap();
        assert_eq!(raw.edge.hubs.unwrap().text, "a:1,b:2");
        assert_eq!(raw.edge.drain_timeout_secs.unwrap().text, "25");
        assert_eq!(raw.apps[0].enabled.as_ref().unwrap().text, "false");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = toml::from_str::<RawConfig>("[hub]\nhttp_listn = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("http_listn"), "{error}");
    }
}
