//! The hub's side of the edge ↔ hub link: a QUIC endpoint accepting edges.
//!
//! Each accepted connection is one [`session`]: the edge's `Hello` is checked (link version,
//! JWT signed with the cluster key), the hub answers `Welcome` with the app table, opens the
//! channel streams, and then applies the edge's interest and backfill requests to the registry.
//! When the connection ends — closed, timed out, lagging — one `EdgeGone` goes to every shard.
//!
//! # Layout
//! - [`session`] — one edge connection.
//! - [`tls`] — the server certificate.

pub mod session;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use crate::apps::Apps;
use herald_shared::ids::HubId;
use herald_shared::secret::Secret;
use quinn::Endpoint;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use session::LinkError;
pub use tls::{HubTls, TlsConfigError, server_config};

use crate::connections::Connections;
use crate::console::ConsoleFeed;
use crate::region::Store;
use crate::registry::Registry;
use crate::stats::HubStats;
use crate::watchlist::WatchlistSender;

/// Link settings.
#[derive(Debug, Clone, Copy)]
pub struct LinkSettings {
    /// Channel streams opened to each edge.
    pub channel_streams: u16,
    /// Frames queued per channel stream before the edge counts as lagging.
    pub stream_queue: usize,
    /// A connection silent for this long is dead; keep-alives go at a third of it.
    pub idle_timeout: Duration,
    /// How long an edge has to send its `Hello`.
    pub hello_timeout: Duration,
}

/// What every session needs.
pub struct LinkContext {
    /// This hub.
    pub hub_id: HubId,
    /// The apps handed to edges.
    pub apps: Apps,
    /// How long cache channels keep their last event (told to edges).
    pub cache_ttl: Duration,
    /// Verifies edge tokens.
    pub cluster_key: Secret,
    /// Settings.
    pub settings: LinkSettings,
    /// The channel registry.
    pub registry: Registry,
    /// Where client events are published.
    pub store: Arc<dyn Store>,
    /// Where `client_event` webhooks go.
    pub webhooks: crate::webhooks::Webhooks,
    /// Watchlists reported by edges.
    pub watchlist: WatchlistSender,
    /// Counters.
    pub stats: Arc<HubStats>,
    /// What the debug console shows.
    pub console: ConsoleFeed,
    /// Edges' connections per app, and the region's totals sent back to them.
    pub connections: Arc<Connections>,
}

/// Accepts edges until `shutdown`, serving each on `sessions`.
pub async fn accept(
    endpoint: Endpoint,
    context: Arc<LinkContext>,
    sessions: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            _ = shutdown.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { break };
        sessions.spawn(session::serve(incoming, context.clone(), shutdown.clone()));
    }
    sessions.close();
    sessions.wait().await;
    endpoint.close(herald_shared::link::CLOSE_SHUTDOWN.into(), b"hub stopping");
    endpoint.wait_idle().await;
}
