//! The edge's counters, shared by its tasks and read by `/stats`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters updated with relaxed atomics (they are statistics, not synchronisation).
#[derive(Debug, Default)]
pub struct EdgeStats {
    /// Open client connections.
    pub connections: AtomicU64,
    /// Client connections accepted since start.
    pub connections_total: AtomicU64,
    /// Frames fan-out delivered to client sockets: written directly or queued to their outboxes.
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
    /// Upgrades refused: the page's origin is not allowed (4009).
    pub refused_origin: AtomicU64,
    /// Upgrades refused: the edge is at `edge.max_connections` (4100).
    pub refused_edge_full: AtomicU64,
    /// Upgrades refused: the app is at its `max_connections` (4004).
    pub refused_app_quota: AtomicU64,
    /// Upgrades refused: the client address opens connections too fast (HTTP 429).
    pub refused_rate_limited: AtomicU64,
    /// Subscriptions refused: the socket holds `edge.max_channels_per_socket` channels.
    pub subscriptions_over_limit: AtomicU64,
    /// Established link sessions that were lost (silence, error, closed by the hub); after each
    /// the edge links to the next hub.
    pub link_failovers: AtomicU64,
}

/// A point-in-time copy of [`EdgeStats`], as `/stats` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeStatsSnapshot {
    /// Open client connections.
    pub connections: u64,
    /// Client connections accepted since start.
    pub connections_total: u64,
    /// Frames fan-out delivered to client sockets: written directly or queued to their outboxes.
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
    /// Upgrades refused for their origin.
    pub refused_origin: u64,
    /// Upgrades refused at the edge's cap.
    pub refused_edge_full: u64,
    /// Upgrades refused at the app's quota.
    pub refused_app_quota: u64,
    /// Upgrades refused by the per-address rate limit.
    pub refused_rate_limited: u64,
    /// Subscriptions refused at the per-socket channel limit.
    pub subscriptions_over_limit: u64,
    /// Established link sessions that were lost.
    pub link_failovers: u64,
}

impl EdgeStats {
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
            refused_origin: read(&self.refused_origin),
            refused_edge_full: read(&self.refused_edge_full),
            refused_app_quota: read(&self.refused_app_quota),
            refused_rate_limited: read(&self.refused_rate_limited),
            subscriptions_over_limit: read(&self.subscriptions_over_limit),
            link_failovers: read(&self.link_failovers),
        }
    }

    /// Counts an upgrade refused after it was read, by its close code.
    pub fn refused(&self, code: herald_shared::protocol::CloseCode) {
        use herald_shared::protocol::CloseCode;
        let counter = match code {
            CloseCode::OriginNotAllowed => &self.refused_origin,
            CloseCode::OverCapacity => &self.refused_edge_full,
            CloseCode::OverConnectionQuota => &self.refused_app_quota,
            // Counted by their metric only (`herald_edge_connections_refused_total`).
            CloseCode::AppNotFound
            | CloseCode::AppDisabled
            | CloseCode::PathNotFound
            | CloseCode::InvalidVersionFormat
            | CloseCode::UnsupportedProtocolVersion
            | CloseCode::NoProtocolVersion
            | CloseCode::Unauthorized
            | CloseCode::ReconnectNow
            | CloseCode::PongTimeout => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
