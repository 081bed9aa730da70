//! The edge's side of the edge ↔ hub link: one QUIC connection to one hub at a time.
//!
//! The link task owns the connection, the [`Tracker`](tracker::Tracker) (last sequence per
//! channel) and the sending side of the app table. It connects to a hub, introduces itself with a
//! JWT, re-sends everything on the [`Board`] (interest resuming after the last sequence of each
//! channel, presence members, watchlists), then forwards changes and hands events to the index. When the
//! connection breaks it keeps every client socket open, waits a jittered back-off and connects
//! again — to the next hub in its list when there are several.
//!
//! # Layout
//! - [`tracker`] — exactly-once, in-order accounting of sequences.
//! - [`liveness`] — the silence deadline that declares a hub gone.
//! - [`probe`] — the port probe that tells a dead hub process at once.
//! - [`standby`] — a welcomed connection to the next hub, ready to take over.
//! - [`session`] — one connection, from handshake to its end.
//! - [`tls`] — certificate pinning or CA verification.

mod liveness;
mod probe;
mod session;
mod standby;
mod tls;
mod tracker;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use herald_shared::app::AppTable;
use herald_shared::backoff::backoff;
use herald_shared::hash::fnv1a;
use herald_shared::ids::{EdgeId, HubId};
use herald_shared::secret::Secret;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use session::LinkError;
pub use tls::{HubTrust, TlsConfigError};

use crate::index::{Board, IndexHandle};
use crate::quota::Quotas;
use crate::stats::EdgeStats;
use session::{Connector, SessionEnd};
use standby::Standby;
use tracker::Tracker;

/// A hub the edge may link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubAddress {
    /// `host:port` (a DNS name may resolve to several hubs; each address is tried).
    pub address: String,
    /// The availability zone the hub runs in, if known.
    pub zone: Option<String>,
}

/// How the edge reaches its hubs.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The hubs; see [`hub_order`] for the order they are tried in.
    pub hubs: Vec<HubAddress>,
    /// This edge's availability zone: hubs in the same zone are preferred.
    pub zone: Option<String>,
    /// The name every hub certificate must carry (with CA verification); `None`: the host of
    /// each hub's address ([`tls::server_name`]).
    pub server_name: Option<String>,
    /// How the hub certificate is trusted.
    pub trust: HubTrust,
    /// The cluster key link tokens are signed with.
    pub cluster_key: Secret,
    /// Silence after which the hub is gone and the edge fails over (see [`liveness`]); the
    /// edge's QUIC keep-alive pings go after a sixth of it.
    pub silence: Duration,
    /// QUIC's idle timeout: the backstop when the edge cannot judge the silence itself. Also
    /// bounds the QUIC handshake with a hub (at least 1 s, at most 5 s).
    pub idle_timeout: Duration,
    /// The longest wait between two connection attempts.
    pub max_backoff: Duration,
}

/// The link's state, for health and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No hub connection.
    Down,
    /// Linked to this hub.
    Up(HubId),
}

/// Why the last link attempt (or the last link) ended, for `/up` while the edge has no link.
#[derive(Debug)]
pub struct LinkFailure {
    /// The hub's address.
    pub hub: String,
    /// What went wrong (a certificate the edge cannot verify, a refused token, silence…).
    pub error: LinkError,
}

impl std::fmt::Display for LinkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.hub, self.error)
    }
}

/// What the link task needs.
pub struct LinkTask {
    /// The configuration.
    pub config: LinkConfig,
    /// This edge's id.
    pub edge_id: EdgeId,
    /// What the index wants the hub to know.
    pub board: Arc<Board>,
    /// Where events go.
    pub index: IndexHandle,
    /// The app table received from the hub.
    pub apps: watch::Sender<Option<Arc<AppTable>>>,
    /// The link state.
    pub state: watch::Sender<LinkState>,
    /// Why the link last ended or failed to start.
    pub failure: watch::Sender<Option<Arc<LinkFailure>>>,
    /// Counters.
    pub stats: Arc<EdgeStats>,
    /// Connections per app, reported to the hub; the region's totals, heard back.
    pub quotas: Arc<Quotas>,
}

