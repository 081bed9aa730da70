//! The hub's Redis pub/sub connection: subscribed to exactly the channels its registry follows.
//!
//! One task owns the connection. Which channels are wanted is state ([`BusHandle::want`],
//! [`BusHandle::unwant`], latest request per channel wins), so requests never wait and the bus
//! subscribes and unsubscribes many channels in one command. It hands every event it hears to
//! the shard owning the channel, and every watchlist change to the watchlist ([`Inboxes`]).
//!
//! When the connection drops it reconnects with a jittered back-off, subscribes again to
//! everything wanted, and tells every shard and the watchlist to catch up ([`Heard::Resync`],
//! [`Told::Resync`]): whatever was published while it was deaf is in history (pub/sub is
//! at-most-once). Its state — connected or not — is the hub's readiness: a deaf hub is not
//! "up".
//!
//! On a Redis Cluster ([`run_cluster`]) channel events travel over sharded pub/sub: the
//! [`super::sharded`] subscriber keeps one connection per primary owning a wanted channel and
//! follows slot moves and failovers; a want is answered once the channel is live at its owner,
//! and a channel subscribed again (re-homed) makes every channel catch up from history, as a
//! reconnect does. Watchlist changes stay on classic pub/sub, which a cluster forwards to every
//! node, on a connection to the configured node — and when that node cannot be reached (it died;
//! its shard failed over), to another primary from `CLUSTER SHARDS`, resynced exactly as after a
//! reconnect; the bus's state is that connection's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use herald_shared::backoff::backoff;
use herald_shared::channel::ChannelKey;
use redis::ConnectionInfo;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::keys::Keys;
use super::online::decode_change;
use super::sharded;
use super::wire;
use crate::region::{Heard, Inboxes, Told};

/// How long connecting (and each health ping) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the connection is pinged to notice a dead peer.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Why a connection whose peer stopped answering ended.
const PING_TIMED_OUT: &str = "ping timed out";

/// Whether the bus hears the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusState {
    /// Not connected: the hub is deaf to other hubs.
    Down,
    /// Connected and subscribed to everything wanted.
    Up,
}

/// The bus could not subscribe (Redis is unreachable).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("not connected to Redis pub/sub")]
pub struct BusDown;

type Waiter = oneshot::Sender<Result<(), BusDown>>;

#[derive(Debug, Default)]
struct Wants {
    /// Every channel wanted.
    wanted: HashSet<ChannelKey>,
    /// Changes not applied to the connection yet: `true` subscribe, `false` unsubscribe.
    changed: HashMap<ChannelKey, bool>,
    /// Who waits for a channel's subscription.
    waiters: HashMap<ChannelKey, Vec<Waiter>>,
}

