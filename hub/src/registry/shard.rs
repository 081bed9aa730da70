//! One registry shard: the task that owns a set of channels.
//!
//! Everything a shard decides it decides synchronously: commands from link sessions, and what
//! the region reports on the shard's inbox ([`Heard`]). What the region must record or fetch is
//! written to the [`Pending`] board, in the order decided; the answers come back on the inbox. A
//! shard never waits on the network, and the order of its decisions is the order of its inputs.
//!
//! Each channel has at most one timer ([`DelayQueue`]), set to the earliest of: when it may be
//! forgotten (the region's linger after its last interest), when a failed fetch is retried, and
//! when a held-back subscription-count announcement is due. So every timer fires when the
//! documentation says, not on the next tick of a periodic sweep.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::apps::Apps;
use futures_util::StreamExt;
use herald_shared::channel::ChannelKey;
use herald_shared::link::PresenceChange;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::time::{DelayQueue, delay_queue};

use super::announce::{Announcer, announces_counts};
use super::channel::{ChannelState, Joining, Lifetimes};
use super::{Command, Occupancy, OccupancySender};
use crate::region::{Follow, Heard, Op, Pending, Retention};
use crate::stats::HubStats;
use crate::webhooks::Webhooks;

/// How long a failed fetch waits before it is tried again (a reconnect retries at once).
const FETCH_RETRY: Duration = Duration::from_millis(500);

/// A channel and its timer.
struct Entry {
    state: ChannelState,
    announcer: Announcer,
    timer: Option<(Instant, delay_queue::Key)>,
}

struct Shard {
    channels: HashMap<ChannelKey, Entry>,
    timers: DelayQueue<ChannelKey>,
    apps: Apps,
    lifetimes: Lifetimes,
    retention: Retention,
    announce_interval: Duration,
    stats: Arc<HubStats>,
    occupancy: OccupancySender,
    webhooks: Webhooks,
    region: Arc<Pending>,
}

/// What a shard needs besides its inputs.
pub struct ShardSetup {
    /// The apps (limits and settings).
    pub apps: Apps,
    /// History and cache lifetimes.
    pub lifetimes: Lifetimes,
    /// How the region wants unwanted channels kept.
    pub retention: Retention,
    /// At most one `subscription_count` announcement per channel per interval.
    pub announce_interval: Duration,
    /// Counters.
    pub stats: Arc<HubStats>,
    /// Where user-channel occupancy changes go.
    pub occupancy: OccupancySender,
    /// Where webhook events go (cache misses).
    pub webhooks: Webhooks,
    /// Where requests to the region go.
    pub region: Arc<Pending>,
    /// Cancelled when the hub stops.
    pub stop: CancellationToken,
}

/// Runs a shard until `stop` or until every handle is dropped.
pub async fn run(
    mut commands: mpsc::Receiver<Command>,
    mut heard: mpsc::Receiver<Heard>,
    setup: ShardSetup,
) {
    let stop = setup.stop.clone();
    let mut shard = Shard {
        channels: HashMap::new(),
        timers: DelayQueue::new(),
        apps: setup.apps,
        lifetimes: setup.lifetimes,
        retention: setup.retention,
        announce_interval: setup.announce_interval,
        stats: setup.stats,
        occupancy: setup.occupancy,
        webhooks: setup.webhooks,
        region: setup.region,
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            command = commands.recv() => match command {
                Some(command) => shard.apply(command, Instant::now()),
                None => return,
            },
            Some(heard) = heard.recv() => shard.heard(heard, Instant::now()),
            Some(expired) = shard.timers.next(), if !shard.timers.is_empty() => {
                let key = expired.into_inner();
                if let Some(entry) = shard.channels.get_mut(&key) {
                    entry.timer = None;
                }
                shard.tick(&key, Instant::now());
            }
        }
    }
}

impl Shard {
    fn entry(&mut self, key: &ChannelKey) -> &mut Entry {
        self.channels.entry(key.clone()).or_insert_with(|| Entry {
            state: ChannelState::new(key.clone()),
            announcer: Announcer::default(),
            timer: None,
        })
    }

