//! One shard of the local index: owns its channels, decides transitions, fans out.
//!
//! A subscription is confirmed to its client (`subscription_succeeded`, or a sign-in's
//! `signin_success`) only once the hub has confirmed the channel *and* said the region counts the
//! socket: each change of a channel's subscriber count gets a version, each subscriber remembers
//! the version that includes it, and the hub's `Counted` answers the highest version the region
//! holds. So every hub's answer to a channel query sent after the confirmation counts the socket
//! (read-your-writes, R-API-4). Presence subscribers are confirmed by their join's answer, which
//! the hub gives only after their count is held.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use herald_shared::channel::ChannelKey;
use herald_shared::event::{EventData, EventName, TERMINATE_CONNECTIONS};
use herald_shared::ids::SocketId;
use herald_shared::link::{
    CachedEvent, ClientEvent, Event, PresenceAnswer, PresenceOutcome, ReplayRequest, Replayed,
};
use herald_shared::protocol::{ErrorCode, Outgoing, Resume};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::resume::{CatchUp, Held, Step, is_member_event, with_position};
use super::{Board, CloseOrder, Outbox, OutboxRef, Pushed, encode};
use super::{Command, Mode};
use crate::frame::TextFrame;
use crate::metrics;
use crate::stats::EdgeStats;

#[derive(Debug)]
struct Subscriber {
    outbox: Outbox,
    /// Receives the channel's events (after its `subscription_succeeded`).
    active: bool,
    /// Gets `subscription_succeeded` when it becomes active (or now, if it already is).
    announce: bool,
    /// The pending or accepted presence join.
    join_id: Option<u64>,
    /// Events held for a pending presence join, with their sequences: once the hub answers
    /// with the member list as of sequence S, those after S are delivered. Other subscribers of
    /// a confirmed channel hold the events that arrive while they wait for their count, and get
    /// them right after their confirmation; resuming ones hold them until their replay ended.
    held: Vec<Held>,
    /// Whether the client opted in to resuming: its event frames carry their position.
    positioned: bool,
    /// A positioned subscriber skips events at or below this position (already given to it).
    skip_through: u64,
    /// A resuming subscriber's replay, until it is delivered.
    catch_up: Option<Box<CatchUp>>,
    /// The channel's count version that includes this socket: it becomes active only once the
    /// region holds it.
    counted_at: u64,
    /// Frames it gets first when it becomes active (a sign-in's answer).
    greeting: Vec<Utf8Bytes>,
}

/// How many sockets ahead of its writes fan-out asks for a socket's state ([`OutboxRef::prefetch`]).
const PREFETCH_AHEAD: usize = 2;

/// Events held for one pending presence join before the socket counts as too slow.
const HELD_LIMIT: usize = 256;

/// Events held for a resuming subscriber while its replay comes, before it counts as too slow.
const RESUME_HELD_LIMIT: usize = 2_000;

