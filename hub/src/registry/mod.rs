//! The hub's channel registry: which edges want which channel, sequence numbers, history.
//!
//! Split into shards by [`ChannelKey::slot`], each owned by one task ([`shard`]); the API and the
//! link sessions hold a [`Registry`] handle and send commands. A shard applies each command
//! synchronously — decide, mutate, queue frames to edges — so the order of frames on an edge's
//! stream is the order of the shard's decisions.
//!
//! # Layout
//! - [`channel`] — one channel's state (interested edges, sequence, history, members, cache).
//! - [`presence`] — presence membership rules.
//! - [`shard`] — the task owning a set of channels.

mod channel;
mod presence;
mod shard;

use std::sync::Arc;

use futures_util::future::join_all;
use herald_shared::app::AppTable;
use herald_shared::channel::{ChannelKey, ChannelKind, ChannelName};
use herald_shared::event::{EventData, EventName, SUBSCRIPTION_COUNT};
use herald_shared::ids::{AppId, SocketId};
use herald_shared::link::{Event, Interest, PresenceChange};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use channel::{Joining, Lifetimes};
pub use shard::Intervals;

use crate::cluster::{Cluster, Fetched, JoinOutcome};
use crate::link::{EdgeLink, LinkId};
use crate::stats::HubStats;
use crate::watchlist::WatchlistSender;

/// Capacity of each shard's command queue; senders wait when it is full.
const SHARD_QUEUE: usize = 4096;

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
            data: EventData::from_string(&format!(r#"{{"subscription_count":{count}}}"#)),
            exclude: None,
            user_id: None,
        }
    }
}

/// Whether a channel's subscribers are told its subscription count: its app enables
/// subscription-count events and it is not a user's own channel. Pusher's current reference
/// sends counts on every other kind of channel, presence included.
pub fn announces_counts(apps: &AppTable, key: &ChannelKey) -> bool {
    key.channel.kind() != ChannelKind::ServerToUser
        && apps
            .by_id(key.app.as_str())
            .is_some_and(|app| app.settings.subscription_count_events)
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
}

/// How the registry is sharded and timed.
#[derive(Debug, Clone, Copy)]
pub struct RegistrySettings {
    /// Number of shards.
    pub shards: usize,
    /// History and cache lifetimes.
    pub lifetimes: Lifetimes,
    /// Timer periods.
    pub intervals: Intervals,
}

/// A command to one shard.
#[derive(Debug)]
pub enum Command {
    /// Publish an event; reply with the channel's counts.
    Publish(Publication, oneshot::Sender<()>),
    /// An edge's interest in a channel changed.
    Interest(Arc<EdgeLink>, Interest),
    /// A socket joined or left a presence channel.
    Presence(Arc<EdgeLink>, PresenceChange),
    /// An edge asks for the events after `after`.
    Backfill(Arc<EdgeLink>, ChannelKey, u64),
    /// A link ended: forget its interest everywhere.
    EdgeGone(LinkId),
    /// Report one channel's counts.
    Channel(ChannelKey, oneshot::Sender<ChannelCounts>),
    /// Report a presence channel's user ids.
    Users(ChannelKey, oneshot::Sender<Vec<String>>),
    /// Report the occupied channels of an app whose names start with the prefix.
    List(
        AppId,
        String,
        oneshot::Sender<Vec<(ChannelName, ChannelCounts)>>,
    ),
    /// Regional: an event from Redis.
    Remote(Event),
    /// Regional: the answer of an attach or history fetch.
    Fetched {
        /// The channel.
        key: ChannelKey,
        /// History was asked after this sequence.
        after: Option<u64>,
        /// Whether it was an attach (subscribe + fetch).
        attached: bool,
        /// The answer, or why it failed.
        result: Result<Fetched, String>,
    },
    /// Regional: the answer of a presence join.
    Joined {
        /// The channel.
        key: ChannelKey,
        /// The edge of the socket.
        edge: Arc<EdgeLink>,
        /// The join.
        joining: Joining,
        /// The region's answer, or why it failed.
        result: Result<JoinOutcome, String>,
    },
    /// Regional: Redis pub/sub is back; catch up and re-assert.
    Resync,
    /// Reply once the channel's interests recorded so far are confirmed.
    Settled(ChannelKey, oneshot::Sender<()>),
}

/// A cheap-to-clone handle to every shard.
#[derive(Debug, Clone)]
pub struct Registry {
    shards: Arc<[mpsc::Sender<Command>]>,
}

/// The registry's shards stopped (the hub is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the channel registry has stopped")]
pub struct RegistryStopped;

