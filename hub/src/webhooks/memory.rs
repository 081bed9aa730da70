//! A hub alone: webhook queues in memory, delays in a [`Debounce`] owned by the emitter task.
//!
//! The emitter task turns emitted events into queued ones (after the delay, for removals) and
//! each endpoint's [`Courier`](super::delivery::Courier) task drains its [`MemoryQueue`]. A queue
//! is the one piece of state two tasks touch — the emitter pushes, the courier reads and
//! removes — so it is a `VecDeque` behind a mutex held for a push or a copy of ≤ 20 entries,
//! never across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use herald_shared::ids::AppId;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::debounce::{Arrival, Debounce};
use super::delivery::{EndpointQueue, QueueError, Queued, unix_ms};
use super::{CACHE_MISS_ONCE_PER, Emitted, Plan, Targets};
use crate::stats::HubStats;

/// One endpoint's queue in memory, bounded: a push beyond the bound drops the oldest event.
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    events: Mutex<VecDeque<Queued>>,
    changed: Notify,
    max: usize,
    next: std::sync::atomic::AtomicU64,
    stats: Arc<HubStats>,
    app: AppId,
}

impl MemoryQueue {
    /// An empty queue of at most `max` events of `app`'s endpoint.
    pub fn new(max: usize, stats: Arc<HubStats>, app: AppId) -> Self {
        Self {
            inner: Arc::new(Inner {
                events: Mutex::new(VecDeque::new()),
                changed: Notify::new(),
                max: max.max(1),
                next: Default::default(),
                stats,
                app,
            }),
        }
    }

    /// Queues an event; counts the oldest as dropped when the queue is full.
    pub fn push(&self, json: Arc<str>) {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed).to_string();
        let queued = Queued {
            id,
            at_ms: unix_ms(),
            json,
        };
        let mut events = self.inner.events.lock().expect("webhook queue lock");
        events.push_back(queued);
        let full = events.len() > self.inner.max;
        if full {
            events.pop_front();
        }
        drop(events);
        let webhooks = &self.inner.stats.webhooks;
        if full {
            webhooks.count_dropped(&self.inner.app, 1);
        } else {
            webhooks.count_queued(&self.inner.app, 1, 0);
        }
        self.inner.changed.notify_one();
    }
}

impl EndpointQueue for MemoryQueue {
    async fn head(&self, max: usize) -> Result<Vec<Queued>, QueueError> {
        let events = self.inner.events.lock().expect("webhook queue lock");
        Ok(events.iter().take(max).cloned().collect())
    }

    async fn remove(&self, ids: &[String]) -> Result<(), QueueError> {
        let mut events = self.inner.events.lock().expect("webhook queue lock");
        let before = events.len();
        events.retain(|queued| !ids.contains(&queued.id));
        let removed = before - events.len();
        drop(events);
        let webhooks = &self.inner.stats.webhooks;
        webhooks.count_queued(&self.inner.app, 0, removed);
        Ok(())
    }

    async fn changed(&self) {
        self.inner.changed.notified().await;
    }
}

/// Runs a lone hub's emitter: applies the delay and queues events to their endpoints.
pub async fn emit(
    mut events: mpsc::Receiver<Emitted>,
    targets: Arc<Targets>,
    queues: Vec<MemoryQueue>,
    mut debounce: Debounce,
    stop: CancellationToken,
) {
    let mut recent_misses: HashMap<herald_shared::channel::ChannelKey, Instant> = HashMap::new();
    let queue_all = |plan: &Plan| {
        for index in &plan.endpoints {
            queues[*index].push(plan.json.clone());
        }
    };
    loop {
        let next_due = debounce.next_due();
        let wake = async {
            match next_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake => {
                for delayed in debounce.due(Instant::now()) {
                    if let Some(plan) = targets.plan(&delayed.event()) {
                        queue_all(&plan);
                    }
                }
            }
            emitted = events.recv() => {
                let Some(emitted) = emitted else { return };
                match emitted.delay() {
                    Some(super::Delay::Leave(delayed)) => debounce.leave(delayed, Instant::now()),
                    Some(super::Delay::Arrive(undoes)) => {
                        if debounce.arrive(&undoes) == Arrival::Send
                            && let Some(plan) = targets.plan(&emitted)
                        {
                            queue_all(&plan);
                        }
                    }
                    None => {
                        if let Some(key) = emitted.once_per_channel() {
                            let now = Instant::now();
                            if recent_misses.get(&key).is_some_and(|at| now < *at + CACHE_MISS_ONCE_PER) {
                                continue;
                            }
                            if recent_misses.len() >= 10_000 {
                                recent_misses.retain(|_, at| now < *at + CACHE_MISS_ONCE_PER);
                            }
                            recent_misses.insert(key, now);
                        }
                        if let Some(plan) = targets.plan(&emitted) {
                            queue_all(&plan);
                        }
                    }
                }
            }
        }
    }
}
