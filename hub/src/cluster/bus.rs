//! The hub's Redis pub/sub connection: subscribed to exactly the channels some local edge wants.
//!
//! One task owns the connection. Registry shards ask it to subscribe (on a channel's first
//! interest) and unsubscribe (after the last interest, and a linger); it forwards every message
//! to the shard owning the channel. When the connection drops it reconnects with a jittered
//! back-off, subscribes again to everything wanted, and tells the registry to back-fill from
//! history whatever was published while it was deaf (pub/sub is at-most-once). It also hears
//! every app's watchlist channel and hands those changes to the watchlist actor. Its state —
//! connected or not — is the hub's readiness: a deaf hub is not "up".

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use herald_shared::backoff::backoff;
use herald_shared::channel::ChannelKey;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::keys::Keys;
use super::online::OnlineChange;
use super::wire;
use crate::registry::Registry;
use crate::watchlist::WatchlistSender;

/// Commands queued for the bus task.
const QUEUE: usize = 4096;
/// How long connecting (and each health ping) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the connection is pinged to notice a dead peer.
const PING_INTERVAL: Duration = Duration::from_secs(1);

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

#[derive(Debug)]
enum Command {
    Subscribe(ChannelKey, oneshot::Sender<Result<(), BusDown>>),
    Unsubscribe(ChannelKey),
}

/// A handle to the bus task.
#[derive(Debug, Clone)]
pub struct BusHandle {
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<BusState>,
}

/// The bus task's inputs, for [`run`].
pub struct BusTask {
    commands: mpsc::Receiver<Command>,
    state: watch::Sender<BusState>,
}

/// Creates the bus's handle and task inputs.
pub fn bus() -> (BusHandle, BusTask) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (state_tx, state_rx) = watch::channel(BusState::Down);
    (
        BusHandle {
            commands: tx,
            state: state_rx,
        },
        BusTask {
            commands: rx,
            state: state_tx,
        },
    )
}

impl BusHandle {
    /// Subscribes to a channel; returns once Redis confirmed the subscription.
    pub async fn subscribe(&self, key: ChannelKey) -> Result<(), BusDown> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Subscribe(key, tx))
            .await
            .map_err(|_| BusDown)?;
        rx.await.map_err(|_| BusDown)?
    }

    /// Unsubscribes from a channel.
    pub async fn unsubscribe(&self, key: ChannelKey) {
        let _ = self.commands.send(Command::Unsubscribe(key)).await;
    }

    /// The current state.
    pub fn state(&self) -> BusState {
        *self.state.borrow()
    }
}

/// Where the bus hands what it hears.
#[derive(Clone)]
pub struct Listeners {
    /// Channel events and catch-up after a reconnect.
    pub registry: Registry,
    /// Online changes and re-assertion after a reconnect.
    pub watchlist: WatchlistSender,
}

/// Runs the bus until `shutdown`.
pub async fn run(
    task: BusTask,
    client: redis::Client,
    keys: Keys,
    listeners: Listeners,
    max_backoff: Duration,
    shutdown: CancellationToken,
) {
    let BusTask {
        mut commands,
        state,
    } = task;
    let mut wanted: HashSet<ChannelKey> = HashSet::new();
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let connected =
            tokio::time::timeout(CONNECT_TIMEOUT, connect(&client, &keys, &wanted)).await;
        let (mut sink, mut stream) = match connected {
            Ok(Ok(pubsub)) => pubsub,
            outcome => {
                failures = failures.saturating_add(1);
                let reason = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".to_string(),
                };
                tracing::warn!(message = "Cannot connect and subscribe to Redis pub/sub.", reason = %reason, attempt = failures);
                let pause = tokio::time::sleep(backoff(failures, max_backoff, fastrand::f64()));
                tokio::pin!(pause);
                // Keep answering while waiting: subscriptions are recorded and refused for now.
                loop {
                    tokio::select! {
                        () = &mut pause => break,
                        _ = shutdown.cancelled() => return,
                        command = commands.recv() => match command {
                            Some(command) => refuse(command, &mut wanted),
                            None => return,
                        },
                    }
                }
                continue;
            }
        };
        failures = 0;
        state.send_replace(BusState::Up);
        tracing::info!(
            message = "Redis pub/sub connected.",
            channels = wanted.len()
        );
        // Whatever was published while deaf is in history: have every channel catch up.
        listeners.registry.resync().await;
        listeners.watchlist.resync().await;
        let reason = serve(
            &mut sink,
            &mut stream,
            &mut commands,
            &mut wanted,
            &keys,
            &listeners,
            &shutdown,
        )
        .await;
        state.send_replace(BusState::Down);
        match reason {
            Some(reason) => {
                tracing::warn!(message = "Redis pub/sub connection lost.", reason = %reason)
            }
            None => return,
        }
    }
}

/// Opens a pub/sub connection subscribed to the watchlist pattern and every wanted channel. A
/// failure here is a failed connection: the caller backs off before the next attempt.
async fn connect(
    client: &redis::Client,
    keys: &Keys,
    wanted: &HashSet<ChannelKey>,
) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
    let (mut sink, stream) = client.get_async_pubsub().await?.split();
    sink.psubscribe(keys.watchlist_pattern()).await?;
    if !wanted.is_empty() {
        let names: Vec<String> = wanted.iter().map(|key| keys.events(key)).collect();
        sink.subscribe(names).await?;
    }
    Ok((sink, stream))
}

fn refuse(command: Command, wanted: &mut HashSet<ChannelKey>) {
    match command {
        Command::Subscribe(key, reply) => {
            wanted.insert(key);
            let _ = reply.send(Err(BusDown));
        }
        Command::Unsubscribe(key) => {
            wanted.remove(&key);
        }
    }
}

/// Serves one connection; returns why it ended (`None`: shutdown).
async fn serve(
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    commands: &mut mpsc::Receiver<Command>,
    wanted: &mut HashSet<ChannelKey>,
    keys: &Keys,
    listeners: &Listeners,
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
                    match OnlineChange::decode(&payload) {
                        Some(change) => listeners.watchlist.changed(app, change).await,
                        None => tracing::warn!(message = "Dropped a malformed watchlist message from Redis."),
                    }
                    continue;
                }
                let Some(key) = keys.parse_events(name) else {
                    continue;
                };
                match wire::decode(key, &payload) {
                    Ok(event) => listeners.registry.remote(event).await,
                    Err(error) => tracing::warn!(message = "Dropped a malformed message from Redis.", %error),
                }
            }
            command = commands.recv() => match command {
                Some(Command::Subscribe(key, reply)) => {
                    let subscribed = sink.subscribe(keys.events(&key)).await;
                    wanted.insert(key);
                    match subscribed {
                        Ok(()) => {
                            let _ = reply.send(Ok(()));
                        }
                        Err(error) => {
                            let _ = reply.send(Err(BusDown));
                            return Some(error.to_string());
                        }
                    }
                }
                Some(Command::Unsubscribe(key)) => {
                    wanted.remove(&key);
                    if let Err(error) = sink.unsubscribe(keys.events(&key)).await {
                        return Some(error.to_string());
                    }
                }
                None => return None,
            },
            _ = ping.tick() => {
                let pinged = tokio::time::timeout(CONNECT_TIMEOUT, sink.ping::<redis::Value>()).await;
                match pinged {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Some(error.to_string()),
                    Err(_) => return Some("ping timed out".into()),
                }
            }
        }
    }
}