impl LinkTask {
    /// Records why the link to `hub` ended, for `/up` (before it is logged, so whoever reads
    /// the log finds it in `/up` too).
    fn failed(&self, hub: &str, error: LinkError) -> Arc<LinkFailure> {
        let failure = Arc::new(LinkFailure {
            hub: hub.to_string(),
            error,
        });
        self.failure.send_replace(Some(failure.clone()));
        failure
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let crypto = match tls::client_config(&self.config.trust) {
            Ok(crypto) => Arc::new(crypto),
            Err(error) => {
                tracing::error!(message = "Link TLS configuration unusable; the edge cannot link.", %error);
                return;
            }
        };
        let mut tracker = Tracker::default();
        let order = hub_order(&self.config.hubs, self.config.zone.as_deref(), self.edge_id);
        if order.is_empty() {
            tracing::error!(message = "No hub address configured; the edge cannot link.");
            return;
        }
        let connector = Connector::new(&self, crypto);
        let mut standby = Standby::new(&connector);
        let mut position = 0;
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            let hub = order[position % order.len()].address.clone();
            // Whatever happens, the next attempt goes to the next hub: a hub that was just lost
            // or refused is tried again only after the others. That hub is the standby's.
            position += 1;
            let ready = standby.take(&hub);
            let next = &order[position % order.len()].address;
            standby.target((*next != hub).then_some(next.as_str()));
            let end = session::run(
                &connector,
                &hub,
                ready,
                &mut tracker,
                &mut standby,
                &shutdown,
            )
            .await;
            self.state.send_replace(LinkState::Down);
            crate::metrics::link(&hub, false);
            let pause = match end {
                SessionEnd::Shutdown => {
                    standby.close();
                    return;
                }
                SessionEnd::Lasted(reason) => {
                    crate::metrics::link_failover();
                    self.stats.link_failovers.fetch_add(1, Ordering::Relaxed);
                    let failure = self.failed(&hub, reason);
                    tracing::warn!(message = "Link to hub lost; linking to the next hub.", hub = %hub, reason = %failure.error);
                    failures = 0;
                    Duration::ZERO
                }
                SessionEnd::Failed(reason) => {
                    failures = failures.saturating_add(1);
                    let failure = self.failed(&hub, reason);
                    tracing::warn!(message = "Cannot link to hub.", hub = %hub, reason = %failure.error, attempt = failures);
                    // Back off only once every hub has failed in a row.
                    let rounds = failures / order.len() as u32;
                    if failures.is_multiple_of(order.len() as u32) {
                        backoff(rounds, self.config.max_backoff, fastrand::f64())
                    } else {
                        Duration::ZERO
                    }
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    standby.close();
                    return;
                }
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The order an edge tries its hubs in: hubs in its own zone first, then the others; within each
/// group by rendezvous hashing of the edge id and the hub address, so edges spread evenly over
/// hubs and each edge's order stays the same across restarts of the edge and changes little
/// when a hub is added or removed.
pub fn hub_order(hubs: &[HubAddress], zone: Option<&str>, edge: EdgeId) -> Vec<HubAddress> {
    let score = |hub: &HubAddress| {
        let mut hash = fnv1a(edge.0.to_be_bytes().into_iter().chain(hub.address.bytes()));
        // FNV alone barely separates ids that differ in a few bits: finish with splitmix64.
        hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        hash ^ (hash >> 31)
    };
    let mut ordered = hubs.to_vec();
    ordered.sort_by_key(|hub| {
        let elsewhere = zone.is_some() && hub.zone.as_deref() != zone;
        (elsewhere, std::cmp::Reverse(score(hub)))
    });
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(address: &str, zone: &str) -> HubAddress {
        HubAddress {
            address: address.into(),
            zone: Some(zone.into()),
        }
    }

    #[test]
    fn hubs_in_the_edges_zone_come_first() {
        let hubs = [hub("a:1", "east"), hub("b:1", "west"), hub("c:1", "east")];
        for edge in 0..50 {
            let order = hub_order(&hubs, Some("west"), EdgeId(edge));
            assert_eq!(order[0].address, "b:1");
            let order = hub_order(&hubs, Some("east"), EdgeId(edge));
            assert_eq!(order[2].address, "b:1");
        }
    }

    #[test]
    fn edges_spread_over_hubs_stably() {
        let hubs = [hub("a:1", "z"), hub("b:1", "z"), hub("c:1", "z")];
        let firsts: Vec<String> = (0..300)
            .map(|edge| hub_order(&hubs, None, EdgeId(edge))[0].address.clone())
            .collect();
        for address in ["a:1", "b:1", "c:1"] {
            let share = firsts.iter().filter(|a| *a == address).count();
            assert!(
                (60..=140).contains(&share),
                "{address} first for {share} of 300 edges"
            );
        }
        assert_eq!(
            hub_order(&hubs, None, EdgeId(7)),
            hub_order(&hubs, None, EdgeId(7))
        );
        // Removing a hub leaves the other hubs' relative order unchanged.
        let without_b: Vec<String> = hub_order(&hubs, None, EdgeId(7))
            .into_iter()
            .filter(|h| h.address != "b:1")
            .map(|h| h.address)
            .collect();
        let reordered: Vec<String> =
            hub_order(&[hub("a:1", "z"), hub("c:1", "z")], None, EdgeId(7))
                .into_iter()
                .map(|h| h.address)
                .collect();
        assert_eq!(without_b, reordered);
    }
}