#[derive(Debug, Default)]
struct Shared {
    wants: Mutex<Wants>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Wants> {
        self.wants.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A handle to the bus task.
#[derive(Debug, Clone)]
pub struct BusHandle {
    shared: Arc<Shared>,
    state: watch::Receiver<BusState>,
}

/// The bus task's inputs, for [`run`].
pub struct BusTask {
    shared: Arc<Shared>,
    state: watch::Sender<BusState>,
}

/// Creates the bus's handle and task inputs.
pub fn bus() -> (BusHandle, BusTask) {
    let shared = Arc::new(Shared::default());
    let (state_tx, state_rx) = watch::channel(BusState::Down);
    (
        BusHandle {
            shared: shared.clone(),
            state: state_rx,
        },
        BusTask {
            shared,
            state: state_tx,
        },
    )
}

impl BusHandle {
    /// Wants a channel; the answer comes once Redis confirmed the subscription (or at once,
    /// `BusDown`, while the bus is not connected — it subscribes when it reconnects).
    pub fn want(&self, key: ChannelKey) -> oneshot::Receiver<Result<(), BusDown>> {
        let (tx, rx) = oneshot::channel();
        let mut wants = self.shared.lock();
        wants.wanted.insert(key.clone());
        wants.changed.insert(key.clone(), true);
        wants.waiters.entry(key).or_default().push(tx);
        drop(wants);
        self.shared.changed.notify_one();
        rx
    }

    /// No longer wants a channel.
    pub fn unwant(&self, key: ChannelKey) {
        let mut wants = self.shared.lock();
        wants.wanted.remove(&key);
        wants.changed.insert(key, false);
        drop(wants);
        self.shared.changed.notify_one();
    }

    /// The current state.
    pub fn state(&self) -> BusState {
        *self.state.borrow()
    }
}

/// Runs the bus until `shutdown`.
pub async fn run(
    task: BusTask,
    client: redis::Client,
    keys: Keys,
    inboxes: Inboxes,
    max_backoff: Duration,
    shutdown: CancellationToken,
) {
    serve_nodes(task, client, None, keys, inboxes, max_backoff, shutdown).await;
}

/// Where else a cluster's classic pub/sub can be heard: classic `PUBLISH` reaches every node, so
/// when the node of the URL cannot be reached any primary the cluster names will do.
struct Elsewhere {
    /// Asks the cluster for its primaries (it follows the cluster by itself).
    control: ClusterConnection,
    /// The configured connection settings (TLS, AUTH), given each node's address.
    template: ConnectionInfo,
    /// The primaries as the cluster named them while all was well: asking again when a node
    /// is silent may wait for that very node.
    known: Vec<sharded::Node>,
}

impl Elsewhere {
    /// Learns the cluster's primaries (after a connection succeeded).
    async fn learn(&mut self) {
        let known = sharded::primaries(&mut self.control, &self.template).await;
        if !known.is_empty() {
            self.known = known;
        }
    }

    /// Connects at the first primary, other than `failed`, that accepts — of those known, then
    /// of those the cluster names now; its client with the connection.
    async fn connect(
        &mut self,
        failed: &redis::Client,
        keys: &Keys,
        wanted: &[ChannelKey],
    ) -> Option<(redis::Client, (PubSubSink, PubSubStream))> {
        let known = self.known.clone();
        if let Some(found) = self.try_nodes(&known, failed, keys, wanted).await {
            return Some(found);
        }
        let named = sharded::primaries(&mut self.control, &self.template).await;
        if named.is_empty() || named == known {
            return None;
        }
        self.known = named.clone();
        self.try_nodes(&named, failed, keys, wanted).await
    }

    /// Connects at the first of `nodes`, other than `failed`, that accepts.
    async fn try_nodes(
        &self,
        nodes: &[sharded::Node],
        failed: &redis::Client,
        keys: &Keys,
        wanted: &[ChannelKey],
    ) -> Option<(redis::Client, (PubSubSink, PubSubStream))> {
        for node in nodes {
            let info = sharded::node_address(&self.template, node);
            if info.addr() == failed.get_connection_info().addr() {
                continue;
            }
            let Ok(client) = redis::Client::open(info) else {
                continue;
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, connect(&client, keys, wanted)).await {
                Ok(Ok(pubsub)) => {
                    tracing::info!(message = "Redis pub/sub moved to another node of the cluster.", host = %node.host, port = node.port);
                    return Some((client, pubsub));
                }
                Ok(Err(error)) => {
                    tracing::debug!(message = "A node of the cluster refused pub/sub.", host = %node.host, port = node.port, %error)
                }
                Err(_) => {
                    tracing::debug!(message = "A node of the cluster did not answer in time.", host = %node.host, port = node.port)
                }
            }
        }
        None
    }
}

/// Runs the bus until `shutdown` on `client`'s node — on a cluster (`elsewhere`), on the node
/// that answered last, and when it fails, on another primary.
async fn serve_nodes(
    task: BusTask,
    client: redis::Client,
    mut elsewhere: Option<Elsewhere>,
    keys: Keys,
    inboxes: Inboxes,
    max_backoff: Duration,
    shutdown: CancellationToken,
) {
    let BusTask { shared, state } = task;
    let mut failures = 0u32;
    let mut client = client;
    let mut silent = false;
    while !shutdown.is_cancelled() {
        // Everything wanted is subscribed on connecting; pending changes are moot.
        let wanted: Vec<ChannelKey> = {
            let mut wants = shared.lock();
            wants.changed.clear();
            wants.wanted.iter().cloned().collect()
        };
        // A node that stopped answering (its host may have vanished) is tried last.
        let mut moved = None;
        if silent && let Some(elsewhere) = &mut elsewhere {
            moved = elsewhere.connect(&client, &keys, &wanted).await;
        }
        let mut connected = match moved {
            Some((other, pubsub)) => {
                client = other;
                Ok(Ok(pubsub))
            }
            None => tokio::time::timeout(CONNECT_TIMEOUT, connect(&client, &keys, &wanted)).await,
        };
        if !silent
            && !matches!(connected, Ok(Ok(_)))
            && let Some(elsewhere) = &mut elsewhere
            && let Some((other, pubsub)) = elsewhere.connect(&client, &keys, &wanted).await
        {
            client = other;
            connected = Ok(Ok(pubsub));
        }
        silent = false;
        let (mut sink, mut stream) = match connected {
            Ok(Ok(pubsub)) => pubsub,
            outcome => {
                failures = failures.saturating_add(1);
                let reason = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".to_string(),
                };
                tracing::warn!(message = "Cannot connect and subscribe to Redis pub/sub.", reason = %reason, attempt = failures);
                refuse_waiters(&shared);
                let pause = tokio::time::sleep(backoff(failures, max_backoff, fastrand::f64()));
                tokio::pin!(pause);
                // Keep refusing while waiting: wants are recorded and subscribed on reconnect.
                loop {
                    tokio::select! {
                        () = &mut pause => break,
                        _ = shutdown.cancelled() => return,
                        () = shared.changed.notified() => refuse_waiters(&shared),
                    }
                }
                continue;
            }
        };
        failures = 0;
        state.send_replace(BusState::Up);
        answer_waiters(&shared, &wanted.iter().cloned().collect());
        tracing::info!(
            message = "Redis pub/sub connected.",
            channels = wanted.len()
        );
        // Whatever was published while deaf is in history: have every channel catch up.
        inboxes.shard(Heard::Resync).await;
        inboxes.watchlist(Told::Resync).await;
        if let Some(elsewhere) = &mut elsewhere
            && elsewhere.known.is_empty()
        {
            elsewhere.learn().await;
        }
        let reason = serve(&mut sink, &mut stream, &shared, &keys, &inboxes, &shutdown).await;
        state.send_replace(BusState::Down);
        silent = reason.as_deref() == Some(PING_TIMED_OUT);
        match reason {
            Some(reason) => {
                tracing::warn!(message = "Redis pub/sub connection lost.", reason = %reason)
            }
            None => return,
        }
    }
}

/// What the sharded subscriber hears, waiting for the bus on a cluster.
const SHARDED_QUEUE: usize = 1024;
/// How often a cluster bus looks for wants that wait too long.
const WAIT_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the bus on a Redis Cluster until `shutdown`: channel events over sharded pub/sub (one
/// subscriber task, [`sharded`], started on `tracker`), watchlist changes over classic pub/sub
/// on `client`'s node — or, when that one cannot be reached, on any other primary the cluster
/// names (classic `PUBLISH` reaches every node) — as [`run`] with no channel wanted, which also
/// owns the bus's state.
///
/// A want waits until its channel is live at its slot's owner, or is refused ([`BusDown`]) after
/// [`CONNECT_TIMEOUT`] — the registry tries again, and a channel that becomes live later makes
/// every channel catch up, like any re-homed one.
pub async fn run_cluster(
    task: BusTask,
    client: redis::Client,
    keys: Keys,
    inboxes: Inboxes,
    max_backoff: Duration,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let BusTask { shared, state } = task;
    let control = match redis::cluster::ClusterClient::builder([client
        .get_connection_info()
        .clone()])
    .build()
    {
        Ok(control) => control.get_pending_async_connection_with_config(
            redis::cluster::ClusterConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(CONNECT_TIMEOUT),
        ),
        Err(error) => {
            tracing::error!(message = "Cannot make a Redis Cluster client; the hub stays deaf.", %error);
            return;
        }
    };
    let (heard_tx, mut heard) = mpsc::channel(SHARDED_QUEUE);
    let elsewhere = Elsewhere {
        control: control.clone(),
        template: client.get_connection_info().clone(),
        known: Vec::new(),
    };
    let subscriber = sharded::spawn(
        control,
        client.get_connection_info().clone(),
        heard_tx,
        &tracker,
        shutdown.clone(),
    );
    let watchlist = BusTask {
        shared: Arc::new(Shared::default()),
        state,
    };
    tracker.spawn(serve_nodes(
        watchlist,
        client,
        Some(elsewhere),
        keys.clone(),
        inboxes.clone(),
        max_backoff,
        shutdown.clone(),
    ));
    let mut bridge = Bridge {
        shared,
        keys,
        inboxes,
        subscriber,
        subscribed: HashSet::new(),
        live: HashSet::new(),
        since: HashMap::new(),
    };
    let mut check = tokio::time::interval(WAIT_CHECK_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = bridge.shared.changed.notified() => bridge.apply().await,
            message = heard.recv() => match message {
                Some(message) => bridge.heard(message).await,
                None => return,
            },
            _ = check.tick() => bridge.refuse_late(),
        }
    }
}

/// Between the bus's wants and the sharded subscriber, on a cluster.
struct Bridge {
    shared: Arc<Shared>,
    keys: Keys,
    inboxes: Inboxes,
    subscriber: sharded::Subscriber,
    /// The shard channels the subscriber was told to want.
    subscribed: HashSet<String>,
    /// Those it reported live (subscribed at their owner).
    live: HashSet<String>,
    /// Wants not answered yet, since when.
    since: HashMap<ChannelKey, Instant>,
}

impl Bridge {
    /// Hands the changed wants to the subscriber; answers wants of channels already live.
    async fn apply(&mut self) {
        let changed: Vec<(ChannelKey, bool)> = self.shared.lock().changed.drain().collect();
        let mut ready = HashSet::new();
        for (key, wanted) in changed {
            let name = self.keys.events(&key);
            if wanted {
                if self.live.contains(&name) {
                    ready.insert(key);
                    continue;
                }
                self.since.entry(key).or_insert_with(Instant::now);
                if self.subscribed.insert(name.clone()) {
                    self.subscriber.want(name).await;
                }
            } else {
                self.since.remove(&key);
                self.live.remove(&name);
                if self.subscribed.remove(&name) {
                    self.subscriber.unwant(name).await;
                }
            }
        }
        answer_waiters(&self.shared, &ready);
    }

