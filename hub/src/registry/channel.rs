//! One channel's state on the hub: the edges that want it, its sequence, its history, its counts
//! and its presence sockets — the sequencing core, pure: no I/O, time passed in.
//!
//! Events come from the region with their sequence ([`ChannelState::receive`]), whether the
//! region is this hub alone or Redis. The channel is attached (followed, and its current sequence
//! read) before any edge is confirmed; events that arrive ahead of a gap wait in `ahead` until a
//! fetch fills it; interests that need history the hub does not hold wait for a fetch. Either
//! way edges see each sequence once, in order, and every confirmed interest gets exactly the
//! events after its `Subscribed`.
//!
//! Counts and presence are recorded in the region in the order decided here: an edge's count is
//! recorded on every change of its interest, and a presence join is handed to the region only
//! once the edge is confirmed and the count that includes the socket is durable, so no answer of
//! the region ever shows a member who is not counted as a subscription.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_shared::channel::{ChannelKey, ChannelKind};
use herald_shared::ids::SocketId;
use herald_shared::link::{
    self, CachedEvent, Event, HubToEdge, Interest, PresenceAnswer, PresenceOutcome, ReplayEnd,
    ReplayRequest, Replayed,
};
use herald_shared::presence::Member;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::edge::{EdgeLink, LinkId};
use crate::history::{History, HistoryLimits, Replay};
use crate::region::{Counter, Fetched, JoinOutcome, Op, RegionError, Retention};

/// Events held ahead of a gap before the channel gives up on them and refetches.
const AHEAD_LIMIT: usize = 10_000;

/// A client's replay goes out in parts of about this many bytes (a link frame holds at most
/// `MAX_FRAME_BYTES`, and a part never holds more than one event beyond this).
const REPLAY_PART_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
struct EdgeInterest {
    link: Arc<EdgeLink>,
    subscribers: u32,
    generation: u32,
}

/// One link's count of the channel: what was recorded in the region and what is durable, in
/// the edge's versions (see `Interest::version`).
#[derive(Debug, Clone)]
struct Count {
    link: Arc<EdgeLink>,
    counter: Counter,
    subscribers: u32,
    /// The edge's interest generation the versions belong to.
    generation: u32,
    /// The version of the latest count recorded.
    recorded: u64,
    /// The highest version the region confirmed durable.
    durable: u64,
}

#[derive(Debug)]
struct Cached {
    name: herald_shared::event::EventName,
    data: herald_shared::event::EventData,
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
#[derive(Debug, Clone)]
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

#[derive(Debug)]
struct PendingJoin {
    edge: Arc<EdgeLink>,
    joining: Joining,
    /// The count version of the edge that includes the socket.
    needs: u64,
}

/// A channel known to the hub.
#[derive(Debug)]
pub struct ChannelState {
    key: ChannelKey,
    /// `key.stable_hash()`, computed once: picks the link stream on every send.
    hash: u64,
    /// The last sequence delivered to edges; `None` until attached.
    seq: Option<u64>,
    history: History,
    /// Events that arrived ahead of a gap.
    ahead: BTreeMap<u64, Event>,
    /// Confirmed interests.
    edges: HashMap<LinkId, EdgeInterest>,
    /// Interests waiting for an attach or a history fetch.
    waiting: Vec<(Arc<EdgeLink>, Interest)>,
    /// Client replays (`docs/resume.md`) waiting for an attach or a history fetch.
    replays: Vec<(Arc<EdgeLink>, ReplayRequest)>,
    /// Every interested link's count (confirmed or waiting).
    counts: HashMap<LinkId, Count>,
    /// Presence joins waiting for their edge's interest to be confirmed and counted, so the
    /// member list they get is never older than the events the edge receives, and no member is
    /// recorded before its subscription is counted.
    pending_joins: Vec<PendingJoin>,
    /// Presence joins handed to the region, waiting for its answer.
    joins_in_flight: HashMap<SocketId, (Arc<EdgeLink>, Joining)>,
    /// Sockets that left while their join was in flight: an accepted join is undone.
    left_in_flight: HashSet<SocketId>,
    /// This hub's presence sockets the region accepted, with their link and member (to leave
    /// when the link goes, and to re-assert when the region lost its data).
    sockets: HashMap<SocketId, (LinkId, Member)>,
    /// Told once no interest waits any more (see [`ChannelState::when_settled`]).
    settled: Vec<oneshot::Sender<()>>,
    cached: Option<Cached>,
    /// Whether a fetch is in flight.
    fetching: bool,
    /// When a failed fetch is retried.
    retry_at: Option<Instant>,
    /// Whether the channel is followed in the region.
    attached: bool,
    /// Since when nobody wants the channel.
    unwanted_since: Option<Instant>,
    /// Whether an interest was confirmed on a cache channel with nothing cached since the last
    /// [`ChannelState::take_cache_miss`] (its edge answers `pusher:cache_miss`).
    cache_missed: bool,
}

/// What an edge's interest asks of the shard.
#[derive(Debug, Default, PartialEq)]
pub struct InterestOutcome {
    /// The channel must be fetched (or attached) before the interest can be confirmed.
    pub fetch: bool,
    /// The count to record in the region.
    pub count: Option<Op>,
}

impl ChannelState {
    /// A channel not attached yet.
    pub fn new(key: ChannelKey) -> Self {
        Self {
            hash: key.stable_hash(),
            key,
            seq: None,
            history: History::default(),
            ahead: BTreeMap::new(),
            edges: HashMap::new(),
            waiting: Vec::new(),
            replays: Vec::new(),
            counts: HashMap::new(),
            pending_joins: Vec::new(),
            joins_in_flight: HashMap::new(),
            left_in_flight: HashSet::new(),
            sockets: HashMap::new(),
            settled: Vec::new(),
            cached: None,
            fetching: false,
            retry_at: None,
            attached: false,
            unwanted_since: None,
            cache_missed: false,
        }
    }

