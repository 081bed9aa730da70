//! The region of a hub alone: this process is the whole region, its state held by one task.
//!
//! It plays the part Redis plays for hubs in a region, with the same answers: it numbers each
//! channel's events (the first sequence seeded from the clock, so sequences never go backwards
//! across restarts), keeps cache channels' last events, decides presence with [`Members`] and
//! announces `member_added`/`member_removed` as numbered events, keeps every edge's subscription
//! count, and answers the HTTP API's queries. It follows the same [`Pending`] board as Redis does
//! and reports through the same inboxes, so the registry cannot tell the two apart.
//!
//! History is the one thing it does not keep: the registry's own history is the only one (see
//! [`super::Retention`]), so a fetch answers the sequence and the cache and no events.
//!
//! The task owns everything; the [`MemoryStore`] handle sends it commands. It waits only on
//! shards' inboxes, and shards never wait on it (they write to the board), so there is no cycle.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use herald_shared::channel::{ChannelKey, ChannelKind, ChannelName};
use herald_shared::event::{EventName, MEMBER_ADDED, MEMBER_REMOVED};
use herald_shared::ids::{AppId, EdgeId, SocketId};
use herald_shared::link::Event;
use herald_shared::presence::Member;
use herald_shared::time::UnixTime;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::members::{Joined, Members};
use super::{
    ChannelCounts, Decisions, EdgeLoad, Fetched, Follow, Health, Heard, Inboxes, JoinOutcome,
    Online, OnlineChange, Op, Pending, Publication, RegionError, Retention, Store,
};

/// Capacity of the task's command queue.
const QUEUE: usize = 4096;
/// How often channels nobody follows or counts are forgotten once their cache expired.
const SWEEP: Duration = Duration::from_secs(30);

/// Microseconds since 1970: a channel's first sequence, so sequences never go backwards.
fn sequence_seed() -> u64 {
    UnixTime::from_system(SystemTime::now()).as_micros()
}

type Listed = Vec<(ChannelName, ChannelCounts)>;

#[derive(Debug)]
enum Command {
    Publish(Publication, oneshot::Sender<()>),
    Counts(ChannelKey, oneshot::Sender<ChannelCounts>),
    List(AppId, String, oneshot::Sender<Listed>),
    Users(ChannelKey, oneshot::Sender<Vec<String>>),
}

/// The handle the HTTP API, link sessions and watchlist use: a [`Store`] and an [`Online`].
#[derive(Debug, Clone)]
pub struct MemoryStore {
    commands: mpsc::Sender<Command>,
    online: Arc<Mutex<OnlineUsers>>,
}

/// The inputs of the memory region's task, for [`run`].
#[derive(Debug)]
pub struct MemoryTask {
    commands: mpsc::Receiver<Command>,
}

/// How the registry keeps unwanted channels alone: its history is the only one, so a channel is
/// kept until its history and cache expired (edges that re-link can still resume).
pub fn retention() -> Retention {
    Retention {
        linger: Duration::ZERO,
        history_is_local: true,
    }
}

/// Creates the memory region's handle and its task's inputs.
pub fn memory() -> (MemoryStore, MemoryTask) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        MemoryStore {
            commands: tx,
            online: Arc::default(),
        },
        MemoryTask { commands: rx },
    )
}

impl MemoryStore {
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RegionError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| RegionError::Stopped)?;
        rx.await.map_err(|_| RegionError::Stopped)
    }
}

impl Store for MemoryStore {
    fn publish(&self, publication: Publication) -> BoxFuture<'_, Result<(), RegionError>> {
        self.ask(|tx| Command::Publish(publication, tx)).boxed()
    }

    fn counts(&self, key: ChannelKey) -> BoxFuture<'_, Result<ChannelCounts, RegionError>> {
        self.ask(|tx| Command::Counts(key, tx)).boxed()
    }

    fn list(&self, app: AppId, prefix: String) -> BoxFuture<'_, Result<Listed, RegionError>> {
        self.ask(|tx| Command::List(app, prefix, tx)).boxed()
    }

    fn users(&self, key: ChannelKey) -> BoxFuture<'_, Result<Vec<String>, RegionError>> {
        self.ask(|tx| Command::Users(key, tx)).boxed()
    }

    fn connections(
        &self,
        local: Vec<EdgeLoad>,
    ) -> BoxFuture<'_, Result<Vec<EdgeLoad>, RegionError>> {
        async move { Ok(local) }.boxed()
    }

    fn health(&self) -> Health {
        Health::Alone
    }
}