    /// Hands an event to its channel's shard, or answers the wants of channels now live (a
    /// channel live again with nobody waiting was re-homed: every channel catches up).
    async fn heard(&mut self, heard: sharded::Heard) {
        match heard {
            sharded::Heard::Message { channel, payload } => {
                let Some(key) = self.keys.parse_events(&channel) else {
                    return;
                };
                match wire::decode(key, &String::from_utf8_lossy(&payload)) {
                    Ok(event) => {
                        self.inboxes
                            .shard(Heard::Event {
                                event,
                                delivered: None,
                            })
                            .await;
                    }
                    Err(error) => {
                        tracing::warn!(message = "Dropped a malformed message from Redis.", %error)
                    }
                }
            }
            sharded::Heard::Live { channels } => {
                let mut answered = HashSet::new();
                let mut rehomed = 0usize;
                for name in channels {
                    if !self.subscribed.contains(&name) {
                        continue;
                    }
                    let Some(key) = self.keys.parse_events(&name) else {
                        continue;
                    };
                    self.live.insert(name);
                    if self.since.remove(&key).is_some() {
                        answered.insert(key);
                    } else {
                        rehomed += 1;
                    }
                }
                answer_waiters(&self.shared, &answered);
                if rehomed > 0 {
                    crate::metrics::shard_rehomes(rehomed);
                    tracing::info!(
                        message = "Sharded channels subscribed again; catching up from history.",
                        channels = rehomed
                    );
                    self.inboxes.shard(Heard::Resync).await;
                }
            }
        }
    }