impl Subscriber {
    fn new(outbox: Outbox, announce: bool, join_id: Option<u64>, counted_at: u64) -> Self {
        Self {
            outbox,
            active: false,
            announce,
            join_id,
            held: Vec::new(),
            positioned: false,
            skip_through: 0,
            catch_up: None,
            counted_at,
            greeting: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Cached {
    name: EventName,
    data: EventData,
    expires: Instant,
}

/// One channel's local subscribers.
#[derive(Debug)]
struct LocalChannel {
    subscribers: HashMap<SocketId, Subscriber>,
    /// This channel's interest generation (set when it went from 0 to 1 subscriber).
    generation: u32,
    /// Whether the hub has confirmed `generation`.
    confirmed: bool,
    /// Bumped on every change of the subscriber count (within `generation`).
    version: u64,
    /// The highest version the hub said the region holds.
    counted: u64,
    /// A cache channel's last event and how long events stay cached.
    cached: Option<Cached>,
    cache_ttl: Duration,
    /// Whether a user channel's watchlist was reported to the hub (the board holds it).
    watchlist_reported: bool,
    /// The last event sequence delivered here (what a resuming subscriber's replay must reach).
    last_seq: u64,
    /// The subscribers that become active once the channel is confirmed and the region counts
    /// them (neither presence joins nor resuming ones), with their `counted_at`, in the order
    /// they subscribed — so in the order of `counted_at`. An entry whose socket left or
    /// subscribed again since is stale and skipped. Kept so that a confirmation or a count
    /// looks at the sockets it makes ready, not at every subscriber of the channel.
    waiting: VecDeque<(u64, SocketId)>,
    /// The subscribers that have a replay to finish (`Subscriber::catch_up`); may name sockets
    /// that finished or left since.
    resuming: HashSet<SocketId>,
}

/// The shard's state. Every method is synchronous: decide, mutate, push to outboxes and the
/// board — nothing here awaits.
#[derive(Debug)]
struct Shard {
    channels: HashMap<ChannelKey, LocalChannel>,
    board: Arc<Board>,
    stats: Arc<EdgeStats>,
    sent: metrics::Sent,
    next_generation: u32,
    next_join: u64,
}

/// Runs a shard until every handle is dropped.
pub async fn run(mut commands: mpsc::Receiver<Command>, board: Arc<Board>, stats: Arc<EdgeStats>) {
    let mut shard = Shard::new(board, stats);
    while let Some(command) = commands.recv().await {
        shard.apply(command, Instant::now());
    }
}

/// Marks a new subscriber of a client that opted in to resuming (`resume`): positioned, and when
/// it resumes after a position, waiting for the replay it returns the request of.
fn resuming(
    subscriber: &mut Subscriber,
    key: &ChannelKey,
    socket: SocketId,
    resume: Option<Resume>,
    known: u64,
) -> Option<ReplayRequest> {
    let resume = resume?;
    subscriber.positioned = true;
    let after = resume.after?;
    subscriber.skip_through = after;
    let request = ReplayRequest {
        key: key.clone(),
        socket,
        after,
    };
    subscriber.catch_up = Some(Box::new(CatchUp::new(
        request.clone(),
        resume.previous_socket,
        known,
    )));
    Some(request)
}

/// Records the watchlist of a user channel's user on the board (empty: their last socket left).
/// The frame of an event for one subscriber: the variant with its position for one that opted in
/// to resuming (made once per event when the first such subscriber meets it), else the plain one.
fn frame_for<'a>(
    encoded: &'a TextFrame,
    positioned: &'a Option<TextFrame>,
    wants_position: bool,
) -> &'a TextFrame {
    match positioned {
        Some(frame) if wants_position => frame,
        _ => encoded,
    }
}

fn report_watchlist(board: &Board, key: &ChannelKey, watchlist: Vec<String>) {
    if let Some(user_id) = key.channel.server_to_user_id() {
        board.watchlist(key.app.clone(), user_id.to_string(), watchlist);
    }
}

/// What an announced subscriber gets when it becomes active: `subscription_succeeded` (with
/// `data`), then, on a cache channel, the cached event or `pusher:cache_miss`.
fn welcome(
    key: &ChannelKey,
    cached: Option<&Cached>,
    data: String,
    now: Instant,
) -> Vec<Utf8Bytes> {
    let succeeded = Outgoing::SubscriptionSucceeded {
        channel: key.channel.clone(),
        data,
    };
    let mut frames = vec![encode(&succeeded)];
    if key.channel.is_cache() {
        let replay = match cached.filter(|c| c.expires > now) {
            Some(cached) => Outgoing::Event {
                channel: key.channel.clone(),
                event: cached.name.clone(),
                data: cached.data.clone(),
                user_id: None,
            },
            None => Outgoing::CacheMiss {
                channel: key.channel.clone(),
            },
        };
        frames.push(encode(&replay));
    }
    frames
}

impl LocalChannel {
    /// Adds a new subscriber, noting it among those [`LocalChannel::ready`] or
    /// [`LocalChannel::finish_resumes`] look at.
    fn insert(&mut self, socket: SocketId, subscriber: Subscriber) {
        if subscriber.catch_up.is_some() {
            self.resuming.insert(socket);
        } else if subscriber.join_id.is_none() {
            self.waiting.push_back((subscriber.counted_at, socket));
        }
        self.subscribers.insert(socket, subscriber);
    }

    /// Whether a subscriber waits for the channel's confirmation and its count alone: the
    /// subscribers [`LocalChannel::waiting`] is kept for.
    fn waits_for_count(subscriber: &Subscriber) -> bool {
        !subscriber.active && subscriber.join_id.is_none() && subscriber.catch_up.is_none()
    }

    /// A socket left: drops the stale entries of [`LocalChannel::waiting`] once they outnumber
    /// the subscribers, so a client that subscribes and leaves again and again while the
    /// channel waits for its count cannot grow it without bound.
    fn forget(&mut self, socket: SocketId) {
        self.resuming.remove(&socket);
        if self.waiting.len() > 2 * self.subscribers.len() + 16 {
            let subscribers = &self.subscribers;
            self.waiting.retain(|(counted_at, socket)| {
                subscribers
                    .get(socket)
                    .is_some_and(|s| s.counted_at == *counted_at && Self::waits_for_count(s))
            });
        }
    }

    /// The subscribers (not presence ones, which their join's answer activates, nor resuming
    /// ones) that may become active now: the channel is confirmed and the region counts them.
    fn ready(&mut self) -> Vec<SocketId> {
        let mut ready = Vec::new();
        if !self.confirmed {
            return ready;
        }
        while let Some(&(counted_at, socket)) = self.waiting.front() {
            if counted_at > self.counted {
                break;
            }
            self.waiting.pop_front();
            if self
                .subscribers
                .get(&socket)
                .is_some_and(|s| s.counted_at == counted_at && Self::waits_for_count(s))
            {
                ready.push(socket);
            }
        }
        ready
    }

