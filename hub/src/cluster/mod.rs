//! Hubs of a region linked through Redis (R-HA-1, R-HA-2, R-HA-4, R-API-4): the Redis
//! implementation of [`crate::region`].
//!
//! A leaf: it knows Redis and the region's seam, nothing of the registry, the watchlist, the
//! link or the API. It takes the registry's requests from the [`Pending`] board and reports what
//! it hears and answers on the region's [`Inboxes`].
//!
//! - **Events** are published by a Lua script that assigns the channel's next sequence, appends
//!   the event to the channel's history stream and `PUBLISH`es it, atomically ([`scripts`]). A
//!   hub receives a channel's events only while one of its shards follows the channel: the
//!   [`bus`] subscribes on the first interest and unsubscribes when the registry lets go.
//! - **History** serves edges that resume (after a failover, on another hub) and closes the gaps
//!   pub/sub leaves when a hub's connection drops ([`follower`] reads it).
//! - **Counts and presence** are written by one [`writer`] task in group commits — one pipeline
//!   in flight at a time carrying everything recorded meanwhile — in the order the shards decided
//!   them, and acknowledged to the shards once durable. Counts are kept per edge; both count only
//!   while the hub that wrote them is alive, and [`liveness`] reaps a dead hub's entries.
//! - **Queries** read the live hubs, then run a read-only script per channel, so one channel's
//!   answer is read at one instant.
//! - **Keys** are placed for a Redis Cluster: every key of a channel shares its hash tag, and no
//!   script touches a key outside its channel ([`keys`] has the map).
//!
//! # Layout
//! - [`keys`] — key and channel names under the prefix.
//! - [`wire`] — the event body in Redis.
//! - [`scripts`] — the Lua scripts.
//! - [`connection`] — the command connection: one primary, or a Redis Cluster (pipelines
//!   split by slot).
//! - [`bus`] — the pub/sub connection.
//! - [`follower`] — attaching and fetching channels, with bounded concurrency.
//! - [`writer`] — the group commit of counts, presence and announcements.
//! - [`liveness`] — heartbeat and reaping of dead hubs.
//! - [`online`] — who is online across the region, for watchlists.
//! - [`replicated`] — publishes that wait for replicas, group-committed.
//! - [`sharded`] — sharded pub/sub on a Redis Cluster (the bus's subscriber there).
//! - [`relay`] — the debug console's events across the region.

pub mod bus;
pub mod connection;
pub mod follower;
pub mod keys;
pub mod liveness;
pub mod online;
pub mod relay;
pub mod replicated;
pub mod scripts;
pub mod sharded;
pub mod wire;
pub mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::event::{EventName, MEMBER_ADDED};
use herald_shared::ids::{AppId, HubId, SocketId};
use herald_shared::presence::Member;
use herald_shared::time::UnixTime;
use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::history::HistoryLimits;
use crate::metrics::TimedRedis;
use crate::region::{
    ChannelCounts, Decisions, EdgeLoad, Fetched, Health, Inboxes, JoinOutcome, Pending,
    Publication, RegionError, Retention, Store,
};
use bus::{BusHandle, BusState};
use connection::RedisConnection;
use keys::Keys;
use replicated::Replicated;
use scripts::Scripts;

/// How the region's Redis runs: one primary (with replicas, perhaps), or a Redis Cluster whose
/// shards each own part of the hash slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// One primary: every key and pub/sub channel on it.
    Standalone,
    /// A Redis Cluster (`cluster_enabled:1`): keys and sharded pub/sub channels live on the shard
    /// that owns their hash slot.
    Cluster,
}

impl RedisMode {
    /// The name `redis.mode` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Standalone => "standalone",
            Self::Cluster => "cluster",
        }
    }
}

/// How the hub reaches Redis and behaves in the region.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The Redis server (URL or host, port, password, database, TLS).
    pub redis: redis::Client,
    /// Whether that server is one primary or a Redis Cluster.
    pub mode: RedisMode,
    /// The prefix of every key and channel.
    pub prefix: String,
    /// How long a hub counts as alive after its last heartbeat; a dead hub's presence sockets
    /// and counts are reaped this long after its last heartbeat.
    pub hub_ttl: Duration,
    /// How long the hub stays subscribed to a channel after its last interest.
    pub linger: Duration,
    /// The longest wait between two connection attempts.
    pub max_backoff: Duration,
    /// Replicas that must hold a published event before its trigger is answered (`WAIT`); 0
    /// answers once the primary has it.
    pub replicas_acked: u32,
    /// How long a publish waits for those replicas before it fails (answered 503).
    pub replica_ack_timeout: Duration,
}