    /// Whether a subscriber was confirmed with nothing cached since the last call (for the
    /// `cache_miss` webhook).
    pub fn take_cache_miss(&mut self) -> bool {
        std::mem::take(&mut self.cache_missed)
    }

    /// Whether this is a presence channel.
    pub fn is_presence(&self) -> bool {
        self.key.channel.kind() == ChannelKind::Presence
    }

    /// Connections subscribed through this hub's edges.
    pub fn local_subscriptions(&self) -> u64 {
        self.counts.values().map(|c| u64::from(c.subscribers)).sum()
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

    /// An event from the region. Returns whether a gap appeared that history must fill.
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

    /// Starts a fetch unless one is in flight: returns the sequence it should start after (the
    /// earliest resume among waiting interests, or the channel's own sequence) and whether it
    /// is an attach.
    pub fn start_fetch(&mut self) -> Option<(Option<u64>, bool)> {
        if self.fetching {
            return None;
        }
        self.fetching = true;
        self.retry_at = None;
        let resumes = self
            .waiting
            .iter()
            .filter_map(|(_, interest)| interest.resume_after)
            .chain(self.replays.iter().map(|(_, request)| request.after));
        Some((resumes.chain(self.seq).min(), !self.attached))
    }

    /// The region's answer to an attach or fetch that asked for history after `after`: fills
    /// gaps, confirms the waiting interests, tells who waited for them.
    pub fn fetched(
        &mut self,
        fetched: Fetched,
        after: Option<u64>,
        attached: bool,
        now: Instant,
        lifetimes: Lifetimes,
    ) {
        self.fetching = false;
        self.attached |= attached;
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
        for (edge, request) in std::mem::take(&mut self.replays) {
            self.answer_replay(&edge, request);
        }
        self.mark_unwanted(now);
        for settled in std::mem::take(&mut self.settled) {
            let _ = settled.send(());
        }
    }

    /// A fetch failed: interests keep waiting, and it is tried again at `retry_at`.
    pub fn fetch_failed(&mut self, retry_at: Instant) {
        self.fetching = false;
        self.retry_at = Some(retry_at);
    }

    /// Whether something waits for a fetch (interests, or a gap) and none is in flight.
    pub fn needs_fetch(&self) -> bool {
        !self.fetching
            && (!self.attached
                || !self.waiting.is_empty()
                || !self.replays.is_empty()
                || self.has_gap())
    }

    /// When a failed fetch is due again.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| self.needs_fetch())
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

    /// Applies an edge's interest: confirms it (or queues it for a fetch) and records the
    /// edge's new count.
    pub fn interest(
        &mut self,
        edge: Arc<EdgeLink>,
        interest: Interest,
        now: Instant,
    ) -> InterestOutcome {
        let link_id = edge.link_id;
        let count = self.count(&edge, &interest);
        if interest.subscribers == 0 {
            self.edges.remove(&link_id);
            self.waiting
                .retain(|(waiting, _)| waiting.link_id != link_id);
            self.mark_unwanted(now);
            return InterestOutcome {
                fetch: false,
                count,
            };
        }
        self.unwanted_since = None;
        if let Some(existing) = self.edges.get_mut(&link_id)
            && existing.generation == interest.generation
        {
            existing.subscribers = interest.subscribers;
            return InterestOutcome {
                fetch: false,
                count,
            };
        }
        let covered = match (self.seq, interest.resume_after) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(seq), Some(after)) => self.history.covers(after, seq),
        };
        if covered && self.waiting.is_empty() {
            self.confirm(edge, interest, now);
            InterestOutcome {
                fetch: false,
                count,
            }
        } else {
            self.waiting
                .retain(|(waiting, _)| waiting.link_id != link_id);
            self.waiting.push((edge, interest));
            InterestOutcome { fetch: true, count }
        }
    }

