//! Delivering one endpoint's queue: batches of up to [`Batching::max_events`] events, each sent
//! once the oldest has waited [`Batching::window`] (or at once when the batch is full), retried
//! per the [`RetryPolicy`], and removed from the queue only once delivered or given up on.
//!
//! One task per endpoint, and one request in flight per endpoint: a batch that is being retried
//! holds back the ones after it, so an endpoint receives each channel's events in the order they
//! were queued, and a dead endpoint costs one task and its queue — bounded, oldest dropped —
//! never a client's or the HTTP API's time.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald_shared::ids::{AppId, AppKey};
use herald_shared::secret::Secret;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::endpoint::{Endpoint, EndpointId};
use super::event;
use super::retry::RetryPolicy;
use super::sender::{SendFailure, Sender};
use crate::apps::Apps;
use crate::stats::HubStats;

/// At most one "keeps failing" warning per endpoint this often.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// The wait before reading a queue again after the queue itself failed (Redis down).
const QUEUE_RETRY: Duration = Duration::from_secs(1);
/// The longest wait for news of an empty queue before looking again.
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// How events are grouped into requests (Pusher: 250 ms or 20 events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// How long the oldest event of a batch waits for company.
    pub window: Duration,
    /// Most events in one request.
    pub max_events: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(250),
            max_events: 20,
        }
    }
}

/// An endpoint together with what signs its requests.
#[derive(Debug)]
pub struct Target {
    /// The app.
    pub app: AppId,
    /// The app key (`X-Pusher-Key`).
    pub key: AppKey,
    /// The app secret (signs bodies) when the hub started.
    pub secret: Secret,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its stable id.
    pub id: EndpointId,
    /// The apps now, whose current secret signs (a rotated one included).
    pub apps: Apps,
}

impl Target {
    /// The secret that signs now: the app's current one, or the one it had at start if the app
    /// is gone.
    pub fn current_secret(&self) -> Secret {
        self.apps
            .by_id(self.app.as_str())
            .map_or_else(|| self.secret.clone(), |app| app.secret.clone())
    }
}

/// An event waiting in an endpoint's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Its id in the queue.
    pub id: String,
    /// When it was queued, in milliseconds since 1970.
    pub at_ms: u64,
    /// The event as encoded JSON.
    pub json: Arc<str>,
}

/// Why a queue could not be read or changed (Redis unreachable).
#[derive(Debug, thiserror::Error)]
#[error("webhook queue: {0}")]
pub struct QueueError(#[from] pub redis::RedisError);

/// An endpoint's queue, in memory or in Redis.
pub trait EndpointQueue: Send + Sync + 'static {
    /// The oldest `max` events, oldest first.
    fn head(&self, max: usize) -> impl Future<Output = Result<Vec<Queued>, QueueError>> + Send;
    /// Removes delivered (or given up) events.
    fn remove(&self, ids: &[String]) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Resolves when events may have been added since the last call.
    fn changed(&self) -> impl Future<Output = ()> + Send;
}

/// Now, in milliseconds since 1970.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// What became of a batch.
enum Outcome {
    Delivered,
    GaveUp,
    Stopped,
}

/// Everything a delivery task needs besides its queue.
#[derive(Clone)]
pub struct Courier {
    /// The HTTP client.
    pub sender: Sender,
    /// Batching.
    pub batching: Batching,
    /// Retries.
    pub retry: RetryPolicy,
    /// Counters.
    pub stats: Arc<HubStats>,
}

