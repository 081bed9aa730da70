//! Every Redis key and pub/sub channel name, in one place — for Rust here, and for the Lua
//! scripts through [`LUA_KEYS`], which derives the same names.
//!
//! Everything lives under one prefix (`redis.prefix`), so several environments or deployments
//! can share a Redis (with the database index, `redis.db`, as a second separator). A channel's
//! keys are `{prefix}:{kind}:{app}:{channel}`; channel names cannot contain `:`, so
//! `{app}:{channel}` splits on its last `:` even when an app id contains one. (Should Herald run
//! on Redis Cluster, `{app}:{channel}` is the part to wrap in a hash tag so a channel's keys
//! share a slot.)
//!
//! | kind | key | what |
//! |---|---|---|
//! | channel | `ev` | pub/sub channel of the channel's events |
//! | channel | `seq`, `hist`, `cache` | sequence, history stream, cached event |
//! | channel | `ps`, `pn`, `pu` | presence: socket → `{hub}\n{user}`, user → sockets, user → info |
//! | channel | `cnt` | subscription counts: edge → `{session}:{hub}:{count}` |
//! | channel | `sca` | lock spacing out subscription-count announcements |
//! | channel | `whp` | webhook removals waiting their delay: member of `{wh}:delayed` → due ms |
//! | app | `chs` | channels with a subscription count |
//! | app | `online`, `wl`, `wln`, `wlc` | who is online, watchlist changes and claims |
//! | hub | `hubs` | live hubs (score: when their heartbeat expires, ms) |
//! | hub | `phs`, `hp`, `hc`, `onlh` | a hub's presence sockets and channels, counted channels, online users |
//! | hub | `reap` | the lock one hub takes to reap a dead hub |
//! | region | `{wh}:q:{endpoint}`, `{wh}:delayed`, `{wh}:miss:…`, `{wh}:courier` | webhook queues, delayed removals, cache-miss once, courier lease |

use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::ids::{AppId, HubId};

/// The key naming the Lua scripts use, mirroring [`Keys`]. Scripts take the prefix, the app id
/// and the channel name as their first three arguments (`P`, `A`, `C`).
pub const LUA_KEYS: &str = r#"
local P, A, C = ARGV[1], ARGV[2], ARGV[3]
local function key(kind) return P .. ':' .. kind .. ':' .. A .. ':' .. C end
local function app_channels() return P .. ':chs:' .. A end
local function hub_sockets(hub) return P .. ':phs:' .. hub .. ':' .. A .. ':' .. C end
local function hub_channels(hub) return P .. ':hp:' .. hub end
local function hub_counts(hub) return P .. ':hc:' .. hub end
local function hubs() return P .. ':hubs' end
local function webhook_delayed() return P .. ':{wh}:delayed' end
"#;

