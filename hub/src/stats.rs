//! The hub's counters, shared by its tasks and read by `/stats`.

use std::sync::atomic::AtomicU64;

use serde::Serialize;

use crate::webhooks::stats::WebhookStats;

/// Counters updated with relaxed atomics.
#[derive(Debug, Default, Serialize)]
pub struct HubStats {
    /// Edges currently linked and relaying through this hub (an edge's standby link to this hub
    /// is not one of them: see `standby_links`).
    pub edges: AtomicU64,
    /// Standby links: edges linked to another hub that keep a link here to fail over to at once.
    /// Such a link becomes one of `edges` with its first frame.
    pub standby_links: AtomicU64,
    /// Links refused (bad token, wrong version, malformed hello).
    pub links_refused: AtomicU64,
    /// Links closed because the edge could not keep up.
    pub lagging_edges: AtomicU64,
    /// Events published (one per channel).
    pub events_published: AtomicU64,
    /// HTTP API requests refused for their signature.
    pub api_unauthorized: AtomicU64,
    /// HTTP API requests refused with 429: their app was over its requests per second.
    pub api_rate_limited: AtomicU64,
    /// Client events relayed.
    pub client_events: AtomicU64,
    /// Watchlist occupancy changes dropped because the watchlist queue was full.
    pub watchlist_dropped: AtomicU64,
    /// Webhooks sent, retried, failed and dropped, and the queue depth.
    pub webhooks: WebhookStats,
    /// Open HTTP API connections.
    pub http_connections: AtomicU64,
    /// HTTP API connections refused because `hub.http_max_connections` were open.
    pub http_connections_refused: AtomicU64,
    /// HTTP API connections closed because no request head arrived in time.
    pub http_header_timeouts: AtomicU64,
}
