//! One registry shard: the task that owns a set of channels.
//!
//! Everything a shard decides it decides synchronously. Work that needs Redis (attaching a
//! channel, fetching history, presence joins and leaves) is started as a small task whose
//! answer comes back to the shard as a command, so a shard never waits on the network and the
//! order of its decisions is the order of its commands.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use herald_shared::app::AppTable;
use herald_shared::channel::ChannelKey;
use herald_shared::ids::SocketId;
use herald_shared::link::PresenceChange;
use herald_shared::presence::Member;
use herald_shared::time::UnixTime;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::channel::{ChannelState, Joining, Lifetimes};
use super::{ChannelCounts, Command, Publication, announces_counts};
use crate::cluster::Cluster;
use crate::link::EdgeLink;
use crate::stats::HubStats;
use crate::watchlist::{Occupancy, WatchlistSender};

/// How often dirty subscription counts are announced, and idle channels purged.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// `pusher_internal:subscription_count` coalescing period.
    pub subscription_count: Duration,
    /// Purge (and retry) period.
    pub purge: Duration,
}

/// A regional shard's way to Redis, and back to itself.
struct Region {
    cluster: Cluster,
    me: mpsc::WeakSender<Command>,
}

struct Shard {
    channels: HashMap<ChannelKey, ChannelState>,
    apps: Arc<AppTable>,
    lifetimes: Lifetimes,
    stats: Arc<HubStats>,
    watchlist: WatchlistSender,
    /// Alone: channels whose subscription count changed since the last announcement.
    counts_changed: HashSet<ChannelKey>,
    region: Option<Region>,
}

/// What a shard needs besides its commands.
pub struct ShardSetup {
    /// The apps (limits and settings).
    pub apps: Arc<AppTable>,
    /// History and cache lifetimes.
    pub lifetimes: Lifetimes,
    /// Counters.
    pub stats: Arc<HubStats>,
    /// Where user-channel occupancy changes go.
    pub watchlist: WatchlistSender,
    /// Timer periods.
    pub intervals: Intervals,
    /// Redis, for a hub in a region; `None` alone.
    pub cluster: Option<Cluster>,
    /// The shard's own queue (weakly), for answers of work it starts.
    pub me: mpsc::WeakSender<Command>,
    /// Cancelled when the hub stops.
    pub stop: CancellationToken,
}

/// Runs a shard until every handle is dropped.
pub async fn run(mut commands: mpsc::Receiver<Command>, setup: ShardSetup) {
    let mut shard = Shard {
        channels: HashMap::new(),
        apps: setup.apps,
        lifetimes: setup.lifetimes,
        stats: setup.stats,
        watchlist: setup.watchlist,
        counts_changed: HashSet::new(),
        region: setup.cluster.map(|cluster| Region {
            cluster,
            me: setup.me,
        }),
    };
    let mut purge = tokio::time::interval(setup.intervals.purge);
    purge.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut announce = tokio::time::interval(setup.intervals.subscription_count);
    announce.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = setup.stop.cancelled() => return,
            command = commands.recv() => match command {
                Some(command) => shard.apply(command, Instant::now()),
                None => return,
            },
            _ = announce.tick() => shard.announce_counts(Instant::now()),
            _ = purge.tick() => shard.purge(Instant::now()),
        }
    }
}

/// Microseconds since 1970: a channel's first sequence, so sequences never go backwards.
fn sequence_seed() -> u64 {
    UnixTime::from_system(SystemTime::now()).as_micros()
}

impl Region {
    /// Starts `work` and brings its answer back to the shard as a command.
    fn spawn<F, T>(&self, work: F, answer: impl FnOnce(T) -> Command + Send + 'static)
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.me.clone();
        tokio::spawn(async move {
            let result = work.await;
            if let Some(shard) = me.upgrade() {
                let _ = shard.send(answer(result)).await;
            }
        });
    }

    /// Starts an attach or fetch unless one is in flight.
    fn fetch(&self, channel: &mut ChannelState, key: &ChannelKey) {
        if channel.fetching {
            return;
        }
        channel.fetching = true;
        let after = channel.fetch_after();
        let attach = !channel.attached;
        let cluster = self.cluster.clone();
        let key_for_answer = key.clone();
        let key = key.clone();
        self.spawn(
            async move {
                if attach {
                    cluster.attach(&key, after).await
                } else {
                    cluster.fetch(&key, after).await
                }
            },
            move |result| Command::Fetched {
                key: key_for_answer,
                after,
                attached: attach,
                result: result.map_err(|e| e.to_string()),
            },
        );
    }

    fn join(&self, key: &ChannelKey, edge: Arc<EdgeLink>, joining: Joining) {
        let cluster = self.cluster.clone();
        let key = key.clone();
        let member = joining.member.clone();
        let (socket, limit) = (joining.socket, joining.limit);
        let work_key = key.clone();
        self.spawn(
            async move { cluster.join(&work_key, socket, &member, limit, true).await },
            move |result| Command::Joined {
                key,
                edge,
                joining,
                result: result.map_err(|e| e.to_string()),
            },
        );
    }