    /// Makes subscribers active: each gets its greeting, and the announced ones the [`welcome`]
    /// frames, encoded once for all of them. Positioned subscribers get their
    /// `subscription_succeeded` with the position they start after: `position` (a presence
    /// join's sequence), else the one before the first event held for them, else the channel's.
    fn activate(
        &mut self,
        key: &ChannelKey,
        sockets: &[SocketId],
        data: String,
        position: Option<u64>,
        now: Instant,
    ) {
        let mut data = Some(data);
        let mut frames = Vec::new();
        let last_seq = self.last_seq;
        for socket in sockets {
            let Some(subscriber) = self.subscribers.get_mut(socket) else {
                continue;
            };
            subscriber.active = true;
            for frame in std::mem::take(&mut subscriber.greeting) {
                subscriber.outbox.push(frame);
            }
            if subscriber.announce {
                if let Some(data) = data.take() {
                    frames = welcome(key, self.cached.as_ref(), data, now);
                }
                for (index, frame) in frames.iter().enumerate() {
                    if index == 0 && subscriber.positioned {
                        let start = position
                            .or_else(|| subscriber.held.first().map(|held| held.seq - 1))
                            .unwrap_or(last_seq);
                        subscriber.outbox.push(with_position(frame, start));
                    } else {
                        subscriber.outbox.push(frame.clone());
                    }
                }
            }
            if subscriber.join_id.is_none() {
                for held in std::mem::take(&mut subscriber.held) {
                    subscriber.outbox.push(held.frame);
                }
            }
        }
    }

    /// Delivers a resuming subscriber's catch-up once its replay has ended and it is confirmed
    /// (a presence join answered; else the channel confirmed and the socket counted).
    fn finish_resume(&mut self, key: &ChannelKey, socket: SocketId, now: Instant) {
        let Some(subscriber) = self.subscribers.get_mut(&socket) else {
            return;
        };
        let Some(catch_up) = subscriber.catch_up.as_ref() else {
            return;
        };
        let confirmed = if subscriber.join_id.is_some() {
            catch_up.joined()
        } else {
            self.confirmed && subscriber.counted_at <= self.counted
        };
        if !catch_up.answered() || !confirmed || subscriber.active {
            return;
        }
        let catch_up = subscriber.catch_up.take().expect("checked above");
        let data = catch_up.snapshot().unwrap_or_else(|| "{}".into());
        let held = std::mem::take(&mut subscriber.held);
        let finished = catch_up.finish(&key.channel, socket, held);
        subscriber.active = true;
        subscriber.skip_through = finished.skip_through;
        let mut frames = welcome(key, self.cached.as_ref(), data, now);
        if !finished.failed {
            // The replay holds the cache channel's last event already.
            frames.truncate(1);
        }
        frames[0] = with_position(&frames[0], finished.position);
        for frame in frames.into_iter().chain(finished.frames) {
            subscriber.outbox.push(frame);
        }
    }

    /// Tries [`LocalChannel::finish_resume`] for every resuming subscriber.
    fn finish_resumes(&mut self, key: &ChannelKey, now: Instant) {
        if self.resuming.is_empty() {
            return;
        }
        let resuming: Vec<SocketId> = self.resuming.iter().copied().collect();
        for socket in resuming {
            self.finish_resume(key, socket, now);
        }
        let subscribers = &self.subscribers;
        self.resuming.retain(|socket| {
            subscribers
                .get(socket)
                .is_some_and(|s| s.catch_up.is_some())
        });
    }
}

impl Shard {
    fn new(board: Arc<Board>, stats: Arc<EdgeStats>) -> Self {
        Self {
            channels: HashMap::new(),
            board,
            stats,
            sent: metrics::Sent::default(),
            next_generation: 0,
            next_join: 0,
        }
    }

    fn apply(&mut self, command: Command, now: Instant) {
        match command {
            Command::Subscribe {
                key,
                socket,
                outbox,
                mode,
                resume,
            } => self.subscribe(key, socket, outbox, mode, resume, now),
            Command::Unsubscribe { key, socket } => self.unsubscribe(key, socket),
            Command::Confirmed {
                key,
                generation,
                seq,
                cached,
                cache_ttl,
            } => self.confirmed(&key, generation, seq, cached, cache_ttl, now),
            Command::Counted {
                key,
                generation,
                version,
            } => self.counted(&key, generation, version, now),
            Command::Presence(PresenceAnswer {
                key,
                socket,
                join_id,
                outcome: PresenceOutcome::Joined { snapshot, seq },
            }) => {
                if let Some(channel) = self.channels.get_mut(&key)
                    && let Some(subscriber) = channel
                        .subscribers
                        .get_mut(&socket)
                        .filter(|s| s.join_id == Some(join_id) && !s.active)
                {
                    if let Some(catch_up) = subscriber.catch_up.as_mut() {
                        catch_up.join(snapshot, seq);
                        channel.finish_resume(&key, socket, now);
                        return;
                    }
                    channel.activate(&key, &[socket], snapshot, Some(seq), now);
                    if let Some(subscriber) = channel.subscribers.get_mut(&socket) {
                        for held in std::mem::take(&mut subscriber.held)
                            .into_iter()
                            .filter(|held| held.seq > seq)
                        {
                            subscriber.outbox.push(held.frame);
                        }
                    }
                }
            }
            Command::Presence(PresenceAnswer {
                key,
                socket,
                join_id,
                outcome: PresenceOutcome::Refused { reason },
            }) => self.refused(key, socket, join_id, reason),
            Command::Deliver(event) => self.deliver(event, now),
            Command::Replayed(replayed) => self.replayed(replayed, now),
            Command::ClientEvent { event, outbox } => self.client_event(event, &outbox),
            Command::Count(reply) => {
                let subscriptions = self.channels.values().map(|c| c.subscribers.len()).sum();
                let _ = reply.send((self.channels.len(), subscriptions));
            }
        }
    }

