//! One channel's state on the hub: the edges that want it, its sequence, its history, and —
//! depending on its kind — its presence sockets and its cached last event.
//!
//! A channel is fed one of two ways. **Alone** (no Redis), the hub is the region: it assigns the
//! next sequence itself when an event is published ([`ChannelState::publish`]). **In a region**,
//! events come from Redis with their sequence ([`ChannelState::receive`]); the channel is
//! attached (subscribed and its current sequence read) before any edge is confirmed, events
//! that arrive ahead of a gap wait in `ahead` until history fills it, and interests that need
//! history the hub does not hold wait for a fetch. Either way edges see each sequence once, in
//! order, and every confirmed interest gets exactly the events after its `Subscribed`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use herald_shared::channel::{ChannelKey, ChannelKind};
use herald_shared::event::{EventData, EventName, MEMBER_ADDED, MEMBER_REMOVED};
use herald_shared::ids::SocketId;
use herald_shared::link::{
    self, CachedEvent, Event, HubToEdge, Interest, PresenceAnswer, PresenceOutcome,
};
use herald_shared::presence::Member;
use herald_shared::time::UnixTime;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::presence::{Joined, Members};
use super::{ChannelCounts, Publication};
use crate::cluster::{Fetched, JoinOutcome};
use crate::history::{History, HistoryLimits, Replay};
use crate::link::{EdgeLink, LinkId};

/// Events held ahead of a gap before the channel gives up on them and refetches.
const AHEAD_LIMIT: usize = 10_000;

#[derive(Debug)]
struct EdgeInterest {
    link: Arc<EdgeLink>,
    subscribers: u32,
    generation: u32,
}

#[derive(Debug)]
struct Cached {
    name: EventName,
    data: EventData,
    expires: Instant,
}

/// How long things live, shared by all channels of a shard.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// History bounds.
    pub history: HistoryLimits,
    /// How long a cache channel keeps its last event.
    pub cache_ttl: Duration,
}

/// A socket's request to join a presence channel.
#[derive(Debug)]
pub struct Joining {
    /// The socket.
    pub socket: SocketId,
    /// Echoed in the answer.
    pub join_id: u64,
    /// Who joins.
    pub member: Member,
    /// The app's member limit.
    pub limit: usize,
}

/// Who decides presence membership.
#[derive(Debug)]
enum Presence {
    /// Not a presence channel.
    None,
    /// This hub alone: the members themselves.
    Local(Members),
    /// The region (Redis): here only this hub's sockets, with their link and member (kept to
    /// re-assert them if Redis loses its data).
    Regional(HashMap<SocketId, (LinkId, Member)>),
}

/// A channel known to the hub.
#[derive(Debug)]
pub struct ChannelState {
    key: ChannelKey,
    /// `key.stable_hash()`, computed once: picks the link stream on every send.
    hash: u64,
    /// The last sequence delivered to edges; `None` until a regional channel is attached.
    seq: Option<u64>,
    history: History,
    /// Regional events that arrived ahead of a gap.
    ahead: BTreeMap<u64, Event>,
    edges: HashMap<LinkId, EdgeInterest>,
    /// Interests waiting for an attach or a history fetch.
    waiting: Vec<(Arc<EdgeLink>, Interest)>,
    /// Regional presence joins waiting for their edge's interest to be confirmed, so the member
    /// list they get is never older than the events the edge receives.
    pending_joins: Vec<(Arc<EdgeLink>, Joining)>,
    /// Regional sockets that left while their join was in flight.
    left_in_flight: Vec<SocketId>,
    /// Told once no interest waits any more (see [`ChannelState::when_settled`]).
    settled: Vec<oneshot::Sender<()>>,
    presence: Presence,
    cached: Option<Cached>,
    /// Whether a fetch from Redis is in flight.
    pub fetching: bool,
    /// Whether the hub is subscribed to the channel in Redis.
    pub attached: bool,
    /// Since when nobody wants the channel (regional channels linger before detaching).
    unwanted_since: Option<Instant>,
}

impl ChannelState {
    /// A channel of a hub alone, whose first sequence is `seed` (the clock, so sequences never
    /// go backwards across restarts).
    pub fn local(key: ChannelKey, seed: u64) -> Self {
        let presence = if key.channel.kind() == ChannelKind::Presence {
            Presence::Local(Members::default())
        } else {
            Presence::None
        };
        Self::new(key, Some(seed), presence)
    }