/// Who is online, and each app's change numbers.
#[derive(Debug, Default)]
struct OnlineUsers {
    online: HashSet<(AppId, String)>,
    changes: HashMap<AppId, u64>,
}

impl OnlineUsers {
    fn set(&mut self, app: AppId, user: String, online: bool) -> Option<OnlineChange> {
        let key = (app, user);
        let changed = if online {
            self.online.insert(key.clone())
        } else {
            self.online.remove(&key)
        };
        if !changed {
            return None;
        }
        let (app, user_id) = key;
        let number = self.changes.entry(app).or_default();
        *number += 1;
        Some(OnlineChange {
            online,
            number: *number,
            user_id,
        })
    }
}

impl Online for MemoryStore {
    fn set(
        &self,
        app: AppId,
        user: String,
        online: bool,
    ) -> BoxFuture<'_, Result<Option<OnlineChange>, RegionError>> {
        let change = lock(&self.online).set(app, user, online);
        std::future::ready(Ok(change)).boxed()
    }

    fn reassert(&self, _users: Vec<(AppId, String)>) -> BoxFuture<'_, Result<(), RegionError>> {
        // Memory never loses what it holds.
        std::future::ready(Ok(())).boxed()
    }

    fn among(
        &self,
        app: AppId,
        users: Vec<String>,
    ) -> BoxFuture<'_, Result<(Vec<bool>, u64), RegionError>> {
        let state = lock(&self.online);
        let number = state.changes.get(&app).copied().unwrap_or(0);
        let online = users
            .into_iter()
            .map(|user| state.online.contains(&(app.clone(), user)))
            .collect();
        std::future::ready(Ok((online, number))).boxed()
    }

    fn claim(
        &self,
        _app: AppId,
        _number: u64,
        watchers: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<bool>, RegionError>> {
        // The only hub tells every watcher.
        std::future::ready(Ok(vec![true; watchers.len()])).boxed()
    }
}

fn lock(online: &Mutex<OnlineUsers>) -> std::sync::MutexGuard<'_, OnlineUsers> {
    online.lock().unwrap_or_else(|p| p.into_inner())
}

/// One channel as the region knows it.
#[derive(Debug)]
struct Channel {
    seq: u64,
    cached: Option<(Event, Instant)>,
    members: Members,
    /// Per edge: its link session and its subscribers.
    counts: HashMap<EdgeId, (u64, u32)>,
    /// Whether the registry follows the channel (receives its events).
    followed: bool,
}

impl Channel {
    fn new() -> Self {
        Self {
            seq: sequence_seed(),
            cached: None,
            members: Members::default(),
            counts: HashMap::new(),
            followed: false,
        }
    }

    fn subscriptions(&self) -> u64 {
        self.counts
            .values()
            .map(|(_, count)| u64::from(*count))
            .sum()
    }

    fn counts(&self, channel: &ChannelName) -> ChannelCounts {
        ChannelCounts::of(channel, self.subscriptions(), self.members.count() as u64)
    }

    fn forgettable(&self, now: Instant) -> bool {
        !self.followed
            && self.counts.is_empty()
            && self.members.is_empty()
            && self
                .cached
                .as_ref()
                .is_none_or(|(_, expires)| *expires <= now)
    }
}

/// The task's state.
struct Region {
    channels: HashMap<ChannelKey, Channel>,
    inboxes: Inboxes,
    pending: Arc<Pending>,
    cache_ttl: Duration,
    decisions: Arc<dyn Decisions>,
}