impl ClusterSettings {
    /// How the registry keeps unwanted channels in a region: subscribed for the linger, and no
    /// longer (history lives in Redis).
    pub fn retention(&self) -> Retention {
        Retention {
            linger: self.linger,
            history_is_local: false,
        }
    }
}

/// Redis answered something a script never returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unexpected answer from Redis: {0}")]
pub struct UnexpectedReply(pub &'static str);

/// Why a cluster operation failed. All are dependency failures: answered 503, retried.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis answered with an error or could not be reached.
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
    /// The pub/sub connection is down.
    #[error(transparent)]
    Deaf(#[from] bus::BusDown),
    /// A script answered something unexpected.
    #[error(transparent)]
    Reply(#[from] UnexpectedReply),
    /// An event in Redis does not decode.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// The publisher that waits for replicas stopped (the hub is shutting down).
    #[error(transparent)]
    Stopped(#[from] replicated::Stopped),
    /// Too few replicas acknowledged a publish in time: it may be lost in a failover, so it is
    /// not acknowledged (the trigger is answered 503 and retried).
    #[error("{acked} of the {wanted} replicas required acknowledged the event within {timeout:?}")]
    NotReplicated {
        /// The replicas that acknowledged it.
        acked: i64,
        /// The replicas required (`redis.min_replicas_acked`).
        wanted: u32,
        /// How long the hub waited (`redis.replica_ack_timeout_ms`).
        timeout: Duration,
    },
}

impl From<ClusterError> for RegionError {
    fn from(error: ClusterError) -> Self {
        match error {
            ClusterError::Deaf(_) => Self::Deaf,
            other => Self::Store(Box::new(other)),
        }
    }
}

/// Which entry of a channel [`Cluster::mark_removals`] adds to the delayed webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Before a script that may decide a removal: the channel's marker.
    Before,
    /// After a script that decided one: the channel's check.
    After,
}

/// A cheap-to-clone handle to the region's shared state in Redis.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    hub_id: HubId,
    keys: Keys,
    scripts: Scripts,
    mode: RedisMode,
    redis: RedisConnection,
    /// Publishes that wait for replicas, when `redis.min_replicas_acked` > 0.
    replicated: Option<Replicated>,
    /// Publications made so far: with the hub's id, each one's id.
    publications: AtomicU64,
    bus: BusHandle,
    history: HistoryLimits,
    cache_ttl: Duration,
    hub_ttl: Duration,
    decisions: Arc<dyn Decisions>,
    relay: relay::RedisRelay,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("hub_id", &self.inner.hub_id)
            .field("prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// The bound on connecting to Redis and on each command's answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A lazily connecting command connection for the settings' mode, answers bounded by
/// `response_timeout` (the region's, and the webhooks' own).
pub fn connect(
    settings: &ClusterSettings,
    response_timeout: Duration,
) -> Result<RedisConnection, RedisError> {
    match settings.mode {
        RedisMode::Standalone => {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(RESPONSE_TIMEOUT))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(1)
                .set_max_delay(settings.max_backoff);
            Ok(RedisConnection::Standalone(
                ConnectionManager::new_lazy_with_config(settings.redis.clone(), config)?,
            ))
        }
        RedisMode::Cluster => {
            let client = ClusterClient::builder([settings.redis.get_connection_info().clone()])
                .retries(1)
                .max_retry_wait(settings.max_backoff.as_millis() as u64)
                .build()?;
            let config = ClusterConfig::new()
                .set_connection_timeout(RESPONSE_TIMEOUT)
                .set_response_timeout(response_timeout);
            Ok(RedisConnection::Cluster(
                client.get_pending_async_connection_with_config(config),
            ))
        }
    }
}

/// How long a hub keeps trying a publish that got no reply before it gives up (the trigger is
/// answered 503): long enough to ride out a primary being replaced, well inside
/// `hub.request_timeout_secs`.
pub const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(5);
/// The first pause before a publish is tried again; it doubles up to [`PUBLISH_RETRY_PAUSE_MAX`].
const PUBLISH_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between two tries of a publish.
const PUBLISH_RETRY_PAUSE_MAX: Duration = Duration::from_millis(500);

/// Whether a failed publish may have run without its reply reaching the hub, or may run if
/// tried again soon: the connection failed, or the server is a replica not yet promoted, still
/// loading its data, or cut off from its primary, or (on a Redis Cluster) the slot moved — a
/// failover promoted another node — and the connection learns the new owner from the refusal. A script error or a refusal to acknowledge
/// ([`ClusterError::NotReplicated`], already a bounded wait) is final.
fn reply_may_come_later(error: &ClusterError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    let ClusterError::Redis(error) = error else {
        return false;
    };
    error.is_io_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::Moved
                    | ServerErrorKind::Ask
            )
        )
}

