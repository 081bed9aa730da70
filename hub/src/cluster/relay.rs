//! The debug console's events across a region of hubs sharing Redis ([`Relay`]).
//!
//! - A console watching an app on a hub keeps `{prefix}:{con:{app}}:watch` set (expiring after
//!   [`WATCH_TTL`], refreshed every [`REFRESH`]).
//! - A hub sends an app's console events to `{prefix}:{con:{app}}:ev` (a plain `PUBLISH`, one
//!   message `{hub}\n{json}` per event) while it knows the app is watched: it looks the key up at
//!   most once per [`RECHECK`] per app, and only for apps it has events of, so other hubs' events
//!   show within a second of a console opening. With no console open, an event costs a map
//!   lookup.
//! - A hub whose consoles watch an app subscribes to that app's channel on a pub/sub connection
//!   of its own (apart from the events bus), opened only while one of its consoles watches, and
//!   hands other hubs' events to its consoles.
//!
//! Console events are a view, not data: sent at most once, dropped (and counted) when the
//! queue to Redis is full or Redis is unreachable.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use herald_shared::backoff::backoff;
use herald_shared::ids::{AppId, HubId};
use redis::AsyncCommands;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::connection::RedisConnection;
use super::keys::Keys;
use crate::metrics::TimedRedis;
use crate::region::{Relay, Relayed, Watching};

/// How long a console's watch lasts without being refreshed.
pub const WATCH_TTL: Duration = Duration::from_secs(10);
/// How often a hub refreshes the watches of its open consoles.
pub const REFRESH: Duration = Duration::from_secs(3);
/// How long a hub trusts what it read of an app's watch.
pub const RECHECK: Duration = Duration::from_secs(1);
/// Events queued towards Redis before more are dropped.
const QUEUE: usize = 1024;
/// Other hubs' events held for a slow console before it skips.
const HEARD: usize = 1024;
/// How long connecting (and starting to watch) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What this hub knows of an app's watch.
#[derive(Debug, Clone, Copy)]
struct Known {
    watched: bool,
    until: Instant,
}

/// An event on its way to Redis; `check`: look the watch up first, and send only if watched.
#[derive(Debug)]
struct Out {
    app: AppId,
    json: String,
    check: bool,
}

#[derive(Debug)]
struct Watcher {
    consoles: usize,
    events: broadcast::Sender<Relayed>,
}

struct Inner {
    hub: String,
    keys: Keys,
    redis: TimedRedis<RedisConnection>,
    known: Mutex<HashMap<AppId, Known>>,
    out: mpsc::Sender<Out>,
    watchers: Mutex<HashMap<AppId, Watcher>>,
    /// The watched apps changed: the listener subscribes again.
    changed: Notify,
    /// Bumped on each change of the watched apps; the listener reports the last it subscribed.
    wanted: watch::Sender<u64>,
    subscribed: watch::Sender<u64>,
}

/// The Redis relay of console events; a cheap-to-clone handle.
#[derive(Clone)]
pub struct RedisRelay {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRelay")
            .field("hub", &self.inner.hub)
            .finish_non_exhaustive()
    }
}

/// The receiving end of the relay's queue, for [`run`].
#[derive(Debug)]
pub struct RelayTask {
    out: mpsc::Receiver<Out>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RedisRelay {
    /// A relay for hub `hub` with keys `keys`, talking to Redis through `redis`, and its task's
    /// inputs.
    pub fn new(hub: HubId, keys: Keys, redis: TimedRedis<RedisConnection>) -> (Self, RelayTask) {
        let (out, out_rx) = mpsc::channel(QUEUE);
        let relay = Self {
            inner: Arc::new(Inner {
                hub: hub.to_string(),
                keys,
                redis,
                known: Mutex::new(HashMap::new()),
                out,
                watchers: Mutex::new(HashMap::new()),
                changed: Notify::new(),
                wanted: watch::channel(0).0,
                subscribed: watch::channel(0).0,
            }),
        };
        (relay, RelayTask { out: out_rx })
    }

    fn watched_apps(&self) -> HashSet<AppId> {
        lock(&self.inner.watchers).keys().cloned().collect()
    }

    fn set_known(&self, app: &AppId, watched: bool) {
        lock(&self.inner.known).insert(
            app.clone(),
            Known {
                watched,
                until: Instant::now() + RECHECK,
            },
        );
    }

    fn stop_watching(&self, app: &AppId) {
        let mut watchers = lock(&self.inner.watchers);
        if let Some(watcher) = watchers.get_mut(app) {
            watcher.consoles -= 1;
            if watcher.consoles == 0 {
                watchers.remove(app);
                self.inner.wanted.send_modify(|n| *n += 1);
                self.inner.changed.notify_one();
            }
        }
    }

    /// Sets `app`'s watch key.
    async fn announce(&self, app: &AppId) {
        let keys = &self.inner.keys;
        let mut redis = self.inner.redis.clone();
        let done = tokio::time::timeout(
            CONNECT_TIMEOUT,
            redis.pset_ex::<_, _, ()>(keys.console_watch(app), 1, WATCH_TTL.as_millis() as u64),
        )
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(message = "A console's watch could not be recorded in Redis: it shows this hub's events only.", %error)
            }
            Err(_) => {
                tracing::warn!(
                    message = "A console's watch could not be recorded in Redis in time: it shows this hub's events only."
                )
            }
        }
    }
}