    fn leave(&self, key: &ChannelKey, socket: SocketId) {
        let cluster = self.cluster.clone();
        let key = key.clone();
        tokio::spawn(async move {
            if let Err(error) = cluster.leave(&key, socket).await {
                tracing::warn!(message = "Cannot record a presence leave in Redis; the reaper will.", %error);
            }
        });
    }

    fn reassert(&self, key: &ChannelKey, socket: SocketId, member: Member) {
        let cluster = self.cluster.clone();
        let key = key.clone();
        tokio::spawn(async move {
            if let Err(error) = cluster.join(&key, socket, &member, usize::MAX, false).await {
                tracing::warn!(message = "Cannot re-assert a presence member in Redis.", %error);
            }
        });
    }

    fn detach(&self, key: ChannelKey) {
        let cluster = self.cluster.clone();
        tokio::spawn(async move { cluster.detach(&key).await });
    }
}

impl Shard {
    fn channel(&mut self, key: &ChannelKey) -> &mut ChannelState {
        let regional = self.region.is_some();
        self.channels.entry(key.clone()).or_insert_with(|| {
            if regional {
                ChannelState::regional(key.clone())
            } else {
                ChannelState::local(key.clone(), sequence_seed())
            }
        })
    }

    /// Applies one command. Synchronous: nothing here awaits.
    fn apply(&mut self, command: Command, now: Instant) {
        let lifetimes = self.lifetimes;
        match command {
            Command::Publish(publication, reply) => {
                self.publish(publication, now);
                let _ = reply.send(());
            }
            Command::Remote(event) => {
                let key = event.key.clone();
                let Some(channel) = self.channels.get_mut(&key) else {
                    return;
                };
                if channel.receive(event, now, lifetimes) {
                    self.fetch(&key);
                }
            }
            Command::Fetched {
                key,
                after,
                attached,
                result,
            } => self.fetched(key, after, attached, result, now),
            Command::Settled(key, reply) => match self.channels.get_mut(&key) {
                Some(channel) => channel.when_settled(reply),
                None => {
                    let _ = reply.send(());
                }
            },
            Command::Interest(edge, interest) => {
                if interest.subscribers == 0 && !self.channels.contains_key(&interest.key) {
                    return;
                }
                let key = interest.key.clone();
                let channel = self.channel(&key);
                let before = channel.counts();
                if channel.interest(edge, interest, now) {
                    self.fetch(&key);
                }
                self.release_joins(&key);
                self.counts_moved(&key, before);
            }
            Command::Presence(
                edge,
                PresenceChange::Join {
                    key,
                    socket,
                    join_id,
                    member,
                },
            ) => {
                let limit = self
                    .apps
                    .by_id(key.app.as_str())
                    .map_or(0, |app| app.settings.max_presence_members as usize);
                let joining = Joining {
                    socket,
                    join_id,
                    member,
                    limit,
                };
                match &self.region {
                    None => self.channel(&key).join(&edge, joining, now, lifetimes),
                    Some(_) => {
                        self.channel(&key).defer_join(edge, joining);
                        self.release_joins(&key);
                    }
                }
            }
            Command::Presence(_, PresenceChange::Leave { key, socket }) => {
                let Some(channel) = self.channels.get_mut(&key) else {
                    return;
                };
                if channel.leave(socket, now, lifetimes)
                    && let Some(region) = &self.region
                {
                    region.leave(&key, socket);
                }
            }
            Command::Joined {
                key,
                edge,
                joining,
                result,
            } => {
                let socket = joining.socket;
                let Some(channel) = self.channels.get_mut(&key) else {
                    return;
                };
                if channel.joined(&edge, joining, result)
                    && let Some(region) = &self.region
                {
                    region.leave(&key, socket);
                }
            }
            Command::Backfill(edge, key, after) => {
                if let Some(channel) = self.channels.get(&key) {
                    channel.replay(&edge, after);
                }
            }
            Command::EdgeGone(link) => {
                let mut moved = Vec::new();
                for (key, channel) in &mut self.channels {
                    let before = channel.counts();
                    let gone = channel.edge_gone(link, now, lifetimes);
                    if let Some(region) = &self.region {
                        for socket in gone {
                            region.leave(key, socket);
                        }
                    }
                    if channel.counts().subscription_count != before.subscription_count {
                        moved.push((key.clone(), before));
                    }
                }
                for (key, before) in moved {
                    self.counts_moved(&key, before);
                }
            }
            Command::Resync => self.resync(),
            Command::Channel(key, reply) => {
                let counts = self.channels.get(&key).map(ChannelState::counts);
                let _ = reply.send(counts.unwrap_or_else(|| ChannelState::local(key, 0).counts()));
            }
            Command::Users(key, reply) => {
                let users = self.channels.get(&key).map(ChannelState::user_ids);
                let _ = reply.send(users.unwrap_or_default());
            }
            Command::List(app, prefix, reply) => {
                let occupied = self
                    .channels
                    .iter()
                    .filter(|(key, _)| key.app == app && key.channel.as_str().starts_with(&prefix))
                    .map(|(key, channel)| (key.channel.clone(), channel.counts()))
                    .filter(|(_, counts)| counts.occupied())
                    .collect();
                let _ = reply.send(occupied);
            }
        }
    }