    fn subscribe(
        &mut self,
        key: ChannelKey,
        socket: SocketId,
        outbox: Outbox,
        mode: Mode,
        resume: Option<Resume>,
        now: Instant,
    ) {
        let app_id = key.app.clone();
        let channel = match self.channels.entry(key.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.next_generation = self.next_generation.wrapping_add(1);
                entry.insert(LocalChannel {
                    subscribers: HashMap::new(),
                    generation: self.next_generation,
                    confirmed: false,
                    version: 0,
                    counted: 0,
                    cached: None,
                    cache_ttl: Duration::ZERO,
                    watchlist_reported: false,
                    last_seq: 0,
                    waiting: VecDeque::new(),
                    resuming: HashSet::new(),
                })
            }
        };
        let before = channel.subscribers.len();
        // The count version that includes the socket if it is new.
        let counted_at = channel.version + 1;
        let mut join = None;
        let mut replay = None;
        match mode {
            Mode::Announced => match channel.subscribers.get_mut(&socket) {
                Some(existing) => {
                    // Subscribing again (or asking for a channel already held since sign-in):
                    // announced now if it is active, else when it becomes active.
                    existing.announce = true;
                    if existing.active {
                        channel.activate(&key, &[socket], "{}".into(), None, now);
                    }
                }
                None => {
                    let mut subscriber = Subscriber::new(outbox, true, None, counted_at);
                    replay = resuming(&mut subscriber, &key, socket, resume, channel.last_seq);
                    channel.insert(socket, subscriber);
                }
            },
            Mode::Presence(member) => {
                self.next_join += 1;
                let join_id = self.next_join;
                let mut subscriber = Subscriber::new(outbox, true, Some(join_id), counted_at);
                replay = resuming(&mut subscriber, &key, socket, resume, channel.last_seq);
                channel.insert(socket, subscriber);
                join = Some((join_id, member));
            }
            Mode::SignedIn {
                watchlist,
                greeting,
            } => {
                match channel.subscribers.entry(socket) {
                    Entry::Occupied(mut existing) if existing.get().active => {
                        for frame in greeting {
                            existing.get_mut().outbox.push(frame);
                        }
                    }
                    Entry::Occupied(mut existing) => existing.get_mut().greeting.extend(greeting),
                    Entry::Vacant(_) => {
                        let mut subscriber = Subscriber::new(outbox, false, None, counted_at);
                        subscriber.greeting = greeting;
                        channel.insert(socket, subscriber);
                    }
                }
                if !channel.watchlist_reported && !watchlist.is_empty() {
                    channel.watchlist_reported = true;
                    report_watchlist(&self.board, &key, watchlist);
                }
            }
        }
        let subscribers = channel.subscribers.len();
        if subscribers != before {
            channel.version = counted_at;
            // The count first, then the join it includes (see the board's order).
            self.board.set(
                key.clone(),
                subscribers as u32,
                channel.generation,
                channel.version,
            );
            metrics::subscriptions(&app_id, subscribers as isize - before as isize);
        }
        if let Some((join_id, member)) = join {
            self.board.join(key, socket, join_id, member);
        }
        if let Some(request) = replay {
            self.board.replay(request);
        }
    }

    /// A part of a resuming subscriber's replay.
    fn replayed(&mut self, replayed: Replayed, now: Instant) {
        let key = replayed.request.key.clone();
        let socket = replayed.request.socket;
        let Some(channel) = self.channels.get_mut(&key) else {
            return;
        };
        let Some(catch_up) = channel
            .subscribers
            .get_mut(&socket)
            .and_then(|s| s.catch_up.as_mut())
        else {
            return;
        };
        match catch_up.part(replayed) {
            Step::Wait => {}
            Step::Ask { done, next } => {
                self.board.replay_done(&done);
                self.board.replay(next);
            }
            Step::Done(done) => {
                self.board.replay_done(&done);
                channel.finish_resume(&key, socket, now);
            }
        }
    }

