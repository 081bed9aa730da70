//! Webhook counters, in `/stats` under `counters.webhooks` (totals) and in the Prometheus
//! metrics by app (`herald_hub_webhooks_*`, [`crate::metrics`]): every count is made once, here,
//! for both.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use herald_shared::ids::AppId;
use serde::Serialize;

use crate::metrics;

/// What this hub did with webhooks. Events are counted once per endpoint.
#[derive(Debug, Default, Serialize)]
pub struct WebhookStats {
    /// Events delivered (the endpoint answered 2xx).
    pub sent: AtomicU64,
    /// Requests sent again after a failure.
    pub retried: AtomicU64,
    /// Events dropped after the retry window ran out.
    pub failed: AtomicU64,
    /// Events dropped because a queue was full (the oldest go first), or because they could
    /// not be queued at all.
    pub dropped: AtomicU64,
    /// Events waiting to be delivered (in a region: the region's queues, as the delivering hub
    /// last saw them; other hubs report what they have not handed to Redis yet).
    pub queue_depth: AtomicU64,
    /// Whether this hub delivers the region's webhooks now (always true alone).
    pub delivering: AtomicBool,
}

impl WebhookStats {
    /// `n` events of an app were delivered.
    pub fn count_sent(&self, app: &AppId, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        metrics::webhooks(metrics::WEBHOOKS_SENT, app, n as u64);
    }

    /// A request of an app was sent again after a failure.
    pub fn count_retried(&self, app: &AppId) {
        self.retried.fetch_add(1, Ordering::Relaxed);
        metrics::webhooks(metrics::WEBHOOKS_RETRIED, app, 1);
    }

    /// `n` events of an app were given up on after the retry window.
    pub fn count_failed(&self, app: &AppId, n: usize) {
        self.failed.fetch_add(n as u64, Ordering::Relaxed);
        metrics::webhooks(metrics::WEBHOOKS_FAILED, app, n as u64);
    }

    /// `n` events of an app were dropped (a full queue).
    pub fn count_dropped(&self, app: &AppId, n: usize) {
        if n > 0 {
            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            metrics::webhooks(metrics::WEBHOOKS_DROPPED, app, n as u64);
        }
    }

    /// An app's queue in this hub's memory grew (`added`) and shrank (`removed`).
    pub fn count_queued(&self, app: &AppId, added: usize, removed: usize) {
        self.queue_depth.fetch_add(added as u64, Ordering::Relaxed);
        self.queue_depth
            .fetch_sub(removed as u64, Ordering::Relaxed);
        metrics::webhooks_pending_moved(app, added as f64 - removed as f64);
    }

    /// The events waiting in the region's queues, per app (each app once), as just counted.
    pub fn set_pending<'a>(&self, by_app: impl IntoIterator<Item = (&'a AppId, u64)>) {
        let mut total = 0;
        for (app, pending) in by_app {
            total += pending;
            metrics::webhooks_pending(app, pending);
        }
        self.queue_depth.store(total, Ordering::Relaxed);
    }
}