/// Now, in milliseconds since 1970 (the hubs set's scores use it).
fn unix_ms() -> u64 {
    UnixTime::from_system(SystemTime::now()).as_millis()
}

fn parse_seq(text: &str) -> Result<u64, ClusterError> {
    text.parse()
        .map_err(|_| UnexpectedReply("a sequence that is not a number").into())
}

/// The `subscription_succeeded` data for presence members given as `user, info, …`.
pub fn snapshot(pairs: &[String]) -> String {
    let members: std::collections::BTreeSet<(&str, &str)> = pairs
        .chunks(2)
        .filter_map(|pair| match pair {
            [user, info] => Some((user.as_str(), info.as_str())),
            _ => None,
        })
        .collect();
    herald_shared::presence::presence_data(members)
}

/// What the region's tasks need besides the settings.
pub struct ClusterSetup {
    /// This hub.
    pub hub_id: HubId,
    /// History bounds (script arguments).
    pub history: HistoryLimits,
    /// How long a cache channel keeps its last event.
    pub cache_ttl: Duration,
    /// The registry's requests.
    pub pending: Arc<Pending>,
    /// Where answers and what is heard go.
    pub inboxes: Inboxes,
    /// Who is told what this hub's writes decided for the region (webhooks).
    pub decisions: Arc<dyn Decisions>,
}