    /// A channel fed by Redis, not attached yet.
    pub fn regional(key: ChannelKey) -> Self {
        let presence = if key.channel.kind() == ChannelKind::Presence {
            Presence::Regional(HashMap::new())
        } else {
            Presence::None
        };
        Self::new(key, None, presence)
    }

    fn new(key: ChannelKey, seq: Option<u64>, presence: Presence) -> Self {
        Self {
            hash: key.stable_hash(),
            key,
            seq,
            history: History::default(),
            ahead: BTreeMap::new(),
            edges: HashMap::new(),
            waiting: Vec::new(),
            pending_joins: Vec::new(),
            left_in_flight: Vec::new(),
            settled: Vec::new(),
            presence,
            cached: None,
            fetching: false,
            attached: false,
            unwanted_since: None,
        }
    }

    /// Connections subscribed through this hub's edges, and (alone) presence members.
    pub fn counts(&self) -> ChannelCounts {
        ChannelCounts {
            subscription_count: self.edges.values().map(|e| u64::from(e.subscribers)).sum(),
            user_count: match &self.presence {
                Presence::Local(members) => Some(members.count() as u64),
                Presence::None | Presence::Regional(_) => None,
            },
        }
    }

    /// The presence members' user ids (alone; empty otherwise).
    pub fn user_ids(&self) -> Vec<String> {
        match &self.presence {
            Presence::Local(members) => members.user_ids().map(str::to_string).collect(),
            Presence::None | Presence::Regional(_) => Vec::new(),
        }
    }

    /// Alone: assigns the next sequence and delivers.
    pub fn publish(&mut self, publication: Publication, now: Instant, lifetimes: Lifetimes) {
        let seq = self.seq.map_or(1, |seq| seq + 1);
        let event = Event {
            key: publication.key,
            seq,
            name: publication.name,
            data: publication.data,
            exclude: publication.exclude,
            user_id: publication.user_id,
            accepted_micros: UnixTime::from_system(SystemTime::now()).as_micros(),
        };
        self.deliver(event, now, lifetimes);
    }

    /// Tells the channel's members that a user's last socket left.
    fn announce_removed(&mut self, user_id: &str, now: Instant, lifetimes: Lifetimes) {
        self.publish_internal(
            MEMBER_REMOVED,
            Member::removed_data(user_id),
            None,
            now,
            lifetimes,
        );
    }

    fn publish_internal(
        &mut self,
        name: &'static str,
        data: EventData,
        exclude: Option<SocketId>,
        now: Instant,
        lifetimes: Lifetimes,
    ) {
        let publication = Publication {
            key: self.key.clone(),
            name: EventName::internal(name),
            data,
            exclude,
            user_id: None,
        };
        self.publish(publication, now, lifetimes);
    }

    /// Records the event and queues it once to every interested edge — the same encoded bytes
    /// for all.
    fn deliver(&mut self, event: Event, now: Instant, lifetimes: Lifetimes) {
        if self.key.channel.is_cache() && !event.name.is_reserved() {
            self.cached = Some(Cached {
                name: event.name.clone(),
                data: event.data.clone(),
                expires: now + lifetimes.cache_ttl,
            });
        }
        let seq = event.seq;
        let frame = link::encode(&HubToEdge::Event(event));
        for edge in self.edges.values() {
            edge.link.send_hashed(self.hash, frame.clone());
        }
        self.history.push(seq, frame, now, lifetimes.history);
        self.seq = Some(seq);
    }

    /// Regional: an event from Redis. Returns whether a gap appeared that history must fill.
    pub fn receive(&mut self, event: Event, now: Instant, lifetimes: Lifetimes) -> bool {
        match self.seq {
            Some(seq) if event.seq <= seq => false,
            Some(seq) if event.seq == seq + 1 => {
                self.deliver(event, now, lifetimes);
                self.drain(now, lifetimes);
                false
            }
            _ => {
                if self.ahead.len() >= AHEAD_LIMIT {
                    // Far behind: drop what is held; the fetch brings it back from history.
                    self.ahead.clear();
                }
                self.ahead.insert(event.seq, event);
                self.seq.is_some()
            }
        }
    }