/// Names of everything Herald keeps in Redis.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn channel(&self, kind: &str, key: &ChannelKey) -> String {
        format!("{}:{kind}:{}:{}", self.prefix, key.app, key.channel)
    }

    /// The pub/sub channel a channel's events are published on.
    pub fn events(&self, key: &ChannelKey) -> String {
        self.channel("ev", key)
    }

    /// The channel key of a pub/sub channel name, if it is one of ours.
    pub fn parse_events(&self, name: &str) -> Option<ChannelKey> {
        let rest = name.strip_prefix(&self.prefix)?.strip_prefix(":ev:")?;
        let (app, channel) = rest.rsplit_once(':')?;
        Some(ChannelKey::new(
            AppId::new(app),
            ChannelName::parse(channel).ok()?,
        ))
    }

    /// A presence channel's sockets (socket → `{hub}\n{user}`).
    pub fn presence_sockets(&self, key: &ChannelKey) -> String {
        self.channel("ps", key)
    }

    /// A channel's subscription counts (edge → `{session}:{hub}:{count}`).
    pub fn counts(&self, key: &ChannelKey) -> String {
        self.channel("cnt", key)
    }

    /// The lock that spaces out a channel's subscription-count announcements.
    pub fn count_announcement(&self, key: &ChannelKey) -> String {
        self.channel("sca", key)
    }

    /// The channels of an app that have a subscription count.
    pub fn app_channels(&self, app: &AppId) -> String {
        format!("{}:chs:{app}", self.prefix)
    }

    /// The pattern of every app's watchlist channel.
    pub fn watchlist_pattern(&self) -> String {
        format!("{}:wl:*", self.prefix)
    }

    /// The app of a watchlist channel name, if it is one of ours.
    pub fn parse_watchlist(&self, name: &str) -> Option<AppId> {
        let app = name.strip_prefix(&self.prefix)?.strip_prefix(":wl:")?;
        Some(AppId::new(app))
    }

    /// The users a hub has online (`{app}\n{user}`).
    pub fn hub_online(&self, hub: HubId) -> String {
        format!("{}:onlh:{hub}", self.prefix)
    }

    /// Per user of an app, how many hubs have them online.
    pub fn online(&self, app: &AppId) -> String {
        format!("{}:online:{app}", self.prefix)
    }

    /// The number of an app's latest watchlist change.
    pub fn watchlist_changes(&self, app: &AppId) -> String {
        format!("{}:wln:{app}", self.prefix)
    }

    /// Taken by the one hub that tells `watcher` of an app's watchlist change number `n`.
    pub fn watchlist_claim(&self, app: &AppId, n: u64, watcher: &str) -> String {
        format!("{}:wlc:{app}:{n}:{watcher}", self.prefix)
    }

    /// The sorted set of live hubs (score: when their heartbeat expires, in ms).
    pub fn hubs(&self) -> String {
        format!("{}:hubs", self.prefix)
    }

    /// The presence channels a hub holds sockets in (`{app}\n{channel}`).
    pub fn hub_presence(&self, hub: HubId) -> String {
        format!("{}:hp:{hub}", self.prefix)
    }

    /// The channels where a hub wrote subscription counts (`{app}\n{channel}`).
    pub fn hub_counts(&self, hub: HubId) -> String {
        format!("{}:hc:{hub}", self.prefix)
    }

    /// A hub's client connections per app (a hash `{app}` → count, expiring with the hub's
    /// heartbeat).
    pub fn hub_connections(&self, hub: &str) -> String {
        format!("{}:hconn:{hub}", self.prefix)
    }

    /// The lock one hub takes to reap a dead hub.
    pub fn reap_lock(&self, hub: HubId) -> String {
        format!("{}:reap:{hub}", self.prefix)
    }

    /// The queue (a stream) of one webhook endpoint. Webhook keys are region-wide, not per
    /// channel, and scripts move events between them atomically, so they share one hash tag
    /// (`{wh}`) and stay together on a Redis Cluster.
    pub fn webhook_queue(&self, endpoint: impl std::fmt::Display) -> String {
        format!("{}:{{wh}}:q:{endpoint}", self.prefix)
    }

    /// The delayed webhook events (`channel_vacated`, `member_removed`): a sorted set scored
    /// by the Redis time, in ms, they are due at.
    pub fn webhook_delayed(&self) -> String {
        format!("{}:{{wh}}:delayed", self.prefix)
    }

    /// A channel's webhook removals waiting for their delay (`channel_vacated`,
    /// `member_removed`): a hash from their member of [`Keys::webhook_delayed`] to the Redis
    /// time, in ms, they are due at. It is the channel's key (written by the scripts that decide
    /// occupancy and membership), the delayed set only its index.
    pub fn webhook_pending(&self, key: &ChannelKey) -> String {
        self.channel("whp", key)
    }

    /// A key no channel's [`Keys::webhook_pending`] is (a member of the delayed set no hub can
    /// read has no record).
    pub fn webhook_pending_unknown(&self) -> String {
        format!("{}:whp:", self.prefix)
    }

    /// Set while a channel's `cache_miss` webhook was sent recently (sent once per period).
    pub fn webhook_once(&self, key: &ChannelKey) -> String {
        format!("{}:{{wh}}:miss:{}:{}", self.prefix, key.app, key.channel)
    }

    /// The lease of the one hub that delivers the region's webhooks.
    pub fn webhook_courier(&self) -> String {
        format!("{}:{{wh}}:courier", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_channels_round_trip_even_with_colons_in_app_ids() {
        let keys = Keys::new("herald:prod");
        let key = ChannelKey::new(AppId::new("a:b"), ChannelName::parse("presence-x").unwrap());
        let name = keys.events(&key);
        assert_eq!(name, "herald:prod:ev:a:b:presence-x");
        assert_eq!(keys.parse_events(&name), Some(key));
        assert_eq!(Keys::new("other").parse_events(&name), None);
    }

    #[test]
    fn lua_names_match_the_rust_names() {
        // The Lua prelude builds `P .. ':' .. kind .. ':' .. A .. ':' .. C`, as `channel` does.
        let keys = Keys::new("p");
        let key = ChannelKey::new(AppId::new("a"), ChannelName::parse("c").unwrap());
        assert_eq!(keys.counts(&key), "p:cnt:a:c");
        assert_eq!(keys.presence_sockets(&key), "p:ps:a:c");
        assert!(LUA_KEYS.contains("P .. ':' .. kind .. ':' .. A .. ':' .. C"));
        assert_eq!(keys.app_channels(&AppId::new("a")), "p:chs:a");
        assert!(LUA_KEYS.contains("P .. ':chs:' .. A"));
        assert_eq!(keys.hub_counts(HubId(7)), "p:hc:0000000000000007");
        assert!(LUA_KEYS.contains("P .. ':hc:' .. hub"));
        assert_eq!(keys.hubs(), "p:hubs");
        assert_eq!(keys.webhook_pending(&key), "p:whp:a:c");
        assert_eq!(keys.webhook_delayed(), "p:{wh}:delayed");
        assert!(LUA_KEYS.contains("P .. ':{wh}:delayed'"));
    }
}