    /// Records a link's subscriber count as of the interest's version; returns the region write
    /// (every version is written, even with an unchanged count, so that it is acknowledged once
    /// the region holds it).
    fn count(&mut self, edge: &Arc<EdgeLink>, interest: &Interest) -> Option<Op> {
        let counter = Counter {
            edge: edge.edge_id,
            session: edge.session,
        };
        let entry = self.counts.entry(edge.link_id).or_insert_with(|| Count {
            link: edge.clone(),
            counter,
            subscribers: 0,
            generation: interest.generation,
            recorded: 0,
            durable: 0,
        });
        if entry.generation != interest.generation {
            // A new subscription after the channel was left: versions start again.
            entry.generation = interest.generation;
            entry.durable = 0;
        }
        entry.subscribers = interest.subscribers;
        entry.recorded = interest.version;
        let op = Op::Count {
            counter,
            count: interest.subscribers,
            generation: interest.generation,
            version: interest.version,
        };
        if interest.subscribers == 0 {
            self.counts.remove(&edge.link_id);
        }
        Some(op)
    }

    fn mark_unwanted(&mut self, now: Instant) {
        if self.edges.is_empty()
            && self.waiting.is_empty()
            && self.replays.is_empty()
            && self.unwanted_since.is_none()
        {
            self.unwanted_since = Some(now);
        }
    }

