//! Hubs of a region linked through Redis (R-HA-1, R-HA-2, R-HA-4, R-API-4).
//!
//! - **Events** are published by a Lua script that assigns the channel's next sequence, appends
//!   the event to the channel's history stream and `PUBLISH`es it, atomically
//!   ([`scripts`]). A hub receives a channel's events only while one of its edges wants the
//!   channel: the registry subscribes on the first interest and unsubscribes after the last one
//!   and a linger ([`bus`]).
//! - **History** serves edges that resume (after a failover, on another hub) and closes the gaps
//!   pub/sub leaves when a hub's connection drops.
//! - **Presence and counts** are kept in Redis so every hub answers every query the same way:
//!   presence sockets are owned by the hub that holds them, subscription counts are written per
//!   hub, and both count only while their hub's heartbeat is fresh. A live hub reaps a dead
//!   one's presence sockets — except those its edges re-asserted on another hub meanwhile
//!   ([`liveness`]).
//!
//! # Layout
//! - [`keys`] — key and channel names under the prefix.
//! - [`wire`] — the event body in Redis.
//! - [`scripts`] — the Lua scripts.
//! - [`bus`] — the pub/sub connection.
//! - [`counts`] — writing this hub's subscription counts, announcing counts to subscribers.
//! - [`liveness`] — heartbeat and reaping of dead hubs.
//! - [`online`] — who is online across the region, for watchlists.

pub mod bus;
pub mod counts;
pub mod keys;
pub mod liveness;
pub mod online;
pub mod scripts;
pub mod wire;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use herald_shared::channel::{ChannelKey, ChannelKind, ChannelName};
use herald_shared::event::{EventName, MEMBER_ADDED};
use herald_shared::ids::{AppId, HubId, SocketId};
use herald_shared::link::Event;
use herald_shared::presence::Member;
use herald_shared::time::UnixTime;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::metrics::TimedRedis;
use redis::{AsyncCommands, RedisError};

use crate::registry::{ChannelCounts, Lifetimes, Publication};
use bus::{BusHandle, BusState};
use counts::CountBoard;
use keys::Keys;
use scripts::Scripts;

/// How the hub reaches Redis and behaves in the region.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The Redis server (URL or host, port, password, database, TLS).
    pub redis: redis::Client,
    /// The prefix of every key and channel.
    pub prefix: String,
    /// How long a hub counts as alive after its last heartbeat; a dead hub's presence sockets
    /// are reaped within about this long plus one reaper round.
    pub hub_ttl: Duration,
    /// How long the hub stays subscribed to a channel after its last interest.
    pub linger: Duration,
    /// The longest wait between two connection attempts.
    pub max_backoff: Duration,
}

/// Why a cluster operation failed. All are dependency failures: answered 503, retried.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis answered with an error or could not be reached.
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
    /// The pub/sub connection is down.
    #[error(transparent)]
    Deaf(#[from] bus::BusDown),
    /// A script answered something unexpected.
    #[error("unexpected answer from Redis: {0}")]
    Reply(String),
}

/// A channel's state read from Redis.
#[derive(Debug)]
pub struct Fetched {
    /// The channel's current sequence.
    pub seq: u64,
    /// History after the requested sequence, oldest first.
    pub events: Vec<Event>,
    /// A cache channel's cached event.
    pub cached: Option<Event>,
}

/// What a presence join did in the region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Accepted; `snapshot` is the member list as of sequence `seq`.
    Accepted {
        /// The `subscription_succeeded` data.
        snapshot: String,
        /// Its sequence.
        seq: u64,
    },
    /// The channel is full.
    Full,
}

