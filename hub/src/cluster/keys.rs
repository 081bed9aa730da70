//! Every Redis key and pub/sub channel name, in one place — for Rust here, and for the Lua
//! scripts, which receive every key they touch in `KEYS` (see [`CHANNEL_KINDS`]).
//!
//! Everything lives under one prefix (`redis.prefix`, which holds no `{` or `}`), so several
//! environments or deployments can share a Redis (with the database index, `redis.db`, as a
//! second separator).
//!
//! # Placement on a Redis Cluster
//! A script may only touch keys of one hash slot, so keys are grouped by **hash tag** (the text
//! between the first `{` and the next `}` decides the slot):
//! - **Per channel**, `{prefix}:{kind}:{{app}:{channel}}` — every key of one channel, and its
//!   pub/sub channel (`ev`, published with `SPUBLISH` on a cluster), share the tag
//!   `{app}:{channel}`, so each channel script runs on one shard and channels spread over all
//!   shards. Channel names cannot contain `:`, so `{app}:{channel}` splits on its last `:` even
//!   when an app id contains one; an app id containing `}` only shortens the tag, identically for
//!   every key of the channel.
//! - **Per app**, `{prefix}:{kind}:{{app}}` — the online users, the watchlist change counter,
//!   each hub's online users of the app, and the app's channels with a count: the watchlist
//!   script touches them together.
//! - **Per hub and region-wide** — the live hubs, and each hub's own indexes (the channels where
//!   it holds presence sockets or counts, its connections, its apps with online users, its reap
//!   lock): never touched by a script, only by single-key commands, so they need no tag.
//!   Indexes only a hub's own writer adds to (`hp`, `hc`, `onla`) are kept as supersets: an entry
//!   is added before the script that needs it, and reaping an entry that holds nothing is a no-op.
//! - **Webhooks** share the tag `{wh}` (their scripts move events between queues); a channel's
//!   waiting removal webhooks (`whp`) are the channel's.
//!
//! | scope | kind | key | what |
//! |---|---|---|---|
//! | channel | `ev` | `P:ev:{A:C}` | pub/sub channel of the channel's events |
//! | channel | `seq`, `hist`, `cache` | `P:seq:{A:C}` … | sequence, history stream, cached event |
//! | channel | `ps`, `pn`, `pu` | `P:ps:{A:C}` … | presence: socket → `{hub}\n{user}`, user → sockets, user → info |
//! | channel | `cnt` | `P:cnt:{A:C}` | subscription counts: edge → `{session}:{hub}:{count}` |
//! | channel | `sca` | `P:sca:{A:C}` | lock spacing out subscription-count announcements |
//! | channel | `whp` | `P:whp:{A:C}` | webhook removals waiting their delay: member of `{wh}:delayed` → due ms |
//! | channel | `pub` | `P:pub:{A:C}:{id}` | a publication's sequence, kept a minute, so a retried publish is answered, not repeated |
//! | app | `chs` | `P:chs:{A}` | channels that may have a subscription count (a superset; queries filter) |
//! | app | `online`, `wln`, `onlh` | `P:online:{A}`, `P:wln:{A}`, `P:onlh:{A}:H` | per user the hubs that have them online, the number of the app's latest watchlist change, a hub's online users |
//! | app | `wl` | `P:wl:{A}` | pub/sub channel of watchlist changes (classic `PUBLISH`: every hub hears every app's) |
//! | app | `wlc` | `P:wlc:{A}:{n}:{watcher}` | the claim on telling a watcher of change `n` |
//! | hub | `hubs` | `P:hubs` | live hubs (score: when their heartbeat expires, ms) |
//! | hub | `hp`, `hc`, `onla` | `P:hp:H` … | a hub's presence channels, counted channels, apps with online users |
//! | hub | `hconn` | `P:hconn:H` | a hub's edges' connections: edge → JSON `[[app, count], …]` |
//! | app | `conw`, `conev` | `P:conw:{A}`, `P:conev:{A}` | a debug console watches the app (expires, refreshed); pub/sub channel of the app's console events (classic `PUBLISH`, only while watched) |
//! | hub | `reap` | `P:reap:H` | the lock one hub takes to reap a dead hub |
//! | region | `{wh}:q:{endpoint}`, `{wh}:delayed`, `{wh}:miss:…`, `{wh}:courier`, `{wh}:queued:…`, `{wh}:undone:…` | `P:{wh}:…` | webhook queues, delayed removals, cache-miss once, courier lease, removals queued (and arrivals after them) on a Redis Cluster |
//!
//! On one Redis the channel scripts that decide a removal webhook (`channel_vacated`,
//! `member_removed`) add it to, or take it from, the region's delayed set (`{wh}:delayed`,
//! received as the last of `KEYS`) in the same step. On a Redis Cluster that set is in another
//! slot: the hubs keep it around the scripts, as `chs` — a marker of the channel before a script
//! that may decide a removal, its check after a script that did
//! ([`Keys::webhook_marker`], [`Keys::webhook_check`]; `hub/src/webhooks/region.rs`).