impl Cluster {
    /// Joins the region: starts the pub/sub bus, the follower, the writer and the heartbeat on
    /// `tracker` (Redis is connected lazily; failures are retried by every task).
    pub fn start(
        settings: &ClusterSettings,
        setup: ClusterSetup,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, ClusterError> {
        let redis = connect(settings, RESPONSE_TIMEOUT)?;
        // On a cluster events go over sharded pub/sub (SPUBLISH/SSUBSCRIBE).
        let scripts = Scripts::new(settings.mode == RedisMode::Cluster);
        let replicated = if settings.replicas_acked > 0 {
            let connection = connect(settings, RESPONSE_TIMEOUT + settings.replica_ack_timeout)?;
            let (replicated, task) = Replicated::new(
                replicated::Settings {
                    connection,
                    load: redis::cmd("SCRIPT")
                        .arg("LOAD")
                        .arg(&scripts.publish_code)
                        .clone(),
                    wanted: settings.replicas_acked,
                    timeout: settings.replica_ack_timeout,
                },
                shutdown.clone(),
            );
            tracker.spawn(task);
            Some(replicated)
        } else {
            None
        };
        let keys = Keys::new(settings.prefix.clone());
        let (bus, bus_task) = bus::bus();
        let (relay, relay_task) =
            relay::RedisRelay::new(setup.hub_id, keys.clone(), TimedRedis(redis.clone()));
        let cluster = Self {
            inner: Arc::new(Inner {
                hub_id: setup.hub_id,
                keys: keys.clone(),
                scripts,
                mode: settings.mode,
                redis,
                replicated,
                publications: AtomicU64::new(0),
                bus,
                history: setup.history,
                cache_ttl: setup.cache_ttl,
                hub_ttl: settings.hub_ttl,
                decisions: setup.decisions,
                relay: relay.clone(),
            }),
        };
        tracker.spawn(relay::run(
            relay,
            relay_task,
            settings.redis.clone(),
            settings.max_backoff,
            shutdown.clone(),
        ));
        match settings.mode {
            RedisMode::Standalone => tracker.spawn(bus::run(
                bus_task,
                settings.redis.clone(),
                keys,
                setup.inboxes.clone(),
                settings.max_backoff,
                shutdown.clone(),
            )),
            RedisMode::Cluster => tracker.spawn(bus::run_cluster(
                bus_task,
                settings.redis.clone(),
                keys,
                setup.inboxes.clone(),
                settings.max_backoff,
                tracker.clone(),
                shutdown.clone(),
            )),
        };
        tracker.spawn(follower::run(
            cluster.clone(),
            setup.pending.clone(),
            setup.inboxes.clone(),
            tracker.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(writer::run(
            cluster.clone(),
            setup.pending,
            setup.inboxes,
            settings.max_backoff,
            shutdown.clone(),
        ));
        tracker.spawn(liveness::run(cluster.clone(), shutdown));
        Ok(cluster)
    }

    /// The debug console's relay across the region.
    pub fn relay(&self) -> relay::RedisRelay {
        self.inner.relay.clone()
    }

    /// Who is told what this hub's writes decided for the region.
    pub fn decisions(&self) -> &dyn Decisions {
        &*self.inner.decisions
    }

    /// This hub.
    pub fn hub_id(&self) -> HubId {
        self.inner.hub_id
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The pub/sub bus.
    pub fn bus(&self) -> &BusHandle {
        &self.inner.bus
    }

    /// Whether the hub hears the region (its pub/sub connection is up).
    pub fn hears(&self) -> bool {
        self.inner.bus.state() == BusState::Up
    }

    /// How long a hub counts as alive after a heartbeat.
    pub fn hub_ttl(&self) -> Duration {
        self.inner.hub_ttl
    }

    /// The scripts.
    pub fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    /// A connection to Redis: a cheap clone of the hub's one multiplexed connection (on a
    /// cluster: one per shard, pipelines split by slot), every command timed.
    pub fn connection(&self) -> TimedRedis<RedisConnection> {
        TimedRedis(self.inner.redis.clone())
    }

    /// A channel script call with the channel's keys and its first three arguments (prefix,
    /// app, channel).
    pub fn channel_call<'a>(
        &'a self,
        script: &'a redis::Script,
        key: &ChannelKey,
    ) -> redis::ScriptInvocation<'a> {
        scripts::channel_invocation(
            &self.inner.keys,
            script,
            key,
            self.inner.mode == RedisMode::Cluster,
        )
    }

    /// On a Redis Cluster, adds to `pipe` the delayed-set entries of `channels` that have a
    /// removal delay (their webhooks want removals): their markers (`Mark::Before`, before
    /// scripts that may decide a removal) or checks (`Mark::After`, after scripts that did); see
    /// [`scripts::WEBHOOK_INDEX`]. On one Redis the scripts keep the delayed set themselves, and
    /// nothing is added. Whether anything was.
    pub fn mark_removals<'k>(
        &self,
        pipe: &mut redis::Pipeline,
        channels: impl IntoIterator<Item = &'k ChannelKey>,
        mark: Mark,
    ) -> bool {
        if self.inner.mode != RedisMode::Cluster {
            return false;
        }
        let scripts = &self.inner.scripts;
        let mut call = scripts.webhook_index.prepare_invoke();
        call.key(self.inner.keys.webhook_delayed());
        call.arg(match mark {
            Mark::Before => "GT",
            Mark::After => "LT",
        });
        let mut any = false;
        for key in channels {
            let delay = self.decisions().removal_delay(key).as_millis() as u64;
            if delay == 0 {
                continue;
            }
            let member = match mark {
                Mark::Before => Keys::webhook_marker(key),
                Mark::After => Keys::webhook_check(key),
            };
            call.arg(member).arg(delay);
            any = true;
        }
        if any {
            pipe.load_script(&scripts.webhook_index).ignore();
            pipe.invoke_script(&call).ignore();
        }
        any
    }

    /// History bounds as script arguments: most events, and age in milliseconds.
    pub fn history_args(&self) -> (usize, u64) {
        let history = self.inner.history;
        (history.max_events, history.max_age.as_millis() as u64)
    }

    /// Publishes an event to the region; returns its sequence once Redis holds it — and, when
    /// replicas are required, once that many replicas hold it too ([`replicated`]: the scripts
    /// and one `WAIT` for a whole batch, on a connection of their own).
    ///
    /// A publish whose reply never came (the connection dropped, the primary died or is being
    /// replaced) may or may not have run, so it is tried again, for up to [`PUBLISH_RETRY_FOR`],
    /// under the same publication id: the script answers a repeat with the sequence it gave
    /// the first time and publishes nothing ([`scripts::PublishArgs::id`]).
    pub async fn publish(&self, publication: &Publication) -> Result<u64, ClusterError> {
        let body = wire::body(
            &publication.name,
            &publication.data,
            publication.exclude,
            publication.user_id.as_deref(),
            UnixTime::from_system(SystemTime::now()).as_micros(),
        );
        let cached = publication.key.channel.is_cache() && !publication.name.is_reserved();
        let cache_ttl = if cached {
            self.inner.cache_ttl.as_millis() as u64
        } else {
            0
        };
        let (maxlen, history_ttl) = self.history_args();
        let counter = self.inner.publications.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}:{counter}", self.inner.hub_id);
        let args = scripts::PublishArgs {
            body: &body,
            maxlen,
            history_ttl_ms: history_ttl,
            cache_ttl_ms: cache_ttl,
            id: &id,
        };
        let started = Instant::now();
        let mut pause = PUBLISH_RETRY_PAUSE;
        loop {
            match self.publish_once(&publication.key, args).await {
                Err(error)
                    if reply_may_come_later(&error)
                        && started.elapsed() + pause < PUBLISH_RETRY_FOR =>
                {
                    tracing::info!(message = "A publish got no reply; trying it again under the same id.", %error, id);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(PUBLISH_RETRY_PAUSE_MAX);
                }
                outcome => return outcome,
            }
        }
    }

