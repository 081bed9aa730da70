//! The edge's counters, shared by its tasks and read by `/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use herald_shared::ids::AppId;

use serde::Serialize;

/// Counters updated with relaxed atomics (they are statistics, not synchronisation).
#[derive(Debug, Default)]
pub struct EdgeStats {
    /// Open client connections.
    pub connections: AtomicU64,
    /// Client connections accepted since start.
    pub connections_total: AtomicU64,
    /// Frames queued to client outboxes by fan-out.
    pub frames_queued: AtomicU64,
    /// Sockets closed because their outbox overflowed.
    pub slow_consumer_closes: AtomicU64,
    /// Events received from the hub.
    pub events_received: AtomicU64,
    /// Events dropped as duplicates (sequence already delivered).
    pub duplicate_events: AtomicU64,
    /// Events that arrived after a gap and were re-requested.
    pub gap_events: AtomicU64,
    /// Events history could no longer provide.
    pub events_lost: AtomicU64,
    /// Link sessions established since start.
    pub link_sessions: AtomicU64,
    /// Open client connections per app (the hub's console shows them); changed only when a
    /// connection opens or closes.
    pub per_app: Mutex<BTreeMap<AppId, u32>>,
}

/// A point-in-time copy of [`EdgeStats`], as `/stats` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeStatsSnapshot {
    /// Open client connections.
    pub connections: u64,
    /// Client connections accepted since start.
    pub connections_total: u64,
    /// Frames queued to client outboxes by fan-out.
    pub frames_queued: u64,
    /// Sockets closed because their outbox overflowed.
    pub slow_consumer_closes: u64,
    /// Events received from the hub.
    pub events_received: u64,
    /// Events dropped as duplicates.
    pub duplicate_events: u64,
    /// Events that arrived after a gap.
    pub gap_events: u64,
    /// Events history could no longer provide.
    pub events_lost: u64,
    /// Link sessions established since start.
    pub link_sessions: u64,
}

impl EdgeStats {
    /// A connection of `app` opened (`true`) or closed.
    pub fn app_connection(&self, app: &AppId, opened: bool) {
        let mut per_app = self.per_app.lock().unwrap_or_else(|p| p.into_inner());
        let count = per_app.entry(app.clone()).or_default();
        *count = if opened {
            count.saturating_add(1)
        } else {
            count.saturating_sub(1)
        };
        if *count == 0 {
            per_app.remove(app);
        }
    }

    /// Open connections per app.
    pub fn connections_per_app(&self) -> Vec<(AppId, u32)> {
        let per_app = self.per_app.lock().unwrap_or_else(|p| p.into_inner());
        per_app.iter().map(|(app, n)| (app.clone(), *n)).collect()
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> EdgeStatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        EdgeStatsSnapshot {
            connections: read(&self.connections),
            connections_total: read(&self.connections_total),
            frames_queued: read(&self.frames_queued),
            slow_consumer_closes: read(&self.slow_consumer_closes),
            events_received: read(&self.events_received),
            duplicate_events: read(&self.duplicate_events),
            gap_events: read(&self.gap_events),
            events_lost: read(&self.events_lost),
            link_sessions: read(&self.link_sessions),
        }
    }
}