use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::ids::{AppId, HubId};

/// The kinds of a channel's keys, in the order channel scripts receive them in `KEYS`.
pub const CHANNEL_KINDS: [&str; 10] = [
    "seq", "hist", "cache", "ev", "ps", "pn", "pu", "cnt", "sca", "whp",
];

/// The prelude of channel scripts: `key(kind)` names the channel's key of that kind, from
/// `KEYS` (in [`CHANNEL_KINDS`] order, then the region's delayed webhooks). Scripts also take the prefix, the app id and the channel
/// name as their first three arguments (`P`, `A`, `C`).
pub const LUA_KEYS: &str = r#"
local P, A, C = ARGV[1], ARGV[2], ARGV[3]
local KIND = {}
for i, kind in ipairs({'seq', 'hist', 'cache', 'ev', 'ps', 'pn', 'pu', 'cnt', 'sca', 'whp'}) do KIND[kind] = KEYS[i] end
local function key(kind) return KIND[kind] end
local function webhook_delayed() if KEYS[11] == KIND['whp'] then return nil end return KEYS[11] end
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
        format!("{}:{kind}:{{{}:{}}}", self.prefix, key.app, key.channel)
    }

    /// Every key of a channel, in [`CHANNEL_KINDS`] order: a channel script's `KEYS` (before
    /// the region's delayed webhooks).
    pub fn channel_keys(&self, key: &ChannelKey) -> [String; 10] {
        CHANNEL_KINDS.map(|kind| self.channel(kind, key))
    }

    /// The pub/sub channel a channel's events are published on.
    pub fn events(&self, key: &ChannelKey) -> String {
        self.channel("ev", key)
    }

    /// The channel key of a pub/sub channel name, if it is one of ours.
    pub fn parse_events(&self, name: &str) -> Option<ChannelKey> {
        let rest = name
            .strip_prefix(&self.prefix)?
            .strip_prefix(":ev:{")?
            .strip_suffix('}')?;
        let (app, channel) = rest.rsplit_once(':')?;
        Some(ChannelKey::new(
            AppId::new(app),
            ChannelName::parse(channel).ok()?,
        ))
    }

    /// A channel's history stream.
    pub fn history(&self, key: &ChannelKey) -> String {
        self.channel("hist", key)
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

    /// The sequence a publication got, under its id (`{hub}:{counter}`), so a publish retried
    /// after a lost reply is answered with it rather than published again; in the channel's
    /// hash tag, beside the channel's other keys.
    pub fn publication(&self, key: &ChannelKey, id: &str) -> String {
        format!("{}:{id}", self.channel("pub", key))
    }

    /// The channels of an app that may have a subscription count (a superset).
    pub fn app_channels(&self, app: &AppId) -> String {
        format!("{}:chs:{{{app}}}", self.prefix)
    }

    /// The pattern of every app's watchlist channel.
    pub fn watchlist_pattern(&self) -> String {
        format!("{}:wl:*", self.prefix)
    }

    /// An app's watchlist channel.
    pub fn watchlist(&self, app: &AppId) -> String {
        format!("{}:wl:{{{app}}}", self.prefix)
    }

    /// The app of a watchlist channel name, if it is one of ours.
    pub fn parse_watchlist(&self, name: &str) -> Option<AppId> {
        let app = name
            .strip_prefix(&self.prefix)?
            .strip_prefix(":wl:{")?
            .strip_suffix('}')?;
        Some(AppId::new(app))
    }

    /// The users of an app a hub has online.
    pub fn hub_online(&self, app: &AppId, hub: HubId) -> String {
        format!("{}:onlh:{{{app}}}:{hub}", self.prefix)
    }

    /// The apps a hub may have users online in (a superset).
    pub fn hub_online_apps(&self, hub: HubId) -> String {
        format!("{}:onla:{hub}", self.prefix)
    }

    /// Per user of an app, how many hubs have them online.
    pub fn online(&self, app: &AppId) -> String {
        format!("{}:online:{{{app}}}", self.prefix)
    }

    /// The number of an app's latest watchlist change.
    pub fn watchlist_changes(&self, app: &AppId) -> String {
        format!("{}:wln:{{{app}}}", self.prefix)
    }

    /// Taken by the one hub that tells `watcher` of an app's watchlist change number `n`.
    pub fn watchlist_claim(&self, app: &AppId, n: u64, watcher: &str) -> String {
        format!("{}:wlc:{{{app}}}:{n}:{watcher}", self.prefix)
    }

    /// The sorted set of live hubs (score: when their heartbeat expires, in ms).
    pub fn hubs(&self) -> String {
        format!("{}:hubs", self.prefix)
    }

    /// The presence channels a hub may hold sockets in (`{app}\n{channel}`, a superset).
    pub fn hub_presence(&self, hub: HubId) -> String {
        format!("{}:hp:{hub}", self.prefix)
    }

    /// The channels where a hub may have written subscription counts (`{app}\n{channel}`).
    pub fn hub_counts(&self, hub: HubId) -> String {
        format!("{}:hc:{hub}", self.prefix)
    }

    /// A hub's edges' client connections per app (a hash: edge id → JSON `[[app, count], …]`,
    /// expiring with the hub's heartbeat).
    pub fn hub_connections(&self, hub: &str) -> String {
        format!("{}:hconn:{hub}", self.prefix)
    }

    /// Set (with a short expiry, refreshed) while a debug console watches `app`; tagged by the
    /// app like its other keys.
    pub fn console_watch(&self, app: &AppId) -> String {
        format!("{}:conw:{{{app}}}", self.prefix)
    }

    /// The pub/sub channel of `app`'s console events (classic `PUBLISH`, which a Redis Cluster
    /// hands to every node's subscribers: fine for a console's rate, and only while watched).
    pub fn console_events(&self, app: &AppId) -> String {
        format!("{}:conev:{{{app}}}", self.prefix)
    }

    /// The app of a console events channel, if it is one of ours.
    pub fn parse_console_events(&self, name: &str) -> Option<AppId> {
        let app = name
            .strip_prefix(&self.prefix)?
            .strip_prefix(":conev:{")?
            .strip_suffix('}')?;
        Some(AppId::new(app))
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

    /// A Redis Cluster's entry of a channel in the delayed set ([`Keys::webhook_delayed`]): due
    /// when the channel's next removal is, added by the hub whose script reported the removal
    /// (a member, not a key).
    pub fn webhook_check(key: &ChannelKey) -> String {
        format!("c\n{}\n{}", key.app, key.channel)
    }

    /// A Redis Cluster's marker of a channel in the delayed set, added before a channel script
    /// that may decide a removal and due the removal delay later (pushed later by every new
    /// marking): the courier looks at the channel then, so a removal whose hub died before it
    /// added [`Keys::webhook_check`] is not lost (a member, not a key).
    pub fn webhook_marker(key: &ChannelKey) -> String {
        format!("p\n{}\n{}", key.app, key.channel)
    }

    /// Set (for an hour) once the delayed removal `member` due at `due` is queued, so it is
    /// queued once however often a courier claims it.
    pub fn webhook_queued(&self, member: &str, due: &str) -> String {
        format!("{}:{{wh}}:queued:{due}:{member}", self.prefix)
    }

    /// Set once the arrival that undid the queued removal `member` due at `due` is queued.
    pub fn webhook_undone(&self, member: &str, due: &str) -> String {
        format!("{}:{{wh}}:undone:{due}:{member}", self.prefix)
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

    /// The hash tag Redis Cluster computes a key's slot from.
    fn tag(key: &str) -> &str {
        let Some(open) = key.find('{') else {
            return key;
        };
        match key[open + 1..].find('}') {
            Some(close) if close > 0 => &key[open + 1..open + 1 + close],
            _ => key,
        }
    }

    fn channel(app: &str, name: &str) -> ChannelKey {
        ChannelKey::new(AppId::new(app), ChannelName::parse(name).unwrap())
    }

    #[test]
    fn event_channels_round_trip_even_with_colons_and_braces_in_app_ids() {
        let keys = Keys::new("herald:prod");
        let key = channel("a:b", "presence-x");
        let name = keys.events(&key);
        assert_eq!(name, "herald:prod:ev:{a:b:presence-x}");
        assert_eq!(keys.parse_events(&name), Some(key));
        assert_eq!(Keys::new("other").parse_events(&name), None);
        let odd = channel("a}{b", "x");
        assert_eq!(keys.parse_events(&keys.events(&odd)), Some(odd));
    }

    #[test]
    fn every_key_of_a_channel_shares_one_hash_tag() {
        let keys = Keys::new("p");
        for (app, name) in [("a", "c"), ("a:b", "private-c"), ("a}b", "c"), ("{a", "c")] {
            let key = channel(app, name);
            let all = keys.channel_keys(&key);
            assert!(all.iter().all(|k| tag(k) == tag(&all[0])), "{all:?}");
            assert_eq!(tag(&keys.events(&key)), tag(&all[0]));
            assert_eq!(tag(&keys.publication(&key, "7:1")), tag(&all[0]));
            assert_eq!(all[0], format!("p:seq:{{{app}:{name}}}"));
        }
        assert_ne!(
            tag(&keys.events(&channel("a", "c"))),
            tag(&keys.events(&channel("a", "d")))
        );
    }

    #[test]
    fn an_apps_watchlist_keys_share_one_hash_tag() {
        let keys = Keys::new("p");
        let app = AppId::new("a:1");
        let tagged = [
            keys.online(&app),
            keys.watchlist_changes(&app),
            keys.hub_online(&app, HubId(7)),
            keys.watchlist(&app),
            keys.app_channels(&app),
        ];
        assert!(tagged.iter().all(|k| tag(k) == "a:1"), "{tagged:?}");
        assert_eq!(keys.parse_watchlist(&keys.watchlist(&app)), Some(app));
    }

    #[test]
    fn console_channels_round_trip() {
        let keys = Keys::new("herald");
        let app = AppId::new("a:1");
        assert_eq!(keys.console_events(&app), "herald:conev:{a:1}");
        assert_eq!(tag(&keys.console_watch(&app)), "a:1");
        assert_eq!(
            keys.parse_console_events(&keys.console_events(&app)),
            Some(app)
        );
        assert_eq!(keys.parse_console_events("herald:ev:{a:c}"), None);
    }

    #[test]
    fn lua_names_match_the_rust_names() {
        let kinds = CHANNEL_KINDS.map(|kind| format!("'{kind}'")).join(", ");
        assert!(LUA_KEYS.contains(&format!("{{{kinds}}}")), "{kinds}");
        assert_eq!(Keys::new("p").hub_counts(HubId(7)), "p:hc:0000000000000007");
        let keys = Keys::new("p");
        let key = ChannelKey::new(AppId::new("a"), ChannelName::parse("c").unwrap());
        assert_eq!(keys.webhook_pending(&key), "p:whp:{a:c}");
        assert_eq!(keys.webhook_delayed(), "p:{wh}:delayed");
        assert_eq!(keys.channel_keys(&key).len(), CHANNEL_KINDS.len());
    }
}