    /// One try of a publish.
    async fn publish_once(
        &self,
        key: &ChannelKey,
        args: scripts::PublishArgs<'_>,
    ) -> Result<u64, ClusterError> {
        let invocation = self.inner.scripts.publish_call(&self.inner.keys, key, args);
        let Some(replicated) = &self.inner.replicated else {
            let seq: String = invocation.invoke_async(&mut self.connection()).await?;
            return parse_seq(&seq);
        };
        let mut call = redis::pipe();
        call.invoke_script(&invocation);
        parse_seq(&replicated.publish(call).await?)
    }

    /// Reads a channel's sequence, history after `after`, and cache.
    pub async fn fetch(
        &self,
        key: &ChannelKey,
        after: Option<u64>,
    ) -> Result<Fetched, ClusterError> {
        let oldest = unix_ms().saturating_sub(self.inner.history.max_age.as_millis() as u64);
        let mut invocation = self.channel_call(&self.inner.scripts.fetch, key);
        invocation
            .arg(after.map(|a| a.to_string()).unwrap_or_default())
            .arg(oldest);
        let (seq, events, cached): (String, Vec<String>, String) =
            invocation.invoke_async(&mut self.connection()).await?;
        let decode = |text: &str| wire::decode(key.clone(), text);
        Ok(Fetched {
            seq: parse_seq(&seq)?,
            events: events.iter().map(|e| decode(e)).collect::<Result<_, _>>()?,
            cached: if cached.is_empty() {
                None
            } else {
                Some(decode(&cached)?)
            },
        })
    }

