//! The seam between a hub alone and a hub in a region: what the registry, the watchlist, the
//! HTTP API and the link sessions need from "the region's shared state", with two
//! implementations chosen once, at the composition root (`server.rs`): [`memory`] (a hub alone:
//! the region is this process) and `cluster/` (hubs sharing Redis). Nothing above this module asks
//! which one it has.
//!
//! The region is shaped like Redis, the way Centrifuge keeps its `Broker` and
//! `PresenceManager` behind interfaces with a memory and a Redis implementation:
//! - **Requests from registry shards** never wait. A shard records what it decided on the
//!   [`Pending`] board — counts, presence joins and leaves, announcements, and which channels it
//!   follows — and the implementation takes them from there in order (group commit).
//! - **Answers and what the region heard** come back to the shard that owns the channel as
//!   [`Heard`] values on its inbox ([`Inboxes`]): events with their sequence numbers, fetches,
//!   durable counts, join outcomes, and "caught up after a reconnect". Watchlist changes go to
//!   the watchlist as [`Told`].
//! - **Queries and publications** (the HTTP API, client events, watchlist events) go through a
//!   [`Store`]; who is online goes through [`Online`].
//!
//! # Layout
//! - [`pending`] — the board of shard requests.
//! - [`members`] — presence membership rules (pure), used by the memory implementation.
//! - [`memory`] — the region of a hub alone.
//! - [`relay`] — the debug console's events across the region ([`Relay`]).

pub mod members;
pub mod memory;
pub mod pending;
pub mod relay;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use herald_shared::channel::{ChannelKey, ChannelKind, ChannelName};
use herald_shared::event::{EventData, EventName, SUBSCRIPTION_COUNT};
use herald_shared::ids::{AppId, EdgeId, HubId, SocketId};
use herald_shared::link::Event;
use tokio::sync::{mpsc, oneshot};

pub use pending::{Follow, Op, Pending, Taken};
pub use relay::{Relay, Relayed, Watching};

/// Capacity of each shard's inbox and of the watchlist's; senders wait when one is full.
const INBOX: usize = 4096;

/// An event to publish on one channel.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The channel.
    pub key: ChannelKey,
    /// The event name.
    pub name: EventName,
    /// The data.
    pub data: EventData,
    /// A socket that must not receive it.
    pub exclude: Option<SocketId>,
    /// The sender's user id (client events on presence channels).
    pub user_id: Option<String>,
}

impl Publication {
    /// `pusher_internal:subscription_count` announcing a channel's count to its subscribers.
    pub fn subscription_count(key: ChannelKey, count: u64) -> Self {
        Self {
            key,
            name: EventName::internal(SUBSCRIPTION_COUNT),
            data: subscription_count_data(count),
            exclude: None,
            user_id: None,
        }
    }
}

/// The data of a `pusher_internal:subscription_count` event.
pub fn subscription_count_data(count: u64) -> EventData {
    EventData::from_string(&format!(r#"{{"subscription_count":{count}}}"#))
}

/// A channel's counts, as the HTTP API reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    /// Connections subscribed to the channel, across all edges.
    pub subscription_count: u64,
    /// Presence members (users), for presence channels.
    pub user_count: Option<u64>,
}

impl ChannelCounts {
    /// Whether anyone is subscribed.
    pub fn occupied(&self) -> bool {
        self.subscription_count > 0
    }

    /// Counts of `channel` from its subscriptions and its present users: a presence channel
    /// reports its users, other kinds do not.
    pub fn of(channel: &ChannelName, subscription_count: u64, users: u64) -> Self {
        Self {
            subscription_count,
            user_count: (channel.kind() == ChannelKind::Presence).then_some(users),
        }
    }
}

/// A channel's state read from the region.
#[derive(Debug)]
pub struct Fetched {
    /// The channel's current sequence.
    pub seq: u64,
    /// History after the requested sequence, oldest first (a hub alone keeps history only in
    /// its registry, so it answers none).
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

/// A user's first hub came (online) or last hub went (offline), numbered among the app's
/// changes so that hubs agree on who tells each watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineChange {
    /// Whether the user is now online.
    pub online: bool,
    /// The number of this change among the app's changes.
    pub number: u64,
    /// The user.
    pub user_id: String,
}

/// One edge's client connections per app, as its hub last recorded them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLoad {
    /// The edge.
    pub edge: EdgeId,
    /// The hub it is linked to.
    pub hub: HubId,
    /// Its open connections per app (apps without any may be left out).
    pub apps: Vec<(AppId, u32)>,
}

impl EdgeLoad {
    /// Its connections of `app`.
    pub fn of(&self, app: &AppId) -> u32 {
        self.apps
            .iter()
            .find(|(a, _)| a == app)
            .map_or(0, |(_, count)| *count)
    }
}