    /// Applies one command. Synchronous: nothing here awaits.
    fn apply(&mut self, command: Command, now: Instant) {
        match command {
            Command::Interest(edge, interest) => {
                if interest.subscribers == 0 && !self.channels.contains_key(&interest.key) {
                    return;
                }
                let key = interest.key.clone();
                let entry = self.entry(&key);
                let before = entry.state.local_subscriptions();
                let outcome = entry.state.interest(edge, interest, now);
                if entry.state.take_cache_miss() {
                    self.webhooks.cache_miss(&key);
                }
                if let Some(count) = outcome.count {
                    self.region.record(&key, count);
                }
                if outcome.fetch {
                    self.fetch(&key);
                }
                self.release_joins(&key);
                self.occupancy(&key, before);
                self.tick(&key, now);
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
                let entry = self.entry(&key);
                if !entry.state.is_presence() {
                    let reason = format!("{} is not a presence channel", key.channel);
                    entry.state.refuse(&edge, &joining, reason);
                    return;
                }
                entry.state.defer_join(edge, joining);
                self.release_joins(&key);
            }
            Command::Presence(_, PresenceChange::Leave { key, socket }) => {
                let Some(entry) = self.channels.get_mut(&key) else {
                    return;
                };
                if let Some(leave) = entry.state.leave(socket) {
                    self.region.record(&key, leave);
                }
                self.tick(&key, now);
            }
            Command::Backfill(edge, key, after) => {
                if let Some(entry) = self.channels.get(&key) {
                    entry.state.replay(&edge, after);
                }
            }
            Command::Replay(edge, request) => {
                let key = request.key.clone();
                if self.entry(&key).state.replay_for(edge, request, now) {
                    self.fetch(&key);
                }
                self.tick(&key, now);
            }
            Command::EdgeGone(link) => {
                let keys: Vec<ChannelKey> = self.channels.keys().cloned().collect();
                for key in keys {
                    let Some(entry) = self.channels.get_mut(&key) else {
                        continue;
                    };
                    let before = entry.state.local_subscriptions();
                    for op in entry.state.edge_gone(link, now) {
                        self.region.record(&key, op);
                    }
                    self.occupancy(&key, before);
                    self.tick(&key, now);
                }
            }
            Command::Channels(app, reply) => {
                let subscribed = self
                    .channels
                    .iter()
                    .filter(|(key, entry)| key.app == app && entry.state.local_subscriptions() > 0)
                    .count();
                let _ = reply.send(subscribed);
            }
            Command::Settled(key, reply) => match self.channels.get_mut(&key) {
                Some(entry) => entry.state.when_settled(reply),
                None => {
                    let _ = reply.send(());
                }
            },
        }
    }

    /// Applies what the region reports. Synchronous: nothing here awaits.
    fn heard(&mut self, heard: Heard, now: Instant) {
        let lifetimes = self.lifetimes;
        match heard {
            Heard::Event { event, delivered } => {
                let key = event.key.clone();
                if let Some(entry) = self.channels.get_mut(&key)
                    && entry.state.receive(event, now, lifetimes)
                {
                    self.fetch(&key);
                }
                if let Some(delivered) = delivered {
                    let _ = delivered.send(());
                }
            }
            Heard::Fetched {
                key,
                after,
                attached,
                result,
            } => {
                let Some(entry) = self.channels.get_mut(&key) else {
                    return;
                };
                match result {
                    Ok(fetched) => {
                        entry
                            .state
                            .fetched(fetched, after, attached, now, lifetimes);
                        if entry.state.take_cache_miss() {
                            self.webhooks.cache_miss(&key);
                        }
                        if entry.state.has_gap() {
                            self.fetch(&key);
                        }
                        self.release_joins(&key);
                    }
                    Err(error) => {
                        entry.state.fetch_failed(now + FETCH_RETRY);
                        tracing::debug!(message = "Cannot fetch a channel from the region.", channel = %key.channel, %error);
                    }
                }
                self.tick(&key, now);
            }
            Heard::Counted {
                key,
                counter,
                generation,
                version,
            } => {
                let Some(entry) = self.channels.get_mut(&key) else {
                    return;
                };
                entry.state.counted(counter, generation, version);
                if announces_counts(&self.apps, &key) {
                    entry.announcer.changed();
                }
                self.release_joins(&key);
                self.tick(&key, now);
            }
            Heard::Joined {
                key,
                socket,
                join_id,
                outcome,
            } => {
                let Some(entry) = self.channels.get_mut(&key) else {
                    return;
                };
                if let Some(undo) = entry.state.joined(socket, join_id, outcome) {
                    self.region.record(&key, undo);
                }
                self.tick(&key, now);
            }
            Heard::Announced { key, retry_after } => {
                let Some(entry) = self.channels.get_mut(&key) else {
                    return;
                };
                entry.announcer.answered(retry_after, now);
                self.tick(&key, now);
            }
            Heard::Resync => self.resync(now),
        }
    }

