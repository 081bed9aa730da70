//! The edge's local channel index: which local sockets are subscribed to which channel.
//!
//! The index is split into shards by [`ChannelKey::slot`]; each shard is owned by one task
//! ([`shard`]) and everyone else holds an [`IndexHandle`] that sends it commands. Commands about
//! one channel always reach the same shard in the order they were sent, so a subscription, the
//! hub's confirmation and the events that follow are applied in order.
//!
//! The shard decides interest transitions (first local subscriber of a channel, last one gone),
//! presence joins and leaves, and watchlists, and records them on the [`Board`], which the link
//! sends to the hub.
//!
//! The two structures the shards write live here with their writers, so the index depends on
//! neither the link nor the sockets (see the layering in the crate root):
//!
//! # Layout
//! - [`shard`] — one shard's state and the task that owns it.
//! - [`board`] — what to tell the hub, as state: written by the shards, read by the link task.
//! - [`resume`] — a resuming subscriber's catch-up (`docs/resume.md`).
//! - [`outbox`] — each socket's bounded, never-waiting queue: written by fan-out (and by the
//!   socket's own replies), drained by the socket task; [`encode`] makes the bytes it holds.

mod board;
mod outbox;
mod resume;
mod shard;

use std::sync::Arc;
use std::time::Duration;

use herald_shared::channel::ChannelKey;
use herald_shared::ids::SocketId;
use herald_shared::link::{CachedEvent, ClientEvent, Event, PresenceAnswer, Replayed};
use herald_shared::presence::Member;
use herald_shared::protocol::Resume;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::task::TaskTracker;

pub use board::{Board, Changes, Desired};
pub use outbox::{
    CloseOrder, Next, Outbox, OutboxLimits, OutboxReceiver, OutboxRef, PlainStream, Pushed, encode,
    outbox,
};

use crate::stats::EdgeStats;

/// Capacity of each shard's command queue. Senders wait when it is full (backpressure on the
/// link reader and on subscribing sockets), so nothing is dropped.
const SHARD_QUEUE: usize = 4096;

/// How a socket subscribes.
#[derive(Debug, Clone)]
pub enum Mode {
    /// A public, private or encrypted channel, or the socket's own `#server-to-user-` channel
    /// asked for by the client: `subscription_succeeded` once the hub confirms the channel.
    Announced,
    /// A presence channel: `subscription_succeeded` with the member list once the hub accepts
    /// the join.
    Presence(Member),
    /// The socket's own `#server-to-user-` channel, held from sign-in on so server-to-user
    /// events, watchlist events and terminations reach it; no `subscription_succeeded`.
    SignedIn {
        /// The user's watchlist.
        watchlist: Vec<String>,
        /// What the socket is told once the hub confirms the channel and the region counts the
        /// socket (`pusher:signin_success`, and a watchlist warning): a server-to-user event
        /// sent after it reaches the socket.
        greeting: Vec<Utf8Bytes>,
    },
}

/// A command to one shard.
#[derive(Debug)]
pub enum Command {
    /// Add a socket to a channel.
    Subscribe {
        /// The channel.
        key: ChannelKey,
        /// The socket.
        socket: SocketId,
        /// Where its frames go.
        outbox: Outbox,
        /// How.
        mode: Mode,
        /// Whether the client opted in to resuming, and after which position it resumes.
        resume: Option<Resume>,
    },
    /// Remove a socket from a channel.
    Unsubscribe {
        /// The channel.
        key: ChannelKey,
        /// The socket.
        socket: SocketId,
    },
    /// The hub confirmed interest generation `generation` for a channel.
    Confirmed {
        /// The channel.
        key: ChannelKey,
        /// The generation confirmed.
        generation: u32,
        /// The channel's sequence the confirmation is as of (the events that follow are after it).
        seq: u64,
        /// A cache channel's last event.
        cached: Option<CachedEvent>,
        /// How long delivered events of cache channels stay cached.
        cache_ttl: Duration,
    },
    /// The region holds the channel's subscriber count as of `version`.
    Counted {
        /// The channel.
        key: ChannelKey,
        /// The interest generation it is about.
        generation: u32,
        /// The highest count version the region holds.
        version: u64,
    },
    /// The hub answered a presence join.
    Presence(PresenceAnswer),
    /// An event to fan out to the channel's local subscribers.
    Deliver(Event),
    /// (Part of) a resuming socket's replay.
    Replayed(Replayed),
    /// A client event from a local socket, to relay through the hub if the socket may.
    ClientEvent {
        /// The event.
        event: ClientEvent,
        /// The sender's outbox, for an error.
        outbox: Outbox,
    },
    /// Report how many channels and subscriptions the shard holds.
    Count(oneshot::Sender<(usize, usize)>),
}

impl Command {
    fn key(&self) -> Option<&ChannelKey> {
        match self {
            Self::Subscribe { key, .. }
            | Self::Unsubscribe { key, .. }
            | Self::Confirmed { key, .. }
            | Self::Counted { key, .. }
            | Self::Presence(PresenceAnswer { key, .. }) => Some(key),
            Self::Deliver(event) => Some(&event.key),
            Self::Replayed(replayed) => Some(&replayed.request.key),
            Self::ClientEvent { event, .. } => Some(&event.key),
            Self::Count(_) => None,
        }
    }
}

/// A cheap-to-clone handle to every shard.
#[derive(Debug, Clone)]
pub struct IndexHandle {
    shards: Arc<[mpsc::Sender<Command>]>,
}

impl IndexHandle {
    /// Starts `shards` shard tasks on `tracker`.
    pub fn start(
        shards: usize,
        board: Arc<Board>,
        stats: Arc<EdgeStats>,
        tracker: &TaskTracker,
    ) -> Self {
        let senders = (0..shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(SHARD_QUEUE);
                tracker.spawn(shard::run(rx, board.clone(), stats.clone()));
                tx
            })
            .collect();
        Self { shards: senders }
    }

    /// Sends a command to the shard that owns its channel.
    pub async fn send(&self, command: Command) {
        let slot = command.key().map_or(0, |key| key.slot(self.shards.len()));
        // A shard only stops when every handle is gone, so a failed send cannot happen while
        // this handle exists.
        let _ = self.shards[slot].send(command).await;
    }

    /// Channels and subscriptions across all shards.
    pub async fn count(&self) -> (usize, usize) {
        let mut total = (0, 0);
        for shard in self.shards.iter() {
            let (tx, rx) = oneshot::channel();
            if shard.send(Command::Count(tx)).await.is_ok()
                && let Ok((channels, subscriptions)) = rx.await
            {
                total.0 += channels;
                total.1 += subscriptions;
            }
        }
        total
    }
}
