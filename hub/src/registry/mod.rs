//! The hub's channel registry: which edges want which channel, sequence numbers, history, and
//! this hub's part of counts and presence.
//!
//! Split into shards by [`ChannelKey::slot`], each owned by one task ([`shard`]); link sessions
//! hold a [`Registry`] handle and send commands, and the region reports on each shard's inbox. A
//! shard applies each input synchronously — decide, mutate, queue frames to edges, record
//! requests to the region — so the order of frames on an edge's stream is the order of the
//! shard's decisions. The registry never asks whether the region is this hub alone or Redis.
//!
//! # Layout
//! - [`channel`] — one channel's state: the sequencing core (gaps, back-fill, held events).
//! - [`announce`] — the subscription-count announcement policy.
//! - [`shard`] — the task owning a set of channels.

mod announce;
mod channel;
mod shard;

use std::sync::Arc;
use std::time::Duration;

use crate::apps::Apps;
use herald_shared::channel::ChannelKey;
use herald_shared::ids::AppId;
use herald_shared::link::{Interest, PresenceChange, ReplayRequest};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use announce::announces_counts;
pub use channel::{Joining, Lifetimes};

use crate::edge::{EdgeLink, LinkId};
use crate::region::{Heard, Pending, Retention};
use crate::stats::HubStats;

/// Capacity of each shard's command queue; senders wait when it is full.
const SHARD_QUEUE: usize = 4096;
/// Capacity of the occupancy queue (read by the watchlist).
const OCCUPANCY_QUEUE: usize = 4096;

/// A user's own `#server-to-user-{id}` channel became occupied (online) or vacated (offline) on
/// this hub: every signed-in socket holds that subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occupancy {
    /// The app.
    pub app: AppId,
    /// The user.
    pub user_id: String,
    /// Whether the user is now online.
    pub online: bool,
}

/// Where shards report occupancy changes, without waiting.
#[derive(Debug, Clone)]
pub struct OccupancySender(mpsc::Sender<Occupancy>);

impl OccupancySender {
    /// Reports a change; `false` when the queue is full (the change is dropped, and the caller
    /// counts it).
    pub fn notify(&self, occupancy: Occupancy) -> bool {
        !matches!(
            self.0.try_send(occupancy),
            Err(mpsc::error::TrySendError::Full(_))
        )
    }
}

/// Where shards report, without waiting: user channels' occupancy (the watchlist) and webhook
/// events they see (cache misses).
#[derive(Debug, Clone)]
pub struct Outlets {
    /// User channels' occupancy changes.
    pub occupancy: OccupancySender,
    /// Webhook events.
    pub webhooks: crate::webhooks::Webhooks,
}

/// The occupancy queue: shards send, the watchlist reads.
pub fn occupancy() -> (OccupancySender, mpsc::Receiver<Occupancy>) {
    let (tx, rx) = mpsc::channel(OCCUPANCY_QUEUE);
    (OccupancySender(tx), rx)
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

/// Timer periods.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// At most one `pusher_internal:subscription_count` per channel per this period.
    pub subscription_count: Duration,
}

/// A command to one shard.
#[derive(Debug)]
pub enum Command {
    /// An edge's interest in a channel changed.
    Interest(Arc<EdgeLink>, Interest),
    /// A socket joined or left a presence channel.
    Presence(Arc<EdgeLink>, PresenceChange),
    /// An edge asks for the events after `after`.
    Backfill(Arc<EdgeLink>, ChannelKey, u64),
    /// A client socket of an edge resumes a channel after a position.
    Replay(Arc<EdgeLink>, ReplayRequest),
    /// A link ended: forget its interest everywhere.
    EdgeGone(LinkId),
    /// Reply once the channel's interests recorded so far are confirmed.
    Settled(ChannelKey, oneshot::Sender<()>),
    /// Reply with how many of an app's channels some edge of this hub subscribes to.
    Channels(AppId, oneshot::Sender<usize>),
}

/// The registry's shards stopped (the hub is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the channel registry has stopped")]
pub struct RegistryStopped;

/// What the registry needs of the region: where to record requests, where answers arrive, and
/// how long to keep unwanted channels.
pub struct RegionPort {
    /// The board of requests.
    pub pending: Arc<Pending>,
    /// One inbox per shard (their number is the number of shards).
    pub inboxes: Vec<mpsc::Receiver<Heard>>,
    /// How unwanted channels are kept.
    pub retention: Retention,
}

/// A cheap-to-clone handle to every shard.
#[derive(Debug, Clone)]
pub struct Registry {
    shards: Arc<[mpsc::Sender<Command>]>,
}

impl Registry {
    /// Starts one shard task per region inbox on `tracker`.
    pub fn start(
        settings: RegistrySettings,
        apps: Apps,
        stats: Arc<HubStats>,
        outlets: Outlets,
        region: RegionPort,
        stop: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let RegionPort {
            pending,
            inboxes,
            retention,
        } = region;
        let senders = inboxes
            .into_iter()
            .map(|inbox| {
                let (tx, rx) = mpsc::channel(SHARD_QUEUE);
                let setup = shard::ShardSetup {
                    apps: apps.clone(),
                    lifetimes: settings.lifetimes,
                    retention,
                    announce_interval: settings.intervals.subscription_count,
                    stats: stats.clone(),
                    occupancy: outlets.occupancy.clone(),
                    webhooks: outlets.webhooks.clone(),
                    region: pending.clone(),
                    stop: stop.clone(),
                };
                tracker.spawn(shard::run(rx, inbox, setup));
                tx
            })
            .collect();
        Self { shards: senders }
    }

    fn shard(&self, key: &ChannelKey) -> &mpsc::Sender<Command> {
        &self.shards[key.slot(self.shards.len())]
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

    /// Returns once every interest in the channel recorded so far is confirmed (once the channel
    /// is attached and fetched). Events published afterwards reach those interests.
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

    /// Replays a channel's history to an edge.
    pub async fn backfill(&self, edge: Arc<EdgeLink>, key: ChannelKey, after: u64) {
        let _ = self
            .shard(&key)
            .send(Command::Backfill(edge, key.clone(), after))
            .await;
    }

    /// Replays a channel's history after a position to one client socket of an edge.
    pub async fn replay(&self, edge: Arc<EdgeLink>, request: ReplayRequest) {
        let _ = self
            .shard(&request.key)
            .send(Command::Replay(edge, request))
            .await;
    }

    /// How many of an app's channels some edge of this hub subscribes to.
    pub async fn channels(&self, app: AppId) -> Result<usize, RegistryStopped> {
        let mut total = 0;
        for shard in self.shards.iter() {
            let (tx, rx) = oneshot::channel();
            shard
                .send(Command::Channels(app.clone(), tx))
                .await
                .map_err(|_| RegistryStopped)?;
            total += rx.await.map_err(|_| RegistryStopped)?;
        }
        Ok(total)
    }

    /// Forgets a link's interest in every shard.
    pub async fn edge_gone(&self, link: LinkId) {
        for shard in self.shards.iter() {
            let _ = shard.send(Command::EdgeGone(link)).await;
        }
    }
}