    /// Asks the region for the channel's state, unless a fetch is in flight.
    fn fetch(&mut self, key: &ChannelKey) {
        let Some(entry) = self.channels.get_mut(key) else {
            return;
        };
        if let Some((after, attach)) = entry.state.start_fetch() {
            let follow = if attach {
                Follow::Attach { after }
            } else {
                Follow::Fetch { after }
            };
            self.region.follow(key, follow);
        }
    }

    /// Hands the deferred presence joins whose edge is confirmed and counted to the region.
    fn release_joins(&mut self, key: &ChannelKey) {
        let Some(entry) = self.channels.get_mut(key) else {
            return;
        };
        for join in entry.state.ready_joins() {
            self.region.record(key, join);
        }
    }

    /// The region heard again after being deaf: catch every channel up from history, and record
    /// again this hub's counts and presence sockets (the region may have lost them).
    fn resync(&mut self, now: Instant) {
        let keys: Vec<ChannelKey> = self.channels.keys().cloned().collect();
        for key in keys {
            let Some(entry) = self.channels.get_mut(&key) else {
                continue;
            };
            for op in entry.state.reassert() {
                self.region.record(&key, op);
            }
            self.fetch(&key);
            self.tick(&key, now);
        }
    }

    /// Tells the watchlist when a user's own channel became occupied or vacated on this hub.
    fn occupancy(&mut self, key: &ChannelKey, before: u64) {
        let Some(user_id) = key.channel.server_to_user_id() else {
            return;
        };
        let Some(entry) = self.channels.get(key) else {
            return;
        };
        let after = entry.state.local_subscriptions();
        if (before > 0) == (after > 0) {
            return;
        }
        let change = Occupancy {
            app: key.app.clone(),
            user_id: user_id.to_string(),
            online: after > 0,
        };
        if !self.occupancy.notify(change) {
            self.stats.watchlist_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Does what is due for a channel at `now`, then sets its timer to the next thing due:
    /// forgetting it, retrying a fetch, or announcing its subscription count.
    fn tick(&mut self, key: &ChannelKey, now: Instant) {
        let Some(entry) = self.channels.get_mut(key) else {
            return;
        };
        let release = entry.state.release_at(self.retention, self.lifetimes);
        if release.is_some_and(|at| at <= now) {
            if let Some((_, timer)) = entry.timer.take() {
                self.timers.remove(&timer);
            }
            self.channels.remove(key);
            self.region.follow(key, Follow::Detach);
            return;
        }
        if entry.state.retry_at().is_some_and(|at| at <= now) {
            self.fetch(key);
        }
        let Some(entry) = self.channels.get_mut(key) else {
            return;
        };
        if entry.announcer.due(now, self.announce_interval) {
            let interval = self.announce_interval;
            self.region.record(key, Op::Announce { interval });
        }
        let next = [
            release,
            entry.state.retry_at(),
            entry.announcer.next(self.announce_interval),
        ]
        .into_iter()
        .flatten()
        .min();
        match (next, entry.timer) {
            (None, Some((_, timer))) => {
                self.timers.remove(&timer);
                entry.timer = None;
            }
            (Some(at), Some((current, timer))) if at != current => {
                self.timers.reset_at(&timer, at);
                entry.timer = Some((at, timer));
            }
            (Some(at), None) => {
                entry.timer = Some((at, self.timers.insert_at(key.clone(), at)));
            }
            _ => {}
        }
    }
}