impl Registry {
    /// Starts `shards` shard tasks on `tracker`; with a `cluster`, channels are fed by Redis.
    pub fn start(
        settings: RegistrySettings,
        apps: Arc<AppTable>,
        stats: Arc<HubStats>,
        watchlist: WatchlistSender,
        cluster: Option<Cluster>,
        stop: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let senders = (0..settings.shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(SHARD_QUEUE);
                let setup = shard::ShardSetup {
                    apps: apps.clone(),
                    lifetimes: settings.lifetimes,
                    stats: stats.clone(),
                    watchlist: watchlist.clone(),
                    intervals: settings.intervals,
                    cluster: cluster.clone(),
                    me: tx.downgrade(),
                    stop: stop.clone(),
                };
                tracker.spawn(shard::run(rx, setup));
                tx
            })
            .collect();
        Self { shards: senders }
    }

    fn shard(&self, key: &ChannelKey) -> &mpsc::Sender<Command> {
        &self.shards[key.slot(self.shards.len())]
    }

    /// Publishes an event; returns once it is queued to every
    /// interested edge.
    pub async fn publish(&self, publication: Publication) -> Result<(), RegistryStopped> {
        let (tx, rx) = oneshot::channel();
        let shard = self.shard(&publication.key);
        shard
            .send(Command::Publish(publication, tx))
            .await
            .map_err(|_| RegistryStopped)?;
        rx.await.map_err(|_| RegistryStopped)
    }

    /// Records an edge's interest.
    pub async fn interest(&self, edge: Arc<EdgeLink>, interest: Interest) {
        let _ = self
            .shard(&interest.key)
            .send(Command::Interest(edge, interest))
            .await;
    }

    /// Applies a presence change.
    pub async fn presence(&self, edge: Arc<EdgeLink>, change: PresenceChange) {
        let key = match &change {
            PresenceChange::Join { key, .. } | PresenceChange::Leave { key, .. } => key.clone(),
        };
        let _ = self.shard(&key).send(Command::Presence(edge, change)).await;
    }

    /// A presence channel's user ids.
    pub async fn users(&self, key: ChannelKey) -> Result<Vec<String>, RegistryStopped> {
        let (tx, rx) = oneshot::channel();
        self.shard(&key)
            .send(Command::Users(key, tx))
            .await
            .map_err(|_| RegistryStopped)?;
        rx.await.map_err(|_| RegistryStopped)
    }

    /// Returns once every interest in the channel recorded so far is confirmed (at once alone;
    /// in a region, once the channel is attached and fetched). Events published afterwards reach
    /// those interests.
    pub async fn settled(&self, key: ChannelKey) {
        let (tx, rx) = oneshot::channel();
        if self
            .shard(&key)
            .send(Command::Settled(key, tx))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Hands an event from Redis to its shard.
    pub async fn remote(&self, event: Event) {
        let key = event.key.clone();
        let _ = self.shard(&key).send(Command::Remote(event)).await;
    }

    /// Tells every shard Redis pub/sub is back.
    pub async fn resync(&self) {
        for shard in self.shards.iter() {
            let _ = shard.send(Command::Resync).await;
        }
    }

    /// Replays a channel's history to an edge.
    pub async fn backfill(&self, edge: Arc<EdgeLink>, key: ChannelKey, after: u64) {
        let _ = self
            .shard(&key)
            .send(Command::Backfill(edge, key.clone(), after))
            .await;
    }

    /// Forgets a link's interest in every shard.
    pub async fn edge_gone(&self, link: LinkId) {
        for shard in self.shards.iter() {
            let _ = shard.send(Command::EdgeGone(link)).await;
        }
    }

    /// One channel's counts.
    pub async fn channel(&self, key: ChannelKey) -> Result<ChannelCounts, RegistryStopped> {
        let (tx, rx) = oneshot::channel();
        self.shard(&key)
            .send(Command::Channel(key, tx))
            .await
            .map_err(|_| RegistryStopped)?;
        rx.await.map_err(|_| RegistryStopped)
    }

    /// The occupied channels of an app whose names start with `prefix`, sorted by name.
    pub async fn list(
        &self,
        app: AppId,
        prefix: String,
    ) -> Result<Vec<(ChannelName, ChannelCounts)>, RegistryStopped> {
        let asks = self.shards.iter().map(|shard| {
            let (tx, rx) = oneshot::channel();
            let command = Command::List(app.clone(), prefix.clone(), tx);
            async move {
                shard.send(command).await.map_err(|_| RegistryStopped)?;
                rx.await.map_err(|_| RegistryStopped)
            }
        });
        let mut channels = Vec::new();
        for answer in join_all(asks).await {
            channels.extend(answer?);
        }
        channels.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(channels)
    }
}