/// Whose subscriptions a count is: one link session of one edge. Counts are kept per edge, so
/// an edge that moves to another hub has its entries rewritten there, never counted twice; a
/// later session's entry is never overwritten by an earlier one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Counter {
    /// The edge.
    pub edge: EdgeId,
    /// The edge's link session (grows with each session of the edge).
    pub session: u64,
}

/// Why the region could not be read or written. Every variant is answered 503 (retry later).
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    Stopped,
    /// The hub does not hear the region (its Redis pub/sub connection is down).
    #[error("not connected to the region (Redis pub/sub is down)")]
    Deaf,
    /// The region's store failed (Redis unreachable or answering an error).
    #[error("the region's store failed: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What the region decided once for the whole region that an app is told of (its webhooks):
/// each decision is reported by the hub whose write made it, right after the write, so it is
/// reported once whichever hub saw the cause.
///
/// Removals (`vacated`, `member_removed`) wait [`Decisions::removal_delay`] and are undone by an
/// arrival within it. A region that keeps state elsewhere (Redis) records a removal with its
/// delay in the same step that decides it, and reports neither the removal nor the arrival that
/// undid it: only a hub alone reports removals here.
pub trait Decisions: Send + Sync + std::fmt::Debug {
    /// A channel got its first subscription in the region (and undid no waiting removal).
    fn occupied(&self, key: &ChannelKey);
    /// A channel lost its last subscription (a hub alone only).
    fn vacated(&self, key: &ChannelKey);
    /// A user's first socket joined a presence channel (and undid no waiting removal).
    fn member_added(&self, key: &ChannelKey, user_id: &str);
    /// A user's last socket left a presence channel (a hub alone only).
    fn member_removed(&self, key: &ChannelKey, user_id: &str);
    /// How long a channel's removals wait before they are sent; zero when nobody listens to
    /// them (then a region records none).
    fn removal_delay(&self, _key: &ChannelKey) -> Duration {
        Duration::ZERO
    }
    /// A channel's subscription count was announced to its subscribers.
    fn counted(&self, key: &ChannelKey, subscription_count: u64);
}

/// Whether the hub can serve, for `/up` and `/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// A hub alone: always.
    Alone,
    /// In a region, hearing Redis.
    Connected,
    /// In a region, deaf: `/up` answers 503.
    Disconnected,
}

impl Health {
    /// Whether the hub is ready to serve.
    pub fn ready(self) -> bool {
        self != Self::Disconnected
    }
}

/// What the region reports to the registry shard owning a channel.
#[derive(Debug)]
pub enum Heard {
    /// An event of a followed channel, with its sequence. `delivered` (a hub alone) is told once
    /// the shard queued the event to every interested edge.
    Event {
        /// The event.
        event: Event,
        /// Told once the event is queued to the channel's edges.
        delivered: Option<oneshot::Sender<()>>,
    },
    /// The answer to [`Follow::Attach`] or [`Follow::Fetch`].
    Fetched {
        /// The channel.
        key: ChannelKey,
        /// History was asked after this sequence.
        after: Option<u64>,
        /// Whether it answers an attach.
        attached: bool,
        /// The channel's state, or why it could not be read.
        result: Result<Fetched, RegionError>,
    },
    /// An edge's count of a channel is durable up to `version`.
    Counted {
        /// The channel.
        key: ChannelKey,
        /// Whose count.
        counter: Counter,
        /// The edge's interest generation the version belongs to.
        generation: u32,
        /// The version that is durable now.
        version: u64,
    },
    /// The answer to a presence join.
    Joined {
        /// The channel.
        key: ChannelKey,
        /// The socket.
        socket: SocketId,
        /// The join it answers.
        join_id: u64,
        /// The outcome, or why the region could not decide.
        outcome: Result<JoinOutcome, RegionError>,
    },
    /// A subscription-count announcement was made, or (`retry_after`) another hub made one
    /// within the interval and this one should be tried again that much later.
    Announced {
        /// The channel.
        key: ChannelKey,
        /// When to try again, if not announced.
        retry_after: Option<Duration>,
    },
    /// The hub hears the region again after being deaf: catch every channel up from history and
    /// record again what this hub holds (the region may have lost it).
    Resync,
}

impl Heard {
    /// The channel it is about, if any (`Resync` is about every channel).
    pub fn key(&self) -> Option<&ChannelKey> {
        match self {
            Self::Event { event, .. } => Some(&event.key),
            Self::Fetched { key, .. }
            | Self::Counted { key, .. }
            | Self::Joined { key, .. }
            | Self::Announced { key, .. } => Some(key),
            Self::Resync => None,
        }
    }
}

/// What the region tells the watchlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    /// A user of an app came online or went offline somewhere in the region.
    Change(AppId, OnlineChange),
    /// The hub hears the region again: record this hub's users again and catch up.
    Resync,
}

/// Where the region reports: one inbox per registry shard (routed by [`ChannelKey::slot`]) and
/// the watchlist's.
#[derive(Debug, Clone)]
pub struct Inboxes {
    shards: Arc<[mpsc::Sender<Heard>]>,
    watchlist: mpsc::Sender<Told>,
}