    /// The script call joining a socket to a presence channel. `announce` publishes
    /// `member_added` for a new user (re-assertions pass `false`); a removal it decides waits
    /// `webhook_delay_ms` for its webhook (0: none is recorded).
    pub fn join_call<'a>(
        &'a self,
        key: &ChannelKey,
        socket: SocketId,
        member: &Member,
        limit: usize,
        announce: bool,
        webhook_delay_ms: u64,
    ) -> redis::ScriptInvocation<'a> {
        let added = wire::body(
            &EventName::internal(MEMBER_ADDED),
            &member.added_data(),
            Some(socket),
            None,
            UnixTime::from_system(SystemTime::now()).as_micros(),
        );
        let info = member.user_info.as_ref().map_or("null", |info| info.json());
        let (maxlen, history_ttl) = self.history_args();
        let mut invocation = self.channel_call(&self.inner.scripts.join, key);
        invocation
            .arg(self.inner.hub_id.to_string())
            .arg(socket.to_string())
            .arg(&member.user_id)
            .arg(info)
            .arg(limit.min(i64::MAX as usize))
            .arg(if announce { "1" } else { "0" })
            .arg(added)
            .arg(maxlen)
            .arg(history_ttl)
            .arg(webhook_delay_ms);
        invocation
    }

    /// Reads a join script's answer.
    pub fn join_outcome(
        (outcome, seq, members): (String, String, Vec<String>),
    ) -> Result<JoinOutcome, ClusterError> {
        match outcome.as_str() {
            "added" | "returned" | "joined" | "existing" => Ok(JoinOutcome::Accepted {
                snapshot: snapshot(&members),
                seq: parse_seq(&seq)?,
            }),
            "full" => Ok(JoinOutcome::Full),
            _ => Err(UnexpectedReply("a join outcome").into()),
        }
    }

    /// The hubs whose heartbeat is fresh, as scripts take them: ids joined by `,`.
    pub async fn live_hubs(&self) -> Result<String, ClusterError> {
        use redis::AsyncCommands;
        let live: Vec<String> = self
            .connection()
            .zrangebyscore(self.inner.keys.hubs(), unix_ms(), "+inf")
            .await?;
        Ok(live.join(","))
    }

    /// A channel's counts over live hubs.
    pub async fn counts(&self, key: &ChannelKey) -> Result<ChannelCounts, ClusterError> {
        let live = self.live_hubs().await?;
        let mut invocation = self.channel_call(&self.inner.scripts.read, key);
        invocation.arg(live);
        let (subscriptions, users): (u64, u64) =
            invocation.invoke_async(&mut self.connection()).await?;
        Ok(ChannelCounts::of(&key.channel, subscriptions, users))
    }

    /// The users present in a presence channel, sorted; sockets of dead hubs do not count.
    pub async fn users(&self, key: &ChannelKey) -> Result<Vec<String>, ClusterError> {
        let live = self.live_hubs().await?;
        let mut invocation = self.channel_call(&self.inner.scripts.users, key);
        invocation.arg(live);
        Ok(invocation.invoke_async(&mut self.connection()).await?)
    }

    /// The occupied channels of an app starting with `prefix`, sorted by name: the app's
    /// channels that may have a count, each read over the live hubs (one script per channel,
    /// all in one pipeline).
    pub async fn list(
        &self,
        app: &AppId,
        prefix: &str,
    ) -> Result<Vec<(ChannelName, ChannelCounts)>, ClusterError> {
        use redis::AsyncCommands;
        let names: Vec<String> = self
            .connection()
            .smembers(self.inner.keys.app_channels(app))
            .await?;
        let candidates: Vec<ChannelName> = names
            .iter()
            .filter(|name| name.starts_with(prefix))
            .filter_map(|name| ChannelName::parse(name).ok())
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let live = self.live_hubs().await?;
        let mut pipe = redis::pipe();
        pipe.load_script(&self.inner.scripts.read).ignore();
        for channel in &candidates {
            let key = ChannelKey::new(app.clone(), channel.clone());
            let mut invocation = self.channel_call(&self.inner.scripts.read, &key);
            invocation.arg(&live);
            pipe.invoke_script(&invocation);
        }
        let read: Vec<(u64, u64)> = pipe.query_async(&mut self.connection()).await?;
        let mut channels: Vec<(ChannelName, ChannelCounts)> = candidates
            .into_iter()
            .zip(read)
            .filter(|(_, (subscriptions, _))| *subscriptions > 0)
            .map(|(channel, (subscriptions, users))| {
                let counts = ChannelCounts::of(&channel, subscriptions, users);
                (channel, counts)
            })
            .collect();
        channels.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(channels)
    }

    /// Removes channels from their app's channels when they have no count left. Checked again
    /// after the removal, because another hub may have counted the channel (and added it)
    /// meanwhile: the index stays a superset of the channels with a count.
    pub async fn forget_channels(&self, keys: &[&ChannelKey]) -> Result<(), ClusterError> {
        if keys.is_empty() {
            return Ok(());
        }
        let names = &self.inner.keys;
        let mut forget = redis::pipe();
        let mut check = redis::pipe();
        for key in keys {
            forget
                .srem(names.app_channels(&key.app), key.channel.as_str())
                .ignore();
            check.hlen(names.counts(key));
        }
        let () = forget.query_async(&mut self.connection()).await?;
        let lengths: Vec<u64> = check.query_async(&mut self.connection()).await?;
        let mut keep = redis::pipe();
        let mut kept = false;
        for (key, length) in keys.iter().zip(lengths) {
            if length > 0 {
                keep.sadd(names.app_channels(&key.app), key.channel.as_str())
                    .ignore();
                kept = true;
            }
        }
        if kept {
            let () = keep.query_async(&mut self.connection()).await?;
        }
        Ok(())
    }
}