/// Stops one console's watch when dropped.
struct Unwatch {
    relay: RedisRelay,
    app: AppId,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        self.relay.stop_watching(&self.app);
    }
}

impl Relay for RedisRelay {
    fn offer(&self, app: &AppId, render: &dyn Fn() -> String) {
        let inner = &self.inner;
        let now = Instant::now();
        let check = {
            let mut known = lock(&inner.known);
            let entry = known.entry(app.clone()).or_insert(Known {
                watched: false,
                until: now,
            });
            let stale = entry.until <= now;
            if stale {
                // One look-up per period, whatever the rate of events.
                entry.until = now + RECHECK;
            }
            match (entry.watched, stale) {
                (true, _) => stale,
                (false, true) => true,
                (false, false) => return,
            }
        };
        let out = Out {
            app: app.clone(),
            json: render(),
            check,
        };
        if inner.out.try_send(out).is_err() {
            crate::metrics::console_dropped();
        }
    }

    fn watch(&self, app: AppId) -> BoxFuture<'_, Watching> {
        async move {
            let relay = self;
            let events = {
                let mut watchers = lock(&relay.inner.watchers);
                let watcher = watchers.entry(app.clone()).or_insert_with(|| {
                    relay.inner.wanted.send_modify(|n| *n += 1);
                    relay.inner.changed.notify_one();
                    Watcher {
                        consoles: 0,
                        events: broadcast::channel(HEARD).0,
                    }
                });
                watcher.consoles += 1;
                watcher.events.subscribe()
            };
            let guard = Unwatch {
                relay: relay.clone(),
                app: app.clone(),
            };
            // Subscribed before anyone is told, so the first event sent is heard.
            let wanted = *relay.inner.wanted.borrow();
            let mut subscribed = relay.inner.subscribed.subscribe();
            let ready = tokio::time::timeout(
                CONNECT_TIMEOUT,
                subscribed.wait_for(|applied| *applied >= wanted),
            )
            .await
            .is_ok_and(|subscribed| subscribed.is_ok());
            if !ready {
                tracing::warn!(message = "The console relay is not subscribed in Redis: the console shows this hub's events only.");
            }
            relay.set_known(&app, true);
            relay.announce(&app).await;
            Watching {
                events: Some(events),
                guard: Some(Box::new(guard)),
            }
        }
        .boxed()
    }
}

/// Runs the relay until `shutdown`: the sender (events to Redis, watch refreshes) and the
/// listener (other hubs' events, watch notices).
pub async fn run(
    relay: RedisRelay,
    task: RelayTask,
    client: redis::Client,
    max_backoff: Duration,
    shutdown: CancellationToken,
) {
    tokio::join!(
        send(relay.clone(), task, shutdown.clone()),
        listen(relay, client, max_backoff, shutdown),
    );
}

/// Sends queued events, and refreshes the watches of this hub's consoles.
async fn send(relay: RedisRelay, mut task: RelayTask, shutdown: CancellationToken) {
    let keys = relay.inner.keys.clone();
    let mut redis = relay.inner.redis.clone();
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let result: redis::RedisResult<()> = tokio::select! {
            () = shutdown.cancelled() => return,
            out = task.out.recv() => {
                let Some(Out { app, json, check }) = out else { return };
                async {
                    if check {
                        let watched: bool = redis.exists(keys.console_watch(&app)).await?;
                        relay.set_known(&app, watched);
                        if !watched {
                            return Ok(());
                        }
                    }
                    let message = format!("{}\n{json}", relay.inner.hub);
                    redis.publish(keys.console_events(&app), message).await
                }
                .await
            }
            _ = refresh.tick() => {
                let apps = relay.watched_apps();
                if apps.is_empty() {
                    continue;
                }
                let mut pipe = redis::pipe();
                for app in &apps {
                    pipe.pset_ex(keys.console_watch(app), 1, WATCH_TTL.as_millis() as u64)
                        .ignore();
                }
                pipe.query_async(&mut redis).await
            }
        };
        match result {
            Ok(()) => failing = false,
            Err(error) => {
                crate::metrics::console_dropped();
                if !failing {
                    tracing::warn!(message = "Console events cannot reach Redis; other hubs' consoles miss this hub's events meanwhile.", %error);
                }
                failing = true;
            }
        }
    }
}