/// The receiving ends of [`Inboxes`]: one per shard, and the watchlist's.
#[derive(Debug)]
pub struct Mailboxes {
    /// Shard `i` reads `shards[i]`.
    pub shards: Vec<mpsc::Receiver<Heard>>,
    /// The watchlist reads this.
    pub watchlist: mpsc::Receiver<Told>,
}

/// Creates the inboxes of `shards` registry shards and of the watchlist.
pub fn inboxes(shards: usize) -> (Inboxes, Mailboxes) {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..shards.max(1)).map(|_| mpsc::channel(INBOX)).unzip();
    let (watchlist, watchlist_rx) = mpsc::channel(INBOX);
    (
        Inboxes {
            shards: senders.into(),
            watchlist,
        },
        Mailboxes {
            shards: receivers,
            watchlist: watchlist_rx,
        },
    )
}

impl Inboxes {
    /// How many shards there are.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Hands `heard` to the shard owning its channel (to every shard for `Resync`). Waits while
    /// the inbox is full; returns `false` once the hub stopped.
    pub async fn shard(&self, heard: Heard) -> bool {
        match heard.key() {
            Some(key) => {
                let slot = key.slot(self.shards.len());
                self.shards[slot].send(heard).await.is_ok()
            }
            None => {
                for shard in self.shards.iter() {
                    if shard.send(Heard::Resync).await.is_err() {
                        return false;
                    }
                }
                true
            }
        }
    }

    /// The sender of the shard owning `key`, to reserve room before deciding (see
    /// [`memory`]).
    pub fn shard_for(&self, key: &ChannelKey) -> &mpsc::Sender<Heard> {
        &self.shards[key.slot(self.shards.len())]
    }

    /// Hands `told` to the watchlist; `false` once the hub stopped.
    pub async fn watchlist(&self, told: Told) -> bool {
        self.watchlist.send(told).await.is_ok()
    }
}

/// The region's shared state as the HTTP API, the link sessions and the watchlist use it:
/// publishing, and the counts and members every hub of the region reports the same way.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Publishes an event; returns once it is handed to the fan-out path (a hub alone: queued to
    /// every interested edge; in a region: held by Redis with its sequence).
    fn publish(&self, publication: Publication) -> BoxFuture<'_, Result<(), RegionError>>;

    /// A channel's counts. Read-your-writes: every subscription confirmed to a client before the
    /// call is counted, and the answer is never self-contradictory.
    fn counts(&self, key: ChannelKey) -> BoxFuture<'_, Result<ChannelCounts, RegionError>>;

    /// The occupied channels of an app whose names start with `prefix`, sorted by name.
    fn list(
        &self,
        app: AppId,
        prefix: String,
    ) -> BoxFuture<'_, Result<Vec<(ChannelName, ChannelCounts)>, RegionError>>;

    /// A presence channel's user ids, sorted.
    fn users(&self, key: ChannelKey) -> BoxFuture<'_, Result<Vec<String>, RegionError>>;

    /// Records this hub's edges' client connections per app (each edge's last report) and
    /// returns every edge's in the region: a hub alone returns its own; in Redis, those of every
    /// live hub.
    fn connections(
        &self,
        local: Vec<EdgeLoad>,
    ) -> BoxFuture<'_, Result<Vec<EdgeLoad>, RegionError>>;

    /// Whether the hub can serve.
    fn health(&self) -> Health;
}

/// Who is online in the region, for watchlists.
pub trait Online: Send + Sync + std::fmt::Debug {
    /// Records whether a user is online on this hub. A region that decides at once (a hub
    /// alone) returns the change it makes; Redis announces it on its bus instead, and it
    /// arrives as [`Told::Change`].
    fn set(
        &self,
        app: AppId,
        user: String,
        online: bool,
    ) -> BoxFuture<'_, Result<Option<OnlineChange>, RegionError>>;

    /// Records again, after a reconnect, exactly the users this hub has online.
    fn reassert(&self, users: Vec<(AppId, String)>) -> BoxFuture<'_, Result<(), RegionError>>;

    /// Which of `users` are online anywhere, as of the app's change number returned with them.
    fn among(
        &self,
        app: AppId,
        users: Vec<String>,
    ) -> BoxFuture<'_, Result<(Vec<bool>, u64), RegionError>>;

    /// Claims telling each of `watchers` of change `number`: `true` where this hub won.
    fn claim(
        &self,
        app: AppId,
        number: u64,
        watchers: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<bool>, RegionError>>;
}

/// How the registry keeps channels it no longer needs, a property of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long an unwanted channel stays followed, so a page reload does not churn.
    pub linger: Duration,
    /// Whether the registry's own history is the only history (a hub alone): then an unwanted
    /// channel is kept until its history and cache expired, so edges can still resume.
    pub history_is_local: bool,
}