/// A cheap-to-clone handle to the region's shared state in Redis.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    hub_id: HubId,
    keys: Keys,
    scripts: Scripts,
    redis: ConnectionManager,
    bus: BusHandle,
    lifetimes: Lifetimes,
    hub_ttl: Duration,
    linger: Duration,
    counts: CountBoard,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("hub_id", &self.inner.hub_id)
            .field("prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// Now, in milliseconds since 1970 (the hubs set's scores use it).
fn unix_ms() -> u64 {
    UnixTime::from_system(SystemTime::now()).as_millis()
}

fn parse_seq(text: &str) -> Result<u64, ClusterError> {
    text.parse()
        .map_err(|_| ClusterError::Reply(format!("sequence {text:?}")))
}

/// The `subscription_succeeded` data for presence members given as `user, info, …`.
pub fn snapshot(pairs: &[String]) -> String {
    let members: BTreeSet<(&str, &str)> = pairs
        .chunks(2)
        .filter_map(|pair| match pair {
            [user, info] => Some((user.as_str(), info.as_str())),
            _ => None,
        })
        .collect();
    herald_shared::presence::presence_data(members)
}

impl Cluster {
    /// Connects lazily (the first command connects; failures are retried by every command).
    pub fn new(
        settings: &ClusterSettings,
        hub_id: HubId,
        lifetimes: Lifetimes,
        bus: BusHandle,
    ) -> Result<Self, ClusterError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(settings.max_backoff);
        let redis = ConnectionManager::new_lazy_with_config(settings.redis.clone(), config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                hub_id,
                keys: Keys::new(settings.prefix.clone()),
                scripts: Scripts::default(),
                redis,
                bus,
                lifetimes,
                hub_ttl: settings.hub_ttl,
                linger: settings.linger,
                counts: CountBoard::default(),
            }),
        })
    }

    /// This hub.
    pub fn hub_id(&self) -> HubId {
        self.inner.hub_id
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// How long to stay subscribed after the last interest.
    pub fn linger(&self) -> Duration {
        self.inner.linger
    }

    /// Whether the hub hears the region (its pub/sub connection is up).
    pub fn hears(&self) -> bool {
        self.inner.bus.state() == BusState::Up
    }

    fn channel_args<'a>(&'a self, invocation: &mut redis::ScriptInvocation<'a>, key: &ChannelKey) {
        invocation
            .arg(self.inner.keys.prefix())
            .arg(key.app.as_str())
            .arg(key.channel.as_str());
    }

    /// History bounds as script arguments: most events, and age in milliseconds.
    pub fn history_args(&self) -> (usize, u64) {
        let history = self.inner.lifetimes.history;
        (history.max_events, history.max_age.as_millis() as u64)
    }

    /// Publishes an event to the region; returns its sequence once Redis holds it.
    pub async fn publish(&self, publication: &Publication) -> Result<u64, ClusterError> {
        let body = wire::body(
            &publication.name,
            &publication.data,
            publication.exclude,
            publication.user_id.as_deref(),
        );
        let cached = publication.key.channel.is_cache() && !publication.name.is_reserved();
        let cache_ttl = if cached {
            self.inner.lifetimes.cache_ttl.as_millis() as u64
        } else {
            0
        };
        let (maxlen, history_ttl) = self.history_args();
        let mut invocation = self.inner.scripts.publish.prepare_invoke();
        self.channel_args(&mut invocation, &publication.key);
        invocation
            .arg(body)
            .arg(maxlen)
            .arg(history_ttl)
            .arg(cache_ttl);
        let seq: String = invocation.invoke_async(&mut self.connection()).await?;
        parse_seq(&seq)
    }

    /// Subscribes to a channel, then reads its sequence, history after `after`, and cache.
    pub async fn attach(
        &self,
        key: &ChannelKey,
        after: Option<u64>,
    ) -> Result<Fetched, ClusterError> {
        self.inner.bus.subscribe(key.clone()).await?;
        self.fetch(key, after).await
    }

    /// Unsubscribes from a channel.
    pub async fn detach(&self, key: &ChannelKey) {
        self.inner.bus.unsubscribe(key.clone()).await;
    }

    /// Reads a channel's sequence, history after `after`, and cache.
    pub async fn fetch(
        &self,
        key: &ChannelKey,
        after: Option<u64>,
    ) -> Result<Fetched, ClusterError> {
        let oldest =
            unix_ms().saturating_sub(self.inner.lifetimes.history.max_age.as_millis() as u64);
        let mut invocation = self.inner.scripts.fetch.prepare_invoke();
        self.channel_args(&mut invocation, key);
        invocation
            .arg(after.map(|a| a.to_string()).unwrap_or_default())
            .arg(oldest);
        let (seq, events, cached): (String, Vec<String>, String) =
            invocation.invoke_async(&mut self.connection()).await?;
        let decode = |text: &str| {
            wire::decode(key.clone(), text).map_err(|e| ClusterError::Reply(e.to_string()))
        };
        Ok(Fetched {
            seq: parse_seq(&seq)?,
            events: events.iter().map(|e| decode(e)).collect::<Result<_, _>>()?,
            cached: if cached.is_empty() {
                None
            } else {
                Some(decode(&cached)?)
            },
        })
    }

    /// Joins a socket to a presence channel in the region. `announce` publishes `member_added`
    /// for a new user (re-assertions after a reconnect pass `false`).
    pub async fn join(
        &self,
        key: &ChannelKey,
        socket: SocketId,
        member: &Member,
        limit: usize,
        announce: bool,
    ) -> Result<JoinOutcome, ClusterError> {
        let added = wire::body(
            &EventName::internal(MEMBER_ADDED),
            &member.added_data(),
            Some(socket),
            None,
        );
        let info = member.user_info.as_ref().map_or("null", |info| info.json());
        let (maxlen, history_ttl) = self.history_args();
        let mut invocation = self.inner.scripts.join.prepare_invoke();
        self.channel_args(&mut invocation, key);
        invocation
            .arg(self.inner.hub_id.to_string())
            .arg(socket.to_string())
            .arg(&member.user_id)
            .arg(info)
            .arg(limit.min(i64::MAX as usize))
            .arg(if announce { "1" } else { "0" })
            .arg(added)
            .arg(maxlen)
            .arg(history_ttl);
        let (outcome, seq, members): (String, String, Vec<String>) =
            invocation.invoke_async(&mut self.connection()).await?;
        match outcome.as_str() {
            "joined" | "existing" => Ok(JoinOutcome::Accepted {
                snapshot: snapshot(&members),
                seq: parse_seq(&seq)?,
            }),
            "full" => Ok(JoinOutcome::Full),
            other => Err(ClusterError::Reply(format!("join outcome {other:?}"))),
        }
    }

    /// Removes a socket from a presence channel in the region.
    pub async fn leave(&self, key: &ChannelKey, socket: SocketId) -> Result<(), ClusterError> {
        let (maxlen, history_ttl) = self.history_args();
        let mut invocation = self.inner.scripts.leave.prepare_invoke();
        self.channel_args(&mut invocation, key);
        invocation
            .arg(socket.to_string())
            .arg(maxlen)
            .arg(history_ttl);
        let _: i64 = invocation.invoke_async(&mut self.connection()).await?;
        Ok(())
    }

    /// The hubs whose heartbeat is fresh; each query reads them once.
    async fn live_hubs(&self) -> Result<HashSet<HubId>, ClusterError> {
        let hubs: Vec<String> = self
            .connection()
            .zrangebyscore(self.inner.keys.hubs(), unix_ms(), "+inf")
            .await?;
        Ok(hubs.iter().filter_map(|hub| hub.parse().ok()).collect())
    }

    /// Per channel of an app, its subscription count summed over the `live` hubs.
    async fn subscription_counts(
        &self,
        app: &AppId,
        live: &HashSet<HubId>,
    ) -> Result<HashMap<String, u64>, ClusterError> {
        if live.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for hub in live {
            pipe.hgetall(self.inner.keys.counts(*hub, app));
        }
        let per_hub: Vec<HashMap<String, u64>> = pipe.query_async(&mut self.connection()).await?;
        let mut total: HashMap<String, u64> = HashMap::new();
        for counts in per_hub {
            for (channel, count) in counts {
                *total.entry(channel).or_default() += count;
            }
        }
        Ok(total)
    }

    /// A channel's subscription count summed over the `live` hubs.
    async fn subscription_count_on(
        &self,
        key: &ChannelKey,
        live: &HashSet<HubId>,
    ) -> Result<u64, ClusterError> {
        if live.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for hub in live {
            pipe.hget(self.inner.keys.counts(*hub, &key.app), key.channel.as_str());
        }
        let per_hub: Vec<Option<u64>> = pipe.query_async(&mut self.connection()).await?;
        Ok(per_hub.into_iter().flatten().sum())
    }

    /// Each presence channel's users with a socket on a `live` hub, sorted; one round trip.
    async fn users_among(
        &self,
        keys: &[ChannelKey],
        live: &HashSet<HubId>,
    ) -> Result<Vec<Vec<String>>, ClusterError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.hgetall(self.inner.keys.presence_sockets(key));
        }
        let per_channel: Vec<HashMap<String, String>> =
            pipe.query_async(&mut self.connection()).await?;
        Ok(per_channel
            .into_iter()
            .map(|sockets| {
                let users: BTreeSet<String> = sockets
                    .into_values()
                    .filter_map(|entry| {
                        let (hub, user) = entry.split_once('\n')?;
                        live.contains(&hub.parse().ok()?).then(|| user.to_string())
                    })
                    .collect();
                users.into_iter().collect()
            })
            .collect())
    }

    /// The counts of an app's channels given their subscription counts: presence channels get
    /// their user counts.
    async fn with_user_counts(
        &self,
        app: &AppId,
        channels: Vec<(ChannelName, u64)>,
        live: &HashSet<HubId>,
    ) -> Result<Vec<(ChannelName, ChannelCounts)>, ClusterError> {
        let presence: Vec<ChannelKey> = channels
            .iter()
            .filter(|(channel, _)| channel.kind() == ChannelKind::Presence)
            .map(|(channel, _)| ChannelKey::new(app.clone(), channel.clone()))
            .collect();
        let mut users = self.users_among(&presence, live).await?.into_iter();
        Ok(channels
            .into_iter()
            .map(|(channel, subscription_count)| {
                let user_count = (channel.kind() == ChannelKind::Presence)
                    .then(|| users.next().map_or(0, |users| users.len() as u64));
                let counts = ChannelCounts {
                    subscription_count,
                    user_count,
                };
                (channel, counts)
            })
            .collect())
    }

    /// The users present in a presence channel, sorted; sockets of dead hubs do not count.
    pub async fn users(&self, key: &ChannelKey) -> Result<Vec<String>, ClusterError> {
        let live = self.live_hubs().await?;
        let mut users = self.users_among(std::slice::from_ref(key), &live).await?;
        Ok(users.pop().unwrap_or_default())
    }

    /// A channel's subscription count across the region.
    pub async fn subscription_count(&self, key: &ChannelKey) -> Result<u64, ClusterError> {
        let live = self.live_hubs().await?;
        self.subscription_count_on(key, &live).await
    }

    /// A channel's counts across the region.
    pub async fn counts(&self, key: &ChannelKey) -> Result<ChannelCounts, ClusterError> {
        let live = self.live_hubs().await?;
        let subscription_count = self.subscription_count_on(key, &live).await?;
        let channels = vec![(key.channel.clone(), subscription_count)];
        let mut counts = self.with_user_counts(&key.app, channels, &live).await?;
        Ok(counts.pop().map(|(_, counts)| counts).unwrap_or_default())
    }

    /// The occupied channels of an app starting with `prefix`, sorted by name.
    pub async fn list(
        &self,
        app: &AppId,
        prefix: &str,
    ) -> Result<Vec<(ChannelName, ChannelCounts)>, ClusterError> {
        let live = self.live_hubs().await?;
        let mut channels: Vec<(ChannelName, u64)> = self
            .subscription_counts(app, &live)
            .await?
            .into_iter()
            .filter(|(name, count)| *count > 0 && name.starts_with(prefix))
            .filter_map(|(name, count)| Some((ChannelName::parse(&name).ok()?, count)))
            .collect();
        channels.sort_by(|a, b| a.0.cmp(&b.0));
        self.with_user_counts(app, channels, &live).await
    }

    /// Records this hub's subscription count of a channel; written to Redis shortly.
    pub fn report_count(&self, key: ChannelKey, count: u64) {
        self.inner.counts.set(key, count);
    }

    /// The board of counts waiting to be written.
    pub fn count_board(&self) -> &CountBoard {
        &self.inner.counts
    }

    /// How long a hub counts as alive after a heartbeat.
    pub fn hub_ttl(&self) -> Duration {
        self.inner.hub_ttl
    }

    /// The scripts.
    pub fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    /// A connection to Redis: a cheap clone of the hub's one multiplexed connection, every
    /// command timed.
    pub fn connection(&self) -> TimedRedis<ConnectionManager> {
        TimedRedis(self.inner.redis.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn snapshots_have_pushers_shape() {
        let pairs: Vec<String> = ["b", "null", "a", r#"{"n":1}"#].map(String::from).to_vec();
        let value: Value = serde_json::from_str(&snapshot(&pairs)).unwrap();
        assert_eq!(
            value,
            json!({"presence": {"ids": ["a", "b"], "hash": {"a": {"n": 1}, "b": null}, "count": 2}})
        );
    }
}