    /// Delivers the events held ahead that are now next.
    fn drain(&mut self, now: Instant, lifetimes: Lifetimes) {
        while let Some(seq) = self.seq {
            let Some(event) = self.ahead.remove(&(seq + 1)) else {
                break;
            };
            self.deliver(event, now, lifetimes);
        }
        if let Some(seq) = self.seq {
            self.ahead = self.ahead.split_off(&(seq + 1));
        }
    }

    /// Whether a gap waits for history.
    pub fn has_gap(&self) -> bool {
        !self.ahead.is_empty() && self.seq.is_some()
    }

    /// The sequence a fetch should start after: the earliest resume among waiting interests,
    /// or the channel's own sequence.
    pub fn fetch_after(&self) -> Option<u64> {
        let resumes = self
            .waiting
            .iter()
            .filter_map(|(_, interest)| interest.resume_after);
        resumes.chain(self.seq).min()
    }

    /// Regional: the answer of an attach or fetch that asked for history after `after`.
    pub fn fetched(
        &mut self,
        fetched: Fetched,
        after: Option<u64>,
        now: Instant,
        lifetimes: Lifetimes,
    ) {
        self.fetching = false;
        if let Some(cached) = fetched.cached {
            self.cached = Some(Cached {
                name: cached.name,
                data: cached.data,
                expires: now + lifetimes.cache_ttl,
            });
        }
        let start = self
            .seq
            .unwrap_or_else(|| after.unwrap_or(fetched.seq).min(fetched.seq));
        self.seq = Some(start);
        for event in fetched.events {
            if event.seq <= start {
                let seq = event.seq;
                self.history.push(
                    seq,
                    link::encode(&HubToEdge::Event(event)),
                    now,
                    lifetimes.history,
                );
            } else {
                self.ahead.insert(event.seq, event);
            }
        }
        self.drain(now, lifetimes);
        // History answered for everything up to its sequence: what it lacks is gone for good.
        if let Some(seq) = self.seq
            && seq < fetched.seq
        {
            let first_held = self.ahead.keys().next().copied().unwrap_or(u64::MAX);
            self.seq = Some(fetched.seq.min(first_held - 1).max(seq));
            self.drain(now, lifetimes);
        }
        for (edge, interest) in std::mem::take(&mut self.waiting) {
            self.confirm(edge, interest, now);
        }
        for settled in std::mem::take(&mut self.settled) {
            let _ = settled.send(());
        }
    }

    /// Replies once every interest recorded so far is confirmed: an event published after that
    /// reaches every socket of this hub that wants the channel.
    pub fn when_settled(&mut self, reply: oneshot::Sender<()>) {
        if self.waiting.is_empty() {
            let _ = reply.send(());
        } else {
            self.settled.push(reply);
        }
    }

    /// A fetch failed: interests keep waiting, and the next retry fetches again.
    pub fn fetch_failed(&mut self) {
        self.fetching = false;
    }

    /// Whether something waits for a fetch (interests, or a gap).
    pub fn needs_fetch(&self) -> bool {
        !self.fetching && (!self.waiting.is_empty() || self.has_gap())
    }