    /// Refuses the wants that waited longer than [`CONNECT_TIMEOUT`].
    fn refuse_late(&mut self) {
        let late: Vec<ChannelKey> = self
            .since
            .iter()
            .filter(|(_, since)| since.elapsed() > CONNECT_TIMEOUT)
            .map(|(key, _)| key.clone())
            .collect();
        if late.is_empty() {
            return;
        }
        let mut wants = self.shared.lock();
        for key in late {
            self.since.remove(&key);
            for waiter in wants.waiters.remove(&key).into_iter().flatten() {
                let _ = waiter.send(Err(BusDown));
            }
        }
    }
}

/// Opens a pub/sub connection subscribed to the watchlist pattern and every wanted channel. A
/// failure here is a failed connection: the caller backs off before the next attempt.
async fn connect(
    client: &redis::Client,
    keys: &Keys,
    wanted: &[ChannelKey],
) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
    let (mut sink, stream) = client.get_async_pubsub().await?.split();
    sink.psubscribe(keys.watchlist_pattern()).await?;
    if !wanted.is_empty() {
        let names: Vec<String> = wanted.iter().map(|key| keys.events(key)).collect();
        sink.subscribe(names).await?;
    }
    Ok((sink, stream))
}

/// Answers the waiters of channels now subscribed.
fn answer_waiters(shared: &Shared, subscribed: &HashSet<ChannelKey>) {
    let mut wants = shared.lock();
    wants.waiters.retain(|key, waiters| {
        if !subscribed.contains(key) {
            return true;
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(Ok(()));
        }
        false
    });
}