impl Courier {
    /// Delivers `target`'s queue until `stop` is cancelled; what is not delivered by then stays
    /// queued.
    pub async fn run<Q: EndpointQueue>(
        self,
        target: Arc<Target>,
        queue: Q,
        stop: CancellationToken,
    ) {
        let mut warned: Option<Instant> = None;
        loop {
            let head = tokio::select! {
                _ = stop.cancelled() => return,
                head = queue.head(self.batching.max_events) => head,
            };
            let batch = match head {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(message = "Cannot read a webhook queue; retrying.", app_id = %target.app, %error);
                    if !pause(QUEUE_RETRY, &stop).await {
                        return;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = queue.changed() => {}
                    _ = tokio::time::sleep(IDLE_LOOK) => {}
                }
                continue;
            }
            if batch.len() < self.batching.max_events {
                let ready_at = batch[0].at_ms + self.batching.window.as_millis() as u64;
                let now = unix_ms();
                if now < ready_at {
                    // Wait for the window to close, or for more events (which may fill it).
                    let rest = Duration::from_millis(ready_at - now).min(self.batching.window);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = queue.changed() => {}
                        _ = tokio::time::sleep(rest) => {}
                    }
                    if unix_ms() < ready_at {
                        continue;
                    }
                }
            }
            let ids: Vec<String> = batch.iter().map(|queued| queued.id.clone()).collect();
            let body = Bytes::from(event::body(
                unix_ms(),
                batch.iter().map(|queued| &*queued.json),
            ));
            match self.attempt(&target, body, &mut warned, &stop).await {
                Outcome::Delivered => self.stats.webhooks.count_sent(&target.app, ids.len()),
                Outcome::GaveUp => self.stats.webhooks.count_failed(&target.app, ids.len()),
                Outcome::Stopped => return,
            }
            while let Err(error) = queue.remove(&ids).await {
                tracing::warn!(message = "Cannot remove sent webhooks from their queue; retrying.", app_id = %target.app, %error);
                if !pause(QUEUE_RETRY, &stop).await {
                    return;
                }
            }
        }
    }

    /// Sends one body until it is delivered, the retry window is over, or `stop`.
    async fn attempt(
        &self,
        target: &Target,
        body: Bytes,
        warned: &mut Option<Instant>,
        stop: &CancellationToken,
    ) -> Outcome {
        let first = Instant::now();
        let mut failures = 0;
        loop {
            let secret = target.current_secret();
            let sent = tokio::select! {
                _ = stop.cancelled() => return Outcome::Stopped,
                sent = self.sender.send(&target.endpoint, &target.key, &secret, body.clone()) => sent,
            };
            let failure = match sent {
                Ok(()) => return Outcome::Delivered,
                Err(failure) => failure,
            };
            failures += 1;
            let now = Instant::now();
            let next = self
                .retry
                .next_attempt(first, now, failures, fastrand::f64());
            self.warn(target, &failure, failures, next.is_none(), warned, now);
            let Some(next) = next else {
                return Outcome::GaveUp;
            };
            tokio::select! {
                _ = stop.cancelled() => return Outcome::Stopped,
                _ = tokio::time::sleep_until(next) => {}
            }
            self.stats.webhooks.count_retried(&target.app);
        }
    }

    /// Logs a failing endpoint at most once per [`WARN_EVERY`], and always when a batch is
    /// dropped. Neither the URL's query nor any header is logged: they may hold credentials.
    fn warn(
        &self,
        target: &Target,
        failure: &SendFailure,
        failures: u32,
        gave_up: bool,
        warned: &mut Option<Instant>,
        now: Instant,
    ) {
        if gave_up {
            tracing::warn!(
                message = "Webhook endpoint failed for the whole retry window; its batch is dropped.",
                app_id = %target.app,
                endpoint = %target.endpoint.display(),
                attempts = failures,
                error = %failure,
            );
        } else if warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            *warned = Some(now);
            tracing::warn!(
                message = "Webhook endpoint keeps failing; retrying with backoff.",
                app_id = %target.app,
                endpoint = %target.endpoint.display(),
                attempts = failures,
                error = %failure,
            );
        } else {
            tracing::debug!(message = "Webhook request failed.", app_id = %target.app, error = %failure);
        }
    }
}

/// Sleeps `duration` unless `stop` comes first; returns whether to go on.
async fn pause(duration: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}