    /// The region holds a count up to `version`: the edge is told (`Counted`), so it confirms
    /// the subscriptions that count includes. Returns whether it is a current count.
    pub fn counted(&mut self, counter: Counter, generation: u32, version: u64) -> bool {
        let Some(count) = self
            .counts
            .values_mut()
            .find(|c| c.counter == counter && c.generation == generation)
        else {
            return false;
        };
        if version > count.durable {
            count.durable = version;
            let counted = HubToEdge::Counted {
                key: self.key.clone(),
                generation,
                version,
            };
            count.link.send(&self.key, link::encode(&counted));
        }
        true
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
        self.cache_missed |= cached.is_none() && self.key.channel.is_cache();
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

    /// A client socket of `edge` resumes the channel after `request.after`: answers at once when
    /// history covers what followed, else returns `true`: the channel must be fetched first
    /// (history may hold more in the region, or the channel is not attached yet).
    pub fn replay_for(
        &mut self,
        edge: Arc<EdgeLink>,
        request: ReplayRequest,
        now: Instant,
    ) -> bool {
        let covered = self
            .seq
            .is_some_and(|seq| self.waiting.is_empty() && self.history.covers(request.after, seq));
        if covered {
            self.answer_replay(&edge, request);
            self.mark_unwanted(now);
            false
        } else {
            self.unwanted_since = None;
            self.replays.push((edge, request));
            true
        }
    }

    /// Sends one socket the events after its position, in parts, the last with the channel's
    /// sequence and what history no longer held. On the channel's stream, so the events after
    /// `through` follow it.
    fn answer_replay(&self, edge: &EdgeLink, request: ReplayRequest) {
        let through = self.seq.unwrap_or(0);
        let (frames, lost_through) = match self.history.after(request.after, through) {
            Replay::Complete(frames) => (frames, None),
            Replay::Truncated {
                resume_after,
                events,
            } => (events, Some(resume_after)),
        };
        let mut events = Vec::new();
        let mut bytes = 0;
        for frame in frames {
            // History holds the very frames sent to edges: always an encoded `Event`.
            let mut buf = bytes::BytesMut::from(&frame[..]);
            if let Ok(Some(HubToEdge::Event(event))) = link::decode_frame::<HubToEdge>(&mut buf) {
                bytes += frame.len();
                events.push(event);
            }
            if bytes >= REPLAY_PART_BYTES {
                let part = HubToEdge::Replayed(Replayed {
                    request: request.clone(),
                    events: std::mem::take(&mut events),
                    end: None,
                });
                edge.send_hashed(self.hash, link::encode(&part));
                bytes = 0;
            }
        }
        let last = HubToEdge::Replayed(Replayed {
            request,
            events,
            end: Some(ReplayEnd {
                through,
                lost_through,
            }),
        });
        edge.send_hashed(self.hash, link::encode(&last));
    }

    /// Answers a presence join at once (a refusal), without asking the region.
    pub fn refuse(&self, edge: &EdgeLink, joining: &Joining, reason: String) {
        let answer = PresenceAnswer {
            key: self.key.clone(),
            socket: joining.socket,
            join_id: joining.join_id,
            outcome: PresenceOutcome::Refused { reason },
        };
        edge.send(&self.key, link::encode(&HubToEdge::Presence(answer)));
    }

    /// Queues a presence join until its edge is confirmed and counted with the socket.
    pub fn defer_join(&mut self, edge: Arc<EdgeLink>, joining: Joining) {
        let needs = self.counts.get(&edge.link_id).map_or(0, |c| c.recorded);
        self.pending_joins
            .retain(|pending| pending.joining.socket != joining.socket);
        self.pending_joins.push(PendingJoin {
            edge,
            joining,
            needs,
        });
    }

    /// The deferred joins that may go to the region now (their edge is confirmed and its count
    /// including them is durable), as region writes; they are in flight from now on.
    pub fn ready_joins(&mut self) -> Vec<Op> {
        let mut ready = Vec::new();
        let pending = std::mem::take(&mut self.pending_joins);
        for join in pending {
            let link_id = join.edge.link_id;
            let counted = self
                .counts
                .get(&link_id)
                .is_some_and(|count| count.durable >= join.needs);
            if !self.edges.contains_key(&link_id) || !counted {
                self.pending_joins.push(join);
                continue;
            }
            let PendingJoin { edge, joining, .. } = join;
            ready.push(Op::Join {
                socket: joining.socket,
                join_id: joining.join_id,
                member: joining.member.clone(),
                limit: joining.limit,
            });
            self.left_in_flight.remove(&joining.socket);
            self.joins_in_flight.insert(joining.socket, (edge, joining));
        }
        ready
    }

    /// The region's answer to a join. Returns the write that undoes it when the socket left
    /// meanwhile.
    pub fn joined(
        &mut self,
        socket: SocketId,
        join_id: u64,
        outcome: Result<JoinOutcome, RegionError>,
    ) -> Option<Op> {
        match self.joins_in_flight.get(&socket) {
            Some((_, joining)) if joining.join_id == join_id => {}
            _ => return None,
        }
        let (edge, joining) = self.joins_in_flight.remove(&socket)?;
        if self.left_in_flight.remove(&socket) {
            return matches!(outcome, Ok(JoinOutcome::Accepted { .. }))
                .then_some(Op::Leave { socket });
        }
        let outcome = match outcome {
            Ok(JoinOutcome::Accepted { snapshot, seq }) => {
                self.sockets
                    .insert(socket, (edge.link_id, joining.member.clone()));
                PresenceOutcome::Joined { snapshot, seq }
            }
            Ok(JoinOutcome::Full) => PresenceOutcome::Refused {
                reason: format!("the presence channel is full ({} members)", joining.limit),
            },
            Err(error) => PresenceOutcome::Refused {
                reason: error.to_string(),
            },
        };
        let answer = PresenceAnswer {
            key: self.key.clone(),
            socket,
            join_id,
            outcome,
        };
        edge.send(&self.key, link::encode(&HubToEdge::Presence(answer)));
        None
    }

    /// A socket leaves the presence channel; returns the region write, if the region holds it
    /// (or is deciding its join).
    pub fn leave(&mut self, socket: SocketId) -> Option<Op> {
        let pending = self.pending_joins.len();
        self.pending_joins
            .retain(|join| join.joining.socket != socket);
        if pending != self.pending_joins.len() {
            // The join was never sent: nothing to undo in the region.
            return None;
        }
        if self.joins_in_flight.contains_key(&socket) {
            // Its answer must be undone when it comes.
            self.left_in_flight.insert(socket);
            return None;
        }
        self.sockets.remove(&socket).map(|_| Op::Leave { socket })
    }

    /// Forgets a link's interest and presence sockets; returns the region writes, in order:
    /// the sockets' leaves before the edge's count falls to zero.
    pub fn edge_gone(&mut self, link: LinkId, now: Instant) -> Vec<Op> {
        self.edges.remove(&link);
        self.waiting.retain(|(edge, _)| edge.link_id != link);
        self.replays.retain(|(edge, _)| edge.link_id != link);
        self.pending_joins.retain(|join| join.edge.link_id != link);
        for (socket, (edge, _)) in &self.joins_in_flight {
            if edge.link_id == link {
                self.left_in_flight.insert(*socket);
            }
        }
        self.mark_unwanted(now);
        let gone: Vec<SocketId> = self
            .sockets
            .iter()
            .filter(|(_, (owner, _))| *owner == link)
            .map(|(socket, _)| *socket)
            .collect();
        let mut ops: Vec<Op> = gone
            .into_iter()
            .map(|socket| {
                self.sockets.remove(&socket);
                Op::Leave { socket }
            })
            .collect();
        if let Some(count) = self.counts.remove(&link) {
            ops.push(Op::Count {
                counter: count.counter,
                count: 0,
                generation: count.generation,
                version: count.recorded + 1,
            });
        }
        ops
    }

    /// Everything this hub holds of the channel, to record again after the region lost its
    /// data: counts, then presence sockets.
    pub fn reassert(&self) -> Vec<Op> {
        let counts = self.counts.values().map(|count| Op::Count {
            counter: count.counter,
            count: count.subscribers,
            generation: count.generation,
            version: count.recorded,
        });
        let sockets = self
            .sockets
            .iter()
            .map(|(socket, (_, member))| Op::Reassert {
                socket: *socket,
                member: member.clone(),
            });
        counts.chain(sockets).collect()
    }

    fn unused(&self) -> bool {
        self.edges.is_empty()
            && self.waiting.is_empty()
            && self.replays.is_empty()
            && self.counts.is_empty()
            && self.pending_joins.is_empty()
            && self.joins_in_flight.is_empty()
            && self.sockets.is_empty()
    }

    /// When the channel may be forgotten (and no longer followed): once nobody has wanted it for
    /// the region's linger and no fetch is in flight — and, when the registry's history is the
    /// only one, once its history and cache expired and the history's age passed since it was
    /// last wanted. `None` while it is in use.
    ///
    /// Alone, the channel's sequence lives only here (and in the memory region while followed):
    /// a channel forgotten and followed again is seeded anew from the clock, and a client that
    /// holds the old sequence as its position (`docs/resume.md`) would be told its resume failed
    /// although nothing was published meanwhile. So the sequence is kept as long as a client
    /// that left may resume: the history's age after the channel was last wanted.
    pub fn release_at(&self, retention: Retention, lifetimes: Lifetimes) -> Option<Instant> {
        if !self.unused() || self.fetching {
            return None;
        }
        let unwanted_since = self.unwanted_since?;
        let mut at = unwanted_since + retention.linger;
        if retention.history_is_local {
            at = at.max(unwanted_since + lifetimes.history.max_age);
            if let Some(expires) = self.history.expires_at(lifetimes.history) {
                at = at.max(expires);
            }
            if let Some(cached) = &self.cached {
                at = at.max(cached.expires);
            }
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests;