/// While disconnected: every waiter hears `BusDown` at once (the registry retries, and catches
/// up when the bus reconnects).
fn refuse_waiters(shared: &Shared) {
    let mut wants = shared.lock();
    for (_, waiters) in wants.waiters.drain() {
        for waiter in waiters {
            let _ = waiter.send(Err(BusDown));
        }
    }
}

/// Serves one connection; returns why it ended (`None`: shutdown).
async fn serve(
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    shared: &Shared,
    keys: &Keys,
    inboxes: &Inboxes,
    shutdown: &CancellationToken,
) -> Option<String> {
    let mut ping = tokio::time::interval(PING_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            message = stream.next() => {
                let Some(message) = message else {
                    return Some("the connection closed".into());
                };
                let name = message.get_channel_name();
                let payload = String::from_utf8_lossy(message.get_payload_bytes());
                if let Some(app) = keys.parse_watchlist(name) {
                    match decode_change(&payload) {
                        Some(change) => {
                            inboxes.watchlist(Told::Change(app, change)).await;
                        }
                        None => tracing::warn!(message = "Dropped a malformed watchlist message from Redis."),
                    }
                    continue;
                }
                let Some(key) = keys.parse_events(name) else {
                    continue;
                };
                match wire::decode(key, &payload) {
                    Ok(event) => {
                        inboxes.shard(Heard::Event { event, delivered: None }).await;
                    }
                    Err(error) => tracing::warn!(message = "Dropped a malformed message from Redis.", %error),
                }
            }
            () = shared.changed.notified() => {
                let changed: Vec<(ChannelKey, bool)> = shared.lock().changed.drain().collect();
                let (subscribe, unsubscribe): (Vec<_>, Vec<_>) =
                    changed.into_iter().partition(|(_, wanted)| *wanted);
                if !unsubscribe.is_empty() {
                    let names: Vec<String> = unsubscribe.iter().map(|(key, _)| keys.events(key)).collect();
                    if let Err(error) = sink.unsubscribe(names).await {
                        return Some(error.to_string());
                    }
                }
                if !subscribe.is_empty() {
                    let names: Vec<String> = subscribe.iter().map(|(key, _)| keys.events(key)).collect();
                    if let Err(error) = sink.subscribe(names).await {
                        return Some(error.to_string());
                    }
                    answer_waiters(shared, &subscribe.into_iter().map(|(key, _)| key).collect());
                }
            }
            _ = ping.tick() => {
                let pinged = tokio::time::timeout(CONNECT_TIMEOUT, sink.ping::<redis::Value>()).await;
                match pinged {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Some(error.to_string()),
                    Err(_) => return Some(PING_TIMED_OUT.into()),
                }
            }
        }
    }
}