    /// Applies an edge's interest; returns whether the channel needs a fetch before it can be
    /// confirmed (not attached yet, or resuming beyond the history held here).
    pub fn interest(&mut self, edge: Arc<EdgeLink>, interest: Interest, now: Instant) -> bool {
        let link_id = edge.link_id;
        if interest.subscribers == 0 {
            self.edges.remove(&link_id);
            self.waiting
                .retain(|(waiting, _)| waiting.link_id != link_id);
            if self.edges.is_empty() && self.waiting.is_empty() {
                self.unwanted_since = Some(now);
            }
            return false;
        }
        self.unwanted_since = None;
        if let Some(existing) = self.edges.get_mut(&link_id)
            && existing.generation == interest.generation
        {
            existing.subscribers = interest.subscribers;
            return false;
        }
        let covered = match (self.seq, interest.resume_after) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(seq), Some(after)) => self.history.covers(after, seq),
        };
        if covered && self.waiting.is_empty() {
            self.confirm(edge, interest, now);
            false
        } else {
            self.waiting
                .retain(|(waiting, _)| waiting.link_id != link_id);
            self.waiting.push((edge, interest));
            true
        }
    }

    /// Replays what the edge missed, then confirms its interest with `Subscribed` (carrying the
    /// cached event of a cache channel).
    fn confirm(&mut self, edge: Arc<EdgeLink>, interest: Interest, now: Instant) {
        let seq = self.seq.unwrap_or(0);
        if let Some(after) = interest.resume_after {
            self.replay(&edge, after);
        }
        let cached = self
            .cached
            .as_ref()
            .filter(|cached| cached.expires > now)
            .map(|cached| CachedEvent {
                name: cached.name.clone(),
                data: cached.data.clone(),
                ttl_ms: cached.expires.duration_since(now).as_millis() as u64,
            });
        let confirmation = HubToEdge::Subscribed {
            key: self.key.clone(),
            generation: interest.generation,
            seq,
            cached,
        };
        edge.send(&self.key, link::encode(&confirmation));
        self.edges.insert(
            edge.link_id,
            EdgeInterest {
                link: edge,
                subscribers: interest.subscribers,
                generation: interest.generation,
            },
        );
    }

    /// Queues the events after `after` to one edge, announcing any part history no longer has.
    pub fn replay(&self, edge: &EdgeLink, after: u64) {
        let Some(seq) = self.seq else {
            return;
        };
        let events = match self.history.after(after, seq) {
            Replay::Complete(events) => events,
            Replay::Truncated {
                resume_after,
                events,
            } => {
                let truncated = HubToEdge::Truncated {
                    key: self.key.clone(),
                    resume_after,
                };
                edge.send(&self.key, link::encode(&truncated));
                events
            }
        };
        for frame in events {
            edge.send_hashed(self.hash, Bytes::clone(frame));
        }
    }

    /// Alone: a socket joins the presence channel: the joining edge gets the member list, and a
    /// new user is announced to everyone else with `member_added`. Regional channels decide in
    /// Redis and answer through [`ChannelState::joined`].
    pub fn join(&mut self, edge: &EdgeLink, joining: Joining, now: Instant, lifetimes: Lifetimes) {
        let Joining {
            socket,
            join_id,
            member,
            limit,
        } = joining;
        let key = self.key.clone();
        let answer = |outcome| {
            let answer = PresenceAnswer {
                key: key.clone(),
                socket,
                join_id,
                outcome,
            };
            edge.send(&key, link::encode(&HubToEdge::Presence(answer)));
        };
        let Presence::Local(members) = &mut self.presence else {
            let reason = format!("{} is not a presence channel", key.channel);
            answer(PresenceOutcome::Refused { reason });
            return;
        };
        let added = member.added_data();
        match members.join(socket, edge.link_id, member, limit) {
            Ok(joined) => {
                let snapshot = members.snapshot();
                if joined == Joined::NewMember {
                    self.publish_internal(MEMBER_ADDED, added, Some(socket), now, lifetimes);
                }
                let seq = self.seq.unwrap_or(0);
                answer(PresenceOutcome::Joined { snapshot, seq });
            }
            Err(full) => answer(PresenceOutcome::Refused {
                reason: full.to_string(),
            }),
        }
    }

    /// Regional: queues a join until its edge is confirmed.
    pub fn defer_join(&mut self, edge: Arc<EdgeLink>, joining: Joining) {
        self.pending_joins
            .retain(|(_, pending)| pending.socket != joining.socket);
        self.pending_joins.push((edge, joining));
    }

    /// Regional: the deferred joins whose edge is now confirmed.
    pub fn ready_joins(&mut self) -> Vec<(Arc<EdgeLink>, Joining)> {
        let (ready, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_joins)
            .into_iter()
            .partition(|(edge, _)| self.edges.contains_key(&edge.link_id));
        self.pending_joins = pending;
        ready
    }

    /// Regional: the region's answer to a join. Returns whether the socket left meanwhile, so
    /// the region must be told it left (again).
    pub fn joined(
        &mut self,
        edge: &EdgeLink,
        joining: Joining,
        outcome: Result<JoinOutcome, String>,
    ) -> bool {
        let Joining {
            socket,
            join_id,
            member,
            ..
        } = joining;
        if let Some(at) = self.left_in_flight.iter().position(|s| *s == socket) {
            self.left_in_flight.swap_remove(at);
            return matches!(outcome, Ok(JoinOutcome::Accepted { .. }));
        }
        let outcome = match outcome {
            Ok(JoinOutcome::Accepted { snapshot, seq }) => {
                if let Presence::Regional(sockets) = &mut self.presence {
                    sockets.insert(socket, (edge.link_id, member));
                }
                PresenceOutcome::Joined { snapshot, seq }
            }
            Ok(JoinOutcome::Full) => PresenceOutcome::Refused {
                reason: "the presence channel is full".into(),
            },
            Err(reason) => PresenceOutcome::Refused { reason },
        };
        let answer = PresenceAnswer {
            key: self.key.clone(),
            socket,
            join_id,
            outcome,
        };
        edge.send(&self.key, link::encode(&HubToEdge::Presence(answer)));
        false
    }

    /// A socket leaves the presence channel. Alone, its user's last socket announces
    /// `member_removed`; regionally, returns whether the region must be told.
    pub fn leave(&mut self, socket: SocketId, now: Instant, lifetimes: Lifetimes) -> bool {
        match &mut self.presence {
            Presence::None => false,
            Presence::Local(members) => {
                if let Some(user_id) = members.leave(socket) {
                    self.announce_removed(&user_id, now, lifetimes);
                }
                false
            }
            Presence::Regional(sockets) => {
                let pending = self.pending_joins.len();
                self.pending_joins
                    .retain(|(_, joining)| joining.socket != socket);
                if pending != self.pending_joins.len() {
                    // The join was never sent: nothing to undo in the region.
                    return false;
                }
                if sockets.remove(&socket).is_none() {
                    // The join is in flight: its answer must be undone when it comes.
                    self.left_in_flight.push(socket);
                }
                true
            }
        }
    }

    /// Forgets a link's interest and its presence sockets; returns the regional sockets the
    /// region must be told left.
    pub fn edge_gone(&mut self, link: LinkId, now: Instant, lifetimes: Lifetimes) -> Vec<SocketId> {
        self.edges.remove(&link);
        self.waiting.retain(|(edge, _)| edge.link_id != link);
        self.pending_joins.retain(|(edge, _)| edge.link_id != link);
        if self.edges.is_empty() && self.waiting.is_empty() && self.unwanted_since.is_none() {
            self.unwanted_since = Some(now);
        }
        match &mut self.presence {
            Presence::None => Vec::new(),
            Presence::Local(members) => {
                for user_id in members.link_gone(link) {
                    self.announce_removed(&user_id, now, lifetimes);
                }
                Vec::new()
            }
            Presence::Regional(sockets) => {
                let gone: Vec<SocketId> = sockets
                    .iter()
                    .filter(|(_, (owner, _))| *owner == link)
                    .map(|(socket, _)| *socket)
                    .collect();
                for socket in &gone {
                    sockets.remove(socket);
                }
                gone
            }
        }
    }

    /// This hub's regional presence sockets (to re-assert after Redis came back).
    pub fn regional_sockets(&self) -> Vec<(SocketId, Member)> {
        match &self.presence {
            Presence::Regional(sockets) => sockets
                .iter()
                .map(|(socket, (_, member))| (*socket, member.clone()))
                .collect(),
            Presence::None | Presence::Local(_) => Vec::new(),
        }
    }

    fn unused(&self) -> bool {
        self.edges.is_empty()
            && self.waiting.is_empty()
            && self.pending_joins.is_empty()
            && match &self.presence {
                Presence::None => true,
                Presence::Local(members) => members.is_empty(),
                Presence::Regional(sockets) => sockets.is_empty(),
            }
    }

    /// Alone: whether the channel can be forgotten — nobody wants it, nobody is a member, and its
    /// history and cache have expired.
    pub fn is_idle(&mut self, now: Instant, lifetimes: Lifetimes) -> bool {
        self.history.expire(now, lifetimes.history);
        if self
            .cached
            .as_ref()
            .is_some_and(|cached| cached.expires <= now)
        {
            self.cached = None;
        }
        self.unused() && self.history.is_empty() && self.cached.is_none()
    }

    /// Regional: whether nobody has wanted the channel for `linger`, so it can be detached.
    pub fn lingered(&self, now: Instant, linger: Duration) -> bool {
        self.unused()
            && !self.fetching
            && self
                .unwanted_since
                .is_some_and(|since| now.saturating_duration_since(since) >= linger)
    }
}