    fn unsubscribe(&mut self, key: ChannelKey, socket: SocketId) {
        let Entry::Occupied(mut entry) = self.channels.entry(key.clone()) else {
            return;
        };
        let channel = entry.get_mut();
        let Some(subscriber) = channel.subscribers.remove(&socket) else {
            return;
        };
        channel.forget(socket);
        if let Some(catch_up) = &subscriber.catch_up {
            self.board.replay_done(catch_up.request());
        }
        if subscriber.join_id.is_some() {
            self.board.leave(key.clone(), socket);
        }
        metrics::subscriptions(&key.app, -1);
        channel.version += 1;
        let (remaining, generation, version) = (
            channel.subscribers.len() as u32,
            channel.generation,
            channel.version,
        );
        if remaining == 0 {
            if channel.watchlist_reported {
                report_watchlist(&self.board, &key, Vec::new());
            }
            entry.remove();
        }
        // After the leave it excludes (see the board's order).
        self.board.set(key, remaining, generation, version);
    }

    fn confirmed(
        &mut self,
        key: &ChannelKey,
        generation: u32,
        seq: u64,
        cached: Option<CachedEvent>,
        cache_ttl: Duration,
        now: Instant,
    ) {
        let Some(channel) = self.channels.get_mut(key) else {
            return;
        };
        if channel.generation != generation || channel.confirmed {
            return;
        }
        channel.confirmed = true;
        // The events that follow the confirmation come after `seq`.
        channel.last_seq = channel.last_seq.max(seq);
        channel.cache_ttl = cache_ttl;
        channel.cached = cached.map(|cached| Cached {
            name: cached.name,
            data: cached.data,
            expires: now + Duration::from_millis(cached.ttl_ms),
        });
        let ready = channel.ready();
        channel.activate(key, &ready, "{}".into(), None, now);
        channel.finish_resumes(key, now);
    }

    /// The region holds the channel's count as of `version`: the subscribers it includes are
    /// confirmed to their clients (once the channel is confirmed too).
    fn counted(&mut self, key: &ChannelKey, generation: u32, version: u64, now: Instant) {
        let Some(channel) = self.channels.get_mut(key) else {
            return;
        };
        if channel.generation != generation || version <= channel.counted {
            return;
        }
        channel.counted = version;
        let ready = channel.ready();
        channel.activate(key, &ready, "{}".into(), None, now);
        channel.finish_resumes(key, now);
    }

    fn refused(&mut self, key: ChannelKey, socket: SocketId, join_id: u64, reason: String) {
        let Some(channel) = self.channels.get(&key) else {
            return;
        };
        let Some(subscriber) = channel
            .subscribers
            .get(&socket)
            .filter(|s| s.join_id == Some(join_id))
        else {
            return;
        };
        subscriber.outbox.push(encode(&Outgoing::SubscriptionError {
            channel: key.channel.to_string(),
            kind: "LimitReached",
            error: reason,
            status: 403,
        }));
        self.unsubscribe(key, socket);
    }