/// Hears other hubs' events of the apps this hub's consoles watch, on a connection open only
/// while one does.
async fn listen(
    relay: RedisRelay,
    client: redis::Client,
    max_backoff: Duration,
    shutdown: CancellationToken,
) {
    let keys = relay.inner.keys.clone();
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        // Nothing watched: no connection. (A change made meanwhile left a permit: not missed.)
        while relay.watched_apps().is_empty() {
            relay
                .inner
                .subscribed
                .send_replace(*relay.inner.wanted.borrow());
            tokio::select! {
                () = relay.inner.changed.notified() => {}
                () = shutdown.cancelled() => return,
            }
        }
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let (sink, stream) = client.get_async_pubsub().await?.split();
            redis::RedisResult::Ok((sink, stream))
        })
        .await;
        let (mut sink, mut stream) = match connected {
            Ok(Ok(pubsub)) => pubsub,
            outcome => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    let reason = match outcome {
                        Ok(Err(error)) => error.to_string(),
                        _ => "timed out".to_string(),
                    };
                    tracing::warn!(message = "The console relay cannot subscribe in Redis; retrying.", reason = %reason);
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff(failures, max_backoff, fastrand::f64())) => {}
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
        };
        failures = 0;
        match serve(&relay, &keys, &mut sink, &mut stream, &shutdown).await {
            Served::Idle => {}
            Served::Lost(error) => {
                tracing::warn!(message = "The console relay's pub/sub connection was lost.", reason = %error)
            }
            Served::Stopped => return,
        }
    }
}

/// Why a pub/sub connection ended.
enum Served {
    /// No console watches any more: the connection is closed.
    Idle,
    /// It failed.
    Lost(String),
    /// The hub stops.
    Stopped,
}

/// Serves one pub/sub connection until nothing is watched, it fails, or the hub stops.
async fn serve(
    relay: &RedisRelay,
    keys: &Keys,
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    shutdown: &CancellationToken,
) -> Served {
    let mut subscribed: HashSet<AppId> = HashSet::new();
    loop {
        // Subscribe to exactly the watched apps' channels, then say which change is applied.
        let wanted_change = *relay.inner.wanted.borrow();
        let wanted = relay.watched_apps();
        let add: Vec<String> = wanted
            .difference(&subscribed)
            .map(|app| keys.console_events(app))
            .collect();
        let remove: Vec<String> = subscribed
            .difference(&wanted)
            .map(|app| keys.console_events(app))
            .collect();
        if wanted.is_empty() {
            return Served::Idle;
        }
        if !add.is_empty()
            && let Err(error) = sink.subscribe(add).await
        {
            return Served::Lost(error.to_string());
        }
        if !remove.is_empty()
            && let Err(error) = sink.unsubscribe(remove).await
        {
            return Served::Lost(error.to_string());
        }
        subscribed = wanted;
        relay.inner.subscribed.send_replace(wanted_change);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Served::Stopped,
                () = relay.inner.changed.notified() => break,
                message = stream.next() => {
                    let Some(message) = message else {
                        return Served::Lost("the connection closed".into());
                    };
                    hear(relay, keys, message.get_channel_name(), message.get_payload_bytes());
                }
            }
        }
    }
}

/// One pub/sub message: another hub's event (this hub's own are skipped).
fn hear(relay: &RedisRelay, keys: &Keys, channel: &str, payload: &[u8]) {
    let Ok(payload) = std::str::from_utf8(payload) else {
        return;
    };
    let Some(app) = keys.parse_console_events(channel) else {
        return;
    };
    let Some((hub, json)) = payload.split_once('\n') else {
        return;
    };
    if hub == relay.inner.hub {
        return;
    }
    if let Some(watcher) = lock(&relay.inner.watchers).get(&app) {
        let _ = watcher.events.send(Relayed {
            hub: hub.to_string(),
            json: json.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unwatched_apps_cost_one_check_per_period_and_watched_ones_are_sent() {
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        let lazy = redis::aio::ConnectionManager::new_lazy_with_config(client, Default::default())
            .unwrap();
        let (relay, mut task) = RedisRelay::new(
            HubId(1),
            Keys::new("p"),
            TimedRedis(RedisConnection::Standalone(lazy)),
        );
        let app = AppId::new("1");
        for _ in 0..3 {
            relay.offer(&app, &|| "{}".into());
        }
        let first = task.out.try_recv().unwrap();
        assert!(first.check);
        assert!(task.out.try_recv().is_err(), "one check per period");
        relay.set_known(&app, true);
        relay.offer(&app, &|| "{\"n\":1}".into());
        let sent = task.out.try_recv().unwrap();
        assert_eq!((sent.check, sent.json.as_str()), (false, "{\"n\":1}"));
    }
}
