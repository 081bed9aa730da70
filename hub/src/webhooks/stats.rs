//! Webhook counters, in `/stats` under `counters.webhooks`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

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
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