/// Runs the memory region until `stop`.
pub async fn run(
    task: MemoryTask,
    pending: Arc<Pending>,
    inboxes: Inboxes,
    cache_ttl: Duration,
    decisions: Arc<dyn Decisions>,
    stop: CancellationToken,
) {
    let MemoryTask { mut commands } = task;
    let mut region = Region {
        channels: HashMap::new(),
        inboxes,
        pending,
        cache_ttl,
        decisions,
    };
    let mut sweep = tokio::time::interval(SWEEP);
    let pending = region.pending.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            command = commands.recv() => match command {
                Some(command) => region.command(command).await,
                None => return,
            },
            () = pending.follows_changed() => {
                for (key, follow) in pending.take_follows() {
                    region.follow(key, follow).await;
                }
            }
            () = pending.ops_changed() => {
                for (key, ops) in pending.take_ops() {
                    for op in ops {
                        region.op(&key, op).await;
                    }
                }
            }
            _ = sweep.tick() => {
                let now = Instant::now();
                region.channels.retain(|_, channel| !channel.forgettable(now));
            }
        }
    }
}

impl Region {
    fn channel(&mut self, key: &ChannelKey) -> &mut Channel {
        self.channels
            .entry(key.clone())
            .or_insert_with(Channel::new)
    }