    fn deliver(&mut self, event: Event, now: Instant) {
        let Some(channel) = self.channels.get_mut(&event.key) else {
            return;
        };
        if event.name.as_str() == TERMINATE_CONNECTIONS {
            for subscriber in channel.subscribers.values() {
                subscriber.outbox.close(CloseOrder::Terminated);
            }
            return;
        }
        if event.key.channel.is_cache() && !event.name.is_reserved() {
            channel.cached = Some(Cached {
                name: event.name.clone(),
                data: event.data.clone(),
                expires: now + channel.cache_ttl,
            });
        }
        // Encode and frame once; every subscriber gets the same bytes.
        let event_name = event.name.clone();
        let encoded = TextFrame::new(
            &Outgoing::Event {
                channel: event.key.channel.clone(),
                event: event.name,
                data: event.data,
                user_id: event.user_id,
            }
            .encode(),
        );
        channel.last_seq = event.seq;
        // The variant with the event's position, for subscribers that opted in to resuming:
        // encoded at most once per event, whatever their number.
        let mut positioned: Option<TextFrame> = None;
        // First the walk over the subscribers, with no system call in it (the table's entries
        // stream through the cache), choosing who gets the event now; then the writes, each
        // socket's state asked for two sockets ahead, so its cache misses overlap the writes
        // before it instead of stalling the walk (the floor keeps nothing per socket but its
        // descriptor; an edge keeps each socket's outbox, shared with its task).
        let mut recipients: Vec<(OutboxRef<'_>, bool)> =
            Vec::with_capacity(channel.subscribers.len());
        for (socket, subscriber) in &mut channel.subscribers {
            if Some(*socket) == event.exclude {
                continue;
            }
            if subscriber.positioned {
                if event.seq <= subscriber.skip_through {
                    continue;
                }
                if positioned.is_none() {
                    positioned = Some(TextFrame::new(
                        with_position(encoded.payload(), event.seq).as_str(),
                    ));
                }
            }
            if !subscriber.active {
                // A pending presence join, or a subscriber of the confirmed channel waiting for
                // its count (or its replay): the event is theirs once they are confirmed.
                if subscriber.join_id.is_some() || channel.confirmed {
                    let limit = if subscriber.catch_up.is_some() {
                        RESUME_HELD_LIMIT
                    } else {
                        HELD_LIMIT
                    };
                    if subscriber.held.len() < limit {
                        let frame = frame_for(&encoded, &positioned, subscriber.positioned);
                        subscriber.held.push(Held {
                            seq: event.seq,
                            member: is_member_event(event_name.as_str()),
                            frame: frame.payload().clone(),
                        });
                    } else {
                        subscriber.outbox.close(CloseOrder::SlowConsumer);
                    }
                }
                continue;
            }
            recipients.push((subscriber.outbox.borrowed(), subscriber.positioned));
        }
        for &(outbox, _) in recipients.iter().take(PREFETCH_AHEAD) {
            outbox.prefetch();
        }
        let mut delivered = 0;
        // One subscriber per event and shard has its write timed (herald_edge_delivery_seconds).
        let mut sample = Some(event.accepted_micros).filter(|at| *at > 0);
        for (at, &(outbox, is_positioned)) in recipients.iter().enumerate() {
            if let Some(&(ahead, _)) = recipients.get(at + PREFETCH_AHEAD) {
                ahead.prefetch();
            }
            match outbox.push_shared(frame_for(&encoded, &positioned, is_positioned), sample) {
                Pushed::Written | Pushed::Queued => {
                    delivered += 1;
                    sample = None;
                }
                Pushed::Overflowed | Pushed::Dropped => {}
            }
        }
        self.stats
            .frames_queued
            .fetch_add(delivered, Ordering::Relaxed);
        self.sent.add(delivered, encoded.payload().len());
    }

    fn client_event(&mut self, event: ClientEvent, outbox: &Outbox) {
        let active = self
            .channels
            .get(&event.key)
            .and_then(|channel| channel.subscribers.get(&event.socket))
            .is_some_and(|subscriber| subscriber.active);
        let refusal = if !active {
            format!(
                "No subscription to {} yet, or it is still in progress",
                event.key.channel
            )
        } else if !self.board.client_event(event) {
            "Too many client events queued on this server; retry".to_string()
        } else {
            return;
        };
        outbox.push(encode(&ErrorCode::ClientEventRejected.reply(refusal)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Next, OutboxLimits, OutboxReceiver, outbox};
    use herald_shared::channel::ChannelName;
    use herald_shared::ids::AppId;
    use herald_shared::presence::Member;

    fn key(name: &str) -> ChannelKey {
        ChannelKey::new(AppId::new("1"), ChannelName::parse(name).unwrap())
    }

    fn shard() -> Shard {
        Shard::new(Arc::new(Board::default()), Arc::new(EdgeStats::default()))
    }

    fn socket(low: u64) -> SocketId {
        SocketId { high: 1, low }
    }

    fn event(name: &str, event_name: &str, exclude: Option<SocketId>) -> Event {
        Event {
            key: key(name),
            seq: 1,
            name: EventName::parse(event_name).unwrap(),
            data: EventData::from_string("x"),
            exclude,
            user_id: None,
            accepted_micros: 0,
        }
    }

    fn new_outbox() -> (Outbox, OutboxReceiver) {
        outbox(
            OutboxLimits {
                frames: 16,
                bytes: 4096,
            },
            None,
        )
    }

    /// Subscribes socket `low` to `name` as a public subscription; its outbox's receiving end.
    fn subscribe_announced(
        shard: &mut Shard,
        name: &str,
        low: u64,
        now: Instant,
    ) -> OutboxReceiver {
        let (tx, rx) = new_outbox();
        shard.subscribe(key(name), socket(low), tx, Mode::Announced, None, now);
        rx
    }

    /// Whether the socket's next frame is `pusher_internal:subscription_succeeded`.
    fn succeeded(rx: &mut OutboxReceiver) -> bool {
        next_text(rx).is_some_and(|text| text.contains("subscription_succeeded"))
    }

    fn next_text(rx: &mut OutboxReceiver) -> Option<String> {
        if let Some(Next::Close(order)) = rx.try_next() {
            return Some(format!("close {order:?}"));
        }
        rx.pop_taken().map(|frame| frame.to_string())
    }

    /// The hub confirms the channel's generation, and says the region holds its current count.
    fn confirm(shard: &mut Shard, name: &str, generation: u32) {
        shard.confirmed(
            &key(name),
            generation,
            0,
            None,
            Duration::from_secs(60),
            Instant::now(),
        );
        let version = shard.channels.get(&key(name)).map_or(0, |c| c.version);
        shard.counted(&key(name), generation, version, Instant::now());
    }

    #[test]
    fn a_subscription_is_confirmed_once_the_channel_is_and_the_region_counts_it() {
        let mut shard = shard();
        let now = Instant::now();
        let mut rx1 = subscribe_announced(&mut shard, "a", 1, now);
        let interests = shard.board.take().interests;
        assert_eq!(interests.len(), 1);
        assert_eq!((interests[0].1.subscribers, interests[0].1.version), (1, 1));
        shard.confirmed(&key("a"), 1, 0, None, Duration::from_secs(60), now);
        assert_eq!(next_text(&mut rx1), None, "not counted yet");
        shard.counted(&key("a"), 1, 1, now);
        assert!(succeeded(&mut rx1));
        // A later subscriber waits for the count that includes it, even on a confirmed channel.
        let mut rx2 = subscribe_announced(&mut shard, "a", 2, now);
        assert_eq!(shard.board.take().interests[0].1.version, 2);
        assert_eq!(next_text(&mut rx2), None);
        shard.counted(&key("a"), 2, 2, now);
        assert_eq!(next_text(&mut rx2), None, "another generation's count");
        shard.counted(&key("a"), 1, 2, now);
        assert!(succeeded(&mut rx2));
        assert_eq!(next_text(&mut rx1), None, "announced once");
    }

    #[test]
    fn a_socket_that_left_and_subscribed_again_waits_for_the_count_of_its_new_subscription() {
        let mut shard = shard();
        let now = Instant::now();
        let mut rx1 = subscribe_announced(&mut shard, "a", 1, now);
        confirm(&mut shard, "a", 1);
        assert!(next_text(&mut rx1).is_some());
        // Version 2 counts socket 2; it leaves (3) and subscribes again (4).
        let _rx2 = subscribe_announced(&mut shard, "a", 2, now);
        shard.unsubscribe(key("a"), socket(2));
        let mut rx2 = subscribe_announced(&mut shard, "a", 2, now);
        shard.counted(&key("a"), 1, 3, now);
        assert_eq!(next_text(&mut rx2), None, "its first subscription's count");
        shard.counted(&key("a"), 1, 4, now);
        assert!(succeeded(&mut rx2));
        assert_eq!(next_text(&mut rx2), None, "announced once");
    }

    #[test]
    fn sockets_that_come_and_go_before_a_count_leave_no_trail() {
        let mut shard = shard();
        let now = Instant::now();
        let _rx1 = subscribe_announced(&mut shard, "a", 1, now);
        for low in 2..1_000 {
            let _rx = subscribe_announced(&mut shard, "a", low, now);
            shard.unsubscribe(key("a"), socket(low));
        }
        let channel = shard.channels.get(&key("a")).unwrap();
        assert!(channel.waiting.len() <= 2 * channel.subscribers.len() + 17);
    }

    #[test]
    fn events_that_arrive_while_a_subscriber_waits_for_its_count_follow_its_confirmation() {
        let mut shard = shard();
        let now = Instant::now();
        let mut rx1 = subscribe_announced(&mut shard, "a", 1, now);
        confirm(&mut shard, "a", 1);
        assert!(next_text(&mut rx1).is_some());
        let mut rx2 = subscribe_announced(&mut shard, "a", 2, now);
        shard.deliver(event("a", "early", None), now);
        assert!(next_text(&mut rx1).unwrap().contains("early"));
        assert_eq!(next_text(&mut rx2), None, "held until confirmed");
        shard.counted(&key("a"), 1, 2, now);
        assert!(succeeded(&mut rx2));
        assert!(next_text(&mut rx2).unwrap().contains("early"));
    }

    #[test]
    fn a_sign_in_is_answered_once_the_users_channel_is_confirmed_and_counted() {
        let mut shard = shard();
        let now = Instant::now();
        let (tx, mut rx) = new_outbox();
        let greeting = vec![Utf8Bytes::from_static("signed in")];
        let mode = Mode::SignedIn {
            watchlist: Vec::new(),
            greeting,
        };
        shard.subscribe(key("#server-to-user-7"), socket(1), tx, mode, None, now);
        shard.confirmed(
            &key("#server-to-user-7"),
            1,
            0,
            None,
            Duration::from_secs(60),
            now,
        );
        assert_eq!(next_text(&mut rx), None);
        shard.counted(&key("#server-to-user-7"), 1, 1, now);
        assert_eq!(next_text(&mut rx).as_deref(), Some("signed in"));
        shard.deliver(event("#server-to-user-7", "notice", None), now);
        assert!(next_text(&mut rx).unwrap().contains("notice"));
    }

    #[test]
    fn stale_confirmations_are_ignored() {
        let mut shard = shard();
        let now = Instant::now();
        let (tx, mut rx) = new_outbox();
        shard.subscribe(key("a"), socket(1), tx.clone(), Mode::Announced, None, now);
        shard.unsubscribe(key("a"), socket(1));
        shard.subscribe(key("a"), socket(1), tx, Mode::Announced, None, now);
        confirm(&mut shard, "a", 1);
        assert_eq!(next_text(&mut rx), None, "generation 1 no longer exists");
        confirm(&mut shard, "a", 2);
        assert!(next_text(&mut rx).is_some());
    }

    #[test]
    fn delivery_skips_the_excluded_and_the_inactive() {
        let mut shard = shard();
        let now = Instant::now();
        let (tx1, mut rx1) = new_outbox();
        let (tx2, mut rx2) = new_outbox();
        let (tx3, mut rx3) = new_outbox();
        shard.subscribe(key("a"), socket(1), tx1, Mode::Announced, None, now);
        shard.subscribe(key("a"), socket(2), tx2, Mode::Announced, None, now);
        confirm(&mut shard, "a", 1);
        let member = Member::parse(Some(r#"{"user_id":"u"}"#), 100).unwrap();
        shard.subscribe(key("a"), socket(3), tx3, Mode::Presence(member), None, now);
        let _ = (next_text(&mut rx1), next_text(&mut rx2));
        shard.deliver(event("a", "e", Some(socket(1))), now);
        assert_eq!(next_text(&mut rx1), None);
        assert_eq!(
            next_text(&mut rx2).as_deref(),
            Some(r#"{"event":"e","channel":"a","data":"x"}"#)
        );
        assert_eq!(
            next_text(&mut rx3),
            None,
            "a pending join receives nothing yet"
        );
    }

    #[test]
    fn presence_joins_answer_with_the_snapshot_and_refusals_unsubscribe() {
        let mut shard = shard();
        let now = Instant::now();
        let member = Member::parse(Some(r#"{"user_id":"u"}"#), 100).unwrap();
        let (tx, mut rx) = new_outbox();
        shard.subscribe(
            key("presence-a"),
            socket(1),
            tx.clone(),
            Mode::Presence(member.clone()),
            None,
            now,
        );
        confirm(&mut shard, "presence-a", 1);
        assert_eq!(
            next_text(&mut rx),
            None,
            "confirmation alone does not answer a join"
        );
        // Events racing the answer are held, and only those after the snapshot's sequence pass.
        let mut early = event("presence-a", "before", None);
        early.seq = 5;
        shard.deliver(early, now);
        let mut late = event("presence-a", "after", None);
        late.seq = 6;
        shard.deliver(late, now);
        assert_eq!(next_text(&mut rx), None);
        shard.apply(
            Command::Presence(PresenceAnswer {
                key: key("presence-a"),
                socket: socket(1),
                join_id: 1,
                outcome: PresenceOutcome::Joined {
                    snapshot: "{\"presence\":{}}".into(),
                    seq: 5,
                },
            }),
            now,
        );
        assert!(
            next_text(&mut rx)
                .unwrap()
                .contains(r#""data":"{\"presence\":{}}""#)
        );
        assert!(next_text(&mut rx).unwrap().contains(r#""event":"after""#));

        shard.subscribe(
            key("presence-a"),
            socket(2),
            tx,
            Mode::Presence(member),
            None,
            now,
        );
        shard.board.take();
        shard.apply(
            Command::Presence(PresenceAnswer {
                key: key("presence-a"),
                socket: socket(2),
                join_id: 2,
                outcome: PresenceOutcome::Refused {
                    reason: "full".into(),
                },
            }),
            now,
        );
        assert!(
            next_text(&mut rx)
                .unwrap()
                .contains("pusher:subscription_error")
        );
        assert_eq!(shard.channels[&key("presence-a")].subscribers.len(), 1);
    }

    #[test]
    fn cache_channels_replay_the_last_event_or_report_a_miss() {
        let mut shard = shard();
        let now = Instant::now();
        let mut rx1 = subscribe_announced(&mut shard, "cache-a", 1, now);
        confirm(&mut shard, "cache-a", 1);
        assert!(succeeded(&mut rx1));
        assert_eq!(
            next_text(&mut rx1).as_deref(),
            Some(r#"{"event":"pusher:cache_miss","channel":"cache-a","data":"{}"}"#)
        );
        shard.deliver(event("cache-a", "price", None), now);
        let mut rx2 = subscribe_announced(&mut shard, "cache-a", 2, now);
        shard.counted(&key("cache-a"), 1, 2, now);
        assert!(succeeded(&mut rx2));
        assert_eq!(
            next_text(&mut rx2).as_deref(),
            Some(r#"{"event":"price","channel":"cache-a","data":"x"}"#)
        );
    }

    #[test]
    fn termination_closes_the_users_sockets() {
        let mut shard = shard();
        let now = Instant::now();
        let (tx, mut rx) = new_outbox();
        shard.subscribe(
            key("#server-to-user-7"),
            socket(1),
            tx,
            Mode::SignedIn {
                watchlist: vec!["8".into()],
                greeting: Vec::new(),
            },
            None,
            now,
        );
        confirm(&mut shard, "#server-to-user-7", 1);
        assert_eq!(next_text(&mut rx), None, "sign-in subscriptions are silent");
        assert_eq!(shard.board.take().watchlists.len(), 1);
        shard.deliver(event("#server-to-user-7", TERMINATE_CONNECTIONS, None), now);
        assert_eq!(next_text(&mut rx).as_deref(), Some("close Terminated"));
    }

    #[test]
    fn last_unsubscribe_withdraws_interest() {
        let mut shard = shard();
        let (tx, _rx) = new_outbox();
        shard.subscribe(
            key("a"),
            socket(1),
            tx,
            Mode::Announced,
            None,
            Instant::now(),
        );
        shard.board.take();
        shard.unsubscribe(key("a"), socket(1));
        assert!(shard.channels.is_empty());
        let interests = shard.board.take().interests;
        assert_eq!(interests.len(), 1);
        assert_eq!(interests[0].1.subscribers, 0);
    }
}