    /// Alone: publishes (regional hubs publish through Redis, never here).
    fn publish(&mut self, publication: Publication, now: Instant) {
        self.stats.events_published.fetch_add(1, Ordering::Relaxed);
        let key = publication.key.clone();
        let lifetimes = self.lifetimes;
        self.channel(&key).publish(publication, now, lifetimes)
    }

    fn fetch(&mut self, key: &ChannelKey) {
        let Some(region) = &self.region else {
            return;
        };
        if let Some(channel) = self.channels.get_mut(key) {
            region.fetch(channel, key);
        }
    }

    fn fetched(
        &mut self,
        key: ChannelKey,
        after: Option<u64>,
        attached: bool,
        result: Result<crate::cluster::Fetched, String>,
        now: Instant,
    ) {
        let lifetimes = self.lifetimes;
        let Some(channel) = self.channels.get_mut(&key) else {
            return;
        };
        match result {
            Ok(fetched) => {
                let before = channel.counts();
                channel.attached |= attached;
                channel.fetched(fetched, after, now, lifetimes);
                if channel.needs_fetch() {
                    self.fetch(&key);
                }
                self.release_joins(&key);
                self.counts_moved(&key, before);
            }
            Err(error) => {
                // Retried at the next purge round, or as soon as Redis is back.
                channel.fetch_failed();
                tracing::debug!(message = "Cannot fetch a channel from Redis.", channel = %key.channel, %error);
            }
        }
    }

    /// Sends the deferred presence joins whose edge is confirmed now.
    fn release_joins(&mut self, key: &ChannelKey) {
        let Some(region) = &self.region else {
            return;
        };
        let Some(channel) = self.channels.get_mut(key) else {
            return;
        };
        for (edge, joining) in channel.ready_joins() {
            region.join(key, edge, joining);
        }
    }

    /// Redis pub/sub is back: catch every channel up from history, and re-assert this hub's
    /// presence sockets and counts (Redis may have lost them).
    fn resync(&mut self) {
        let Some(region) = &self.region else {
            return;
        };
        for (key, channel) in &mut self.channels {
            region.fetch(channel, key);
            for (socket, member) in channel.regional_sockets() {
                region.reassert(key, socket, member);
            }
            region
                .cluster
                .report_count(key.clone(), channel.counts().subscription_count);
        }
    }

    /// Notes a change of a channel's counts: for subscription counts (announced alone, written
    /// to Redis in a region), and for watchlists when a user's own channel becomes occupied or
    /// vacated.
    fn counts_moved(&mut self, key: &ChannelKey, before: ChannelCounts) {
        let after = self.channel(key).counts();
        if after.subscription_count == before.subscription_count {
            return;
        }
        match &self.region {
            Some(region) => region
                .cluster
                .report_count(key.clone(), after.subscription_count),
            None => {
                if after.occupied() && announces_counts(&self.apps, key) {
                    self.counts_changed.insert(key.clone());
                }
            }
        }
        if before.occupied() != after.occupied()
            && let Some(user_id) = key.channel.server_to_user_id()
        {
            let change = Occupancy {
                app: key.app.clone(),
                user_id: user_id.to_string(),
                online: after.occupied(),
            };
            if !self.watchlist.notify(change) {
                self.stats.watchlist_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn announce_counts(&mut self, now: Instant) {
        for key in std::mem::take(&mut self.counts_changed) {
            let Some(channel) = self.channels.get(&key) else {
                continue;
            };
            let count = channel.counts().subscription_count;
            self.publish(Publication::subscription_count(key, count), now);
        }
    }

    fn purge(&mut self, now: Instant) {
        let lifetimes = self.lifetimes;
        match &self.region {
            None => self
                .channels
                .retain(|_, channel| !channel.is_idle(now, lifetimes)),
            Some(region) => {
                let linger = region.cluster.linger();
                let mut detached = Vec::new();
                for (key, channel) in &mut self.channels {
                    if channel.lingered(now, linger) {
                        detached.push(key.clone());
                    } else if channel.needs_fetch() {
                        region.fetch(channel, key);
                    }
                }
                for key in detached {
                    self.channels.remove(&key);
                    region.detach(key);
                }
            }
        }
    }
}
