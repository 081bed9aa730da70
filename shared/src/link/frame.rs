//! The typed frames of the link.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::channel::ChannelKey;
use crate::event::{EventData, EventName};
use crate::ids::{AppId, EdgeId, HubId, SocketId};
use crate::presence::Member;

/// Edge → hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EdgeToHub {
    /// The first frame on the control stream.
    Hello(Hello),
    /// The edge's interest in one channel changed (see [`Interest`]).
    Interest(Interest),
    /// A gap was seen: send the channel's events after `after` from history.
    Backfill {
        /// The channel.
        key: ChannelKey,
        /// The last sequence the edge delivered.
        after: u64,
    },
    /// A socket joined or left a presence channel.
    Presence(PresenceChange),
    /// A client sent a `client-*` event on a channel it is subscribed to.
    ClientEvent(ClientEvent),
    /// The watchlist of a user signed in on this edge (empty: the user's last socket left).
    Watchlist {
        /// The app.
        app: AppId,
        /// The watching user.
        user_id: String,
        /// The users watched.
        watchlist: Vec<String>,
    },
    /// Control stream: per app, the connections open on this edge now (apps with none left
    /// out); sent when it changes, at most once a second. The hub sums them for the apps'
    /// `max_connections` and shows them in its debug console.
    Connections(Vec<(AppId, u32)>),
    /// A client resuming a channel (`docs/resume.md`) wants the events after `after` from
    /// history; answered with [`HubToEdge::Replayed`] on the channel's stream.
    Replay(ReplayRequest),
}

/// One socket's request for a channel's history after a position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// The channel.
    pub key: ChannelKey,
    /// The socket the replay is for (echoed in the answer).
    pub socket: SocketId,
    /// The last position the client received.
    pub after: u64,
}

/// Part of the answer to a [`ReplayRequest`]: a replay too large for one frame comes in several,
/// the last one with `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replayed {
    /// The request answered.
    pub request: ReplayRequest,
    /// Events after `after`, oldest first (this part of them).
    pub events: Vec<Event>,
    /// Set on the last part.
    pub end: Option<ReplayEnd>,
}

/// How a replay ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayEnd {
    /// The channel's sequence on the hub when it answered: the events after it reach the edge
    /// after this frame, on the same stream.
    pub through: u64,
    /// History no longer held every event after `after`: those through this one are lost.
    pub lost_through: Option<u64>,
}

/// A presence membership change of one socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PresenceChange {
    /// The socket joins as `member`; the hub answers with a [`PresenceAnswer`].
    Join {
        /// The channel.
        key: ChannelKey,
        /// The socket.
        socket: SocketId,
        /// Echoed in the answer, so a stale answer is never taken for a fresh one.
        join_id: u64,
        /// Who joins.
        member: Member,
    },
    /// The socket left (unsubscribed or disconnected).
    Leave {
        /// The channel.
        key: ChannelKey,
        /// The socket.
        socket: SocketId,
    },
}

/// A client event to publish on a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientEvent {
    /// The channel.
    pub key: ChannelKey,
    /// The event name (`client-…`).
    pub name: EventName,
    /// The data, as the client sent it.
    pub data: EventData,
    /// The sender, who does not get it back.
    pub socket: SocketId,
    /// The sender's presence user id, on presence channels.
    pub user_id: Option<String>,
}

/// The edge introduces itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The link protocol version the edge speaks.
    pub version: u16,
    /// The edge's id.
    pub edge_id: EdgeId,
    /// This link session's number: it grows with each session of the edge (whichever hub it
    /// links to), so the region can tell a later session's subscription counts from an earlier
    /// one's.
    pub session: u64,
    /// A JWT signed with the cluster key (see [`crate::link::claims`]).
    pub token: String,
}

/// The current state of the edge's interest in a channel. Interest is state, not an event: the
/// edge may coalesce several changes into the latest one, and re-sends all of it on reconnect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interest {
    /// The channel.
    pub key: ChannelKey,
    /// Local subscribers on the edge; 0 means the edge no longer wants the channel.
    pub subscribers: u32,
    /// Bumped by the edge each time the channel goes from 0 to some subscribers; echoed in
    /// [`HubToEdge::Subscribed`] so a stale confirmation is never taken for a fresh one.
    pub generation: u32,
    /// Bumped by the edge on every change of `subscribers`; the hub answers
    /// [`HubToEdge::Counted`] once the region holds this count (or a later one).
    pub version: u64,
    /// The last sequence the edge delivered before a reconnect, to receive what follows.
    pub resume_after: Option<u64>,
}

