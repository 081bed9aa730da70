//! Redis key and channel names. Everything lives under one prefix (`redis.prefix`), so several
//! environments or deployments can share a Redis (with the database index, `redis.db`, as a
//! second separator). Channel names cannot contain `:`, so `{app}:{channel}` splits on its last
//! `:` even when an app id contains one.

use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::ids::{AppId, HubId};

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

    /// The pub/sub channel a channel's events are published on.
    pub fn events(&self, key: &ChannelKey) -> String {
        format!("{}:ev:{}:{}", self.prefix, key.app, key.channel)
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

    /// A hub's subscription counts for one app (channel → count).
    pub fn counts(&self, hub: HubId, app: &AppId) -> String {
        format!("{}:cnt:{hub}:{app}", self.prefix)
    }

    /// The apps a hub has counts for.
    pub fn count_apps(&self, hub: HubId) -> String {
        format!("{}:cnta:{hub}", self.prefix)
    }

    /// The presence channels a hub holds sockets in (`{app}\n{channel}`).
    pub fn hub_presence(&self, hub: HubId) -> String {
        format!("{}:hp:{hub}", self.prefix)
    }

    /// A presence channel's sockets (socket → `{hub}\n{user}`).
    pub fn presence_sockets(&self, key: &ChannelKey) -> String {
        format!("{}:ps:{}:{}", self.prefix, key.app, key.channel)
    }

    /// The lock one hub takes to reap a dead hub.
    pub fn reap_lock(&self, hub: HubId) -> String {
        format!("{}:reap:{hub}", self.prefix)
    }

    /// The lock that spaces out a channel's subscription-count announcements.
    pub fn count_announcement(&self, key: &ChannelKey) -> String {
        format!("{}:sca:{}:{}", self.prefix, key.app, key.channel)
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
}