    fn forget_if_unused(&mut self, key: &ChannelKey) {
        if self
            .channels
            .get(key)
            .is_some_and(|channel| channel.forgettable(Instant::now()))
        {
            self.channels.remove(key);
        }
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Publish(publication, delivered) => {
                self.publish(publication, Some(delivered)).await;
            }
            Command::Counts(key, reply) => {
                let counts = self.channels.get(&key).map_or_else(
                    || ChannelCounts::of(&key.channel, 0, 0),
                    |channel| channel.counts(&key.channel),
                );
                let _ = reply.send(counts);
            }
            Command::List(app, prefix, reply) => {
                let mut listed: Listed = self
                    .channels
                    .iter()
                    .filter(|(key, _)| key.app == app && key.channel.as_str().starts_with(&prefix))
                    .map(|(key, channel)| (key.channel.clone(), channel.counts(&key.channel)))
                    .filter(|(_, counts)| counts.occupied())
                    .collect();
                listed.sort_by(|a, b| a.0.cmp(&b.0));
                let _ = reply.send(listed);
            }
            Command::Users(key, reply) => {
                let users = self.channels.get(&key).map_or_else(Vec::new, |channel| {
                    channel.members.user_ids().map(str::to_string).collect()
                });
                let _ = reply.send(users);
            }
        }
    }

    /// Numbers an event and hands it to the shard following its channel (if one does).
    async fn publish(&mut self, publication: Publication, delivered: Option<oneshot::Sender<()>>) {
        let cache_ttl = self.cache_ttl;
        let key = publication.key.clone();
        let channel = self.channel(&key);
        channel.seq += 1;
        let event = Event {
            key: publication.key,
            seq: channel.seq,
            name: publication.name,
            data: publication.data,
            exclude: publication.exclude,
            user_id: publication.user_id,
            accepted_micros: UnixTime::from_system(SystemTime::now()).as_micros(),
        };
        if event.key.channel.is_cache() && !event.name.is_reserved() {
            channel.cached = Some((event.clone(), Instant::now() + cache_ttl));
        }
        if channel.followed {
            self.inboxes.shard(Heard::Event { event, delivered }).await;
        } else {
            if let Some(delivered) = delivered {
                let _ = delivered.send(());
            }
            self.forget_if_unused(&key);
        }
    }

    async fn follow(&mut self, key: ChannelKey, follow: Follow) {
        let (after, attached) = match follow {
            Follow::Detach => {
                if let Some(channel) = self.channels.get_mut(&key) {
                    channel.followed = false;
                }
                self.forget_if_unused(&key);
                return;
            }
            Follow::Attach { after } => (after, true),
            Follow::Fetch { after } => (after, false),
        };
        let now = Instant::now();
        let channel = self.channel(&key);
        channel.followed |= attached;
        let fetched = Fetched {
            seq: channel.seq,
            events: Vec::new(),
            cached: channel
                .cached
                .as_ref()
                .filter(|(_, expires)| *expires > now)
                .map(|(event, _)| event.clone()),
        };
        self.inboxes
            .shard(Heard::Fetched {
                key,
                after,
                attached,
                result: Ok(fetched),
            })
            .await;
    }

    async fn op(&mut self, key: &ChannelKey, op: Op) {
        match op {
            Op::Count {
                counter,
                count,
                generation,
                version,
            } => {
                let before = self.channel(key).subscriptions();
                let counts = &mut self.channel(key).counts;
                let stale = counts
                    .get(&counter.edge)
                    .is_some_and(|(session, _)| *session > counter.session);
                if !stale {
                    if count == 0 {
                        counts.remove(&counter.edge);
                    } else {
                        counts.insert(counter.edge, (counter.session, count));
                    }
                }
                match (before, self.channel(key).subscriptions()) {
                    (0, 1..) => self.decisions.occupied(key),
                    (1.., 0) => self.decisions.vacated(key),
                    _ => {}
                }
                self.forget_if_unused(key);
                let counted = Heard::Counted {
                    key: key.clone(),
                    counter,
                    generation,
                    version,
                };
                self.inboxes.shard(counted).await;
            }
            Op::Join {
                socket,
                join_id,
                member,
                limit,
            } => {
                let outcome = self.join(key, socket, member, limit, true).await;
                let joined = Heard::Joined {
                    key: key.clone(),
                    socket,
                    join_id,
                    outcome: Ok(outcome),
                };
                self.inboxes.shard(joined).await;
            }
            Op::Reassert { socket, member } => {
                self.join(key, socket, member, usize::MAX, false).await;
            }
            Op::Leave { socket } => self.leave(key, socket).await,
            Op::Announce { .. } => {
                let count = self.channel(key).subscriptions();
                self.decisions.counted(key, count);
                let announcement = Publication::subscription_count(key.clone(), count);
                self.publish(announcement, None).await;
                let announced = Heard::Announced {
                    key: key.clone(),
                    retry_after: None,
                };
                self.inboxes.shard(announced).await;
            }
        }
    }

    /// Joins a socket; a new member is announced with `member_added` (unless `announce` is
    /// false), numbered before the answer's snapshot.
    async fn join(
        &mut self,
        key: &ChannelKey,
        socket: SocketId,
        member: Member,
        limit: usize,
        announce: bool,
    ) -> JoinOutcome {
        if key.channel.kind() != ChannelKind::Presence {
            return JoinOutcome::Full;
        }
        if self
            .channel(key)
            .members
            .user_of(socket)
            .is_some_and(|user| user != member.user_id)
        {
            // The socket joins again as someone else: it leaves as the old user first.
            self.leave(key, socket).await;
        }
        let added = member.added_data();
        let member_user = member.user_id.clone();
        let channel = self.channel(key);
        match channel.members.join(socket, member, limit) {
            Ok(joined) => {
                if joined == Joined::NewMember && announce {
                    self.decisions.member_added(key, &member_user);
                    let publication = Publication {
                        key: key.clone(),
                        name: EventName::internal(MEMBER_ADDED),
                        data: added,
                        exclude: Some(socket),
                        user_id: None,
                    };
                    self.publish(publication, None).await;
                }
                let channel = self.channel(key);
                JoinOutcome::Accepted {
                    snapshot: channel.members.snapshot(),
                    seq: channel.seq,
                }
            }
            Err(_) => JoinOutcome::Full,
        }
    }

    async fn leave(&mut self, key: &ChannelKey, socket: SocketId) {
        let Some(channel) = self.channels.get_mut(key) else {
            return;
        };
        if let Some(user_id) = channel.members.leave(socket) {
            self.decisions.member_removed(key, &user_id);
            let publication = Publication {
                key: key.clone(),
                name: EventName::internal(MEMBER_REMOVED),
                data: Member::removed_data(&user_id),
                exclude: None,
                user_id: None,
            };
            self.publish(publication, None).await;
        }
        self.forget_if_unused(key);
    }
}