/// One event for one channel, as the hub sends it to every interested edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The channel.
    pub key: ChannelKey,
    /// Its place in the channel's history.
    pub seq: u64,
    /// The event name.
    pub name: EventName,
    /// The event data.
    pub data: EventData,
    /// A socket that must not receive it (the HTTP API's `socket_id`, a client event's sender).
    pub exclude: Option<SocketId>,
    /// The sender's user id, on client events in presence channels.
    pub user_id: Option<String>,
    /// When the hub accepted the event, in microseconds since 1970 (0: unknown), so an edge
    /// can measure delivery latency. In a region: when this hub heard it from Redis.
    pub accepted_micros: u64,
}

/// A cache channel's last event, handed to new subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedEvent {
    /// The event name.
    pub name: EventName,
    /// The data.
    pub data: EventData,
    /// How much longer it stays cached, in milliseconds.
    pub ttl_ms: u64,
}

/// The hub accepts the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The link protocol version the hub speaks.
    pub version: u16,
    /// The hub's id.
    pub hub_id: HubId,
    /// How many channel streams the hub opens after this frame.
    pub channel_streams: u16,
    /// How long cache channels keep their last event, in milliseconds.
    pub cache_ttl_ms: u64,
    /// The apps the edge serves.
    pub apps: Vec<App>,
}

/// The hub's answer to one presence join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceAnswer {
    /// The channel.
    pub key: ChannelKey,
    /// The socket.
    pub socket: SocketId,
    /// The join this answers.
    pub join_id: u64,
    /// Accepted or refused.
    pub outcome: PresenceOutcome,
}

/// Whether a presence join was accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PresenceOutcome {
    /// Accepted; `snapshot` is the `subscription_succeeded` data
    /// (`{"presence":{"ids":…,"hash":…,"count":…}}`).
    Joined {
        /// The member list, as JSON text.
        snapshot: String,
        /// The channel's sequence the member list is as of: the socket receives the channel's
        /// events after it.
        seq: u64,
    },
    /// Refused (e.g. the channel is full).
    Refused {
        /// Why.
        reason: String,
    },
}

/// Hub → edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HubToEdge {
    /// Control stream: the edge is accepted.
    Welcome(Welcome),
    /// Control stream: the edge is refused; the hub closes the connection.
    Refused {
        /// Why.
        reason: String,
    },
    /// Control stream: the app table changed.
    Apps(Vec<App>),
    /// Control stream: per app, the connections open on every edge of the region (the sum of
    /// the edges' [`EdgeToHub::Connections`] reports), for `max_connections`; sent when it
    /// changes, at most once a second.
    Connections(Vec<(AppId, u32)>),
    /// Channel stream: the hub now sends this channel's events to the edge; the events that
    /// follow on the stream have sequences above `seq` (or are history after `resume_after`).
    Subscribed {
        /// The channel.
        key: ChannelKey,
        /// The interest generation this confirms.
        generation: u32,
        /// The channel's last sequence when the interest was registered.
        seq: u64,
        /// For cache channels: the last event, if still cached.
        cached: Option<CachedEvent>,
    },
    /// Channel stream: the region holds the edge's subscriber count of the channel as of
    /// `version` (or later): every hub's answer to a channel query counts those subscribers. The
    /// edge confirms a subscription to its client only once it is counted.
    Counted {
        /// The channel.
        key: ChannelKey,
        /// The interest generation it is about.
        generation: u32,
        /// The highest [`Interest::version`] the region holds.
        version: u64,
    },
    /// Channel stream: the answer to a socket's presence join.
    Presence(PresenceAnswer),
    /// Channel stream: an event.
    Event(Event),
    /// Channel stream: (part of) the answer to an [`EdgeToHub::Replay`].
    Replayed(Replayed),
    /// Channel stream: history no longer holds the events after the requested sequence; the
    /// edge continues after `resume_after` and counts the loss.
    Truncated {
        /// The channel.
        key: ChannelKey,
        /// The oldest sequence history still holds, minus one.
        resume_after: u64,
    },
}