impl Cluster {
    /// Writes this hub's edges' connections per app (expiring with its heartbeat) and reads
    /// every live hub's: each edge of the region with its connections, for `max_connections`
    /// and the debug console. An entry that does not decode (another version's) is skipped.
    pub async fn connections(&self, local: &[EdgeLoad]) -> Result<Vec<EdgeLoad>, ClusterError> {
        use redis::AsyncCommands;
        let keys = &self.inner.keys;
        let mut redis = self.connection();
        let mine = keys.hub_connections(&self.inner.hub_id.to_string());
        let mut write = redis::pipe();
        write.atomic().del(&mine).ignore();
        if !local.is_empty() {
            let fields: Vec<(String, String)> = local
                .iter()
                .map(|load| {
                    let apps: Vec<(&str, u32)> = load
                        .apps
                        .iter()
                        .map(|(app, count)| (app.as_str(), *count))
                        .collect();
                    let apps = serde_json::to_string(&apps).unwrap_or_else(|_| "[]".into());
                    (load.edge.to_string(), apps)
                })
                .collect();
            write.hset_multiple(&mine, &fields).ignore();
            write
                .pexpire(&mine, self.inner.hub_ttl.as_millis() as i64)
                .ignore();
        }
        let () = write.query_async(&mut redis).await?;
        let live: Vec<String> = redis.zrangebyscore(keys.hubs(), unix_ms(), "+inf").await?;
        let mut loads = Vec::new();
        for hub_name in live {
            let Ok(hub) = hub_name.parse::<HubId>() else {
                continue;
            };
            let edges: HashMap<String, String> =
                redis.hgetall(keys.hub_connections(&hub_name)).await?;
            for (edge, apps) in edges {
                let (Ok(edge), Ok(apps)) = (
                    edge.parse::<u64>(),
                    serde_json::from_str::<Vec<(String, u32)>>(&apps),
                ) else {
                    continue;
                };
                loads.push(EdgeLoad {
                    edge: herald_shared::ids::EdgeId(edge),
                    hub,
                    apps: apps
                        .into_iter()
                        .map(|(app, count)| (AppId::new(app), count))
                        .collect(),
                });
            }
        }
        Ok(loads)
    }
}

impl Store for Cluster {
    fn publish(&self, publication: Publication) -> BoxFuture<'_, Result<(), RegionError>> {
        async move {
            Cluster::publish(self, &publication).await?;
            Ok(())
        }
        .boxed()
    }

    fn counts(&self, key: ChannelKey) -> BoxFuture<'_, Result<ChannelCounts, RegionError>> {
        async move { Ok(Cluster::counts(self, &key).await?) }.boxed()
    }

    fn list(
        &self,
        app: AppId,
        prefix: String,
    ) -> BoxFuture<'_, Result<Vec<(ChannelName, ChannelCounts)>, RegionError>> {
        async move { Ok(Cluster::list(self, &app, &prefix).await?) }.boxed()
    }

    fn users(&self, key: ChannelKey) -> BoxFuture<'_, Result<Vec<String>, RegionError>> {
        async move { Ok(Cluster::users(self, &key).await?) }.boxed()
    }

    fn connections(
        &self,
        local: Vec<EdgeLoad>,
    ) -> BoxFuture<'_, Result<Vec<EdgeLoad>, RegionError>> {
        async move { Ok(Cluster::connections(self, &local).await?) }.boxed()
    }

    fn health(&self) -> Health {
        if self.hears() {
            Health::Connected
        } else {
            Health::Disconnected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn only_a_lost_reply_or_a_server_in_transition_is_tried_again() {
        use redis::{ErrorKind, ServerErrorKind};
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let again = |error: RedisError| reply_may_come_later(&ClusterError::Redis(error));
        assert!(again(RedisError::from(io)));
        assert!(again(RedisError::from((
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "READONLY"
        ))));
        assert!(!again(RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "ERR script failed"
        ))));
        let refused = ClusterError::NotReplicated {
            acked: 0,
            wanted: 1,
            timeout: Duration::from_secs(1),
        };
        assert!(!reply_may_come_later(&refused));
        assert!(!reply_may_come_later(&UnexpectedReply("x").into()));
    }

    #[test]
    fn snapshots_have_pushers_shape() {
        let pairs: Vec<String> = ["b", "null", "a", r#"{"n":1}"#].map(String::from).to_vec();
        let value: Value = serde_json::from_str(&snapshot(&pairs)).unwrap();
        assert_eq!(
            value,
            json!({"presence": {"ids": ["a", "b"], "hash": {"a": {"n": 1}, "b": null}, "count": 2}})
        );
    }
}
