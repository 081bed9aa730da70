//! Client connections per app across the region, for the apps' `max_connections`.
//!
//! Each edge reports its connections per app when they change (at most once a second); this
//! hub sums its edges' reports, the region sums every hub's ([`Store::connections`]: Redis, or
//! just this hub alone), and every linked edge is sent the totals when they change. Edges admit
//! a socket while their own count plus the rest of the region's stays under the quota.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_shared::ids::AppId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::edge::LinkId;
use crate::region::Store;

/// How often the region's totals are computed.
const INTERVAL: Duration = Duration::from_secs(1);

/// Per app, connections (sorted by app, for stable comparisons).
pub type Totals = Arc<Vec<(AppId, u32)>>;

/// The edges' reports and the region's totals.
#[derive(Debug)]
pub struct Connections {
    reports: Mutex<HashMap<LinkId, Vec<(AppId, u32)>>>,
    totals: watch::Sender<Totals>,
}

impl Connections {
    /// No reports yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            reports: Mutex::new(HashMap::new()),
            totals: watch::channel(Arc::new(Vec::new())).0,
        })
    }

    /// An edge's connections per app now.
    pub fn report(&self, link: LinkId, counts: Vec<(AppId, u32)>) {
        self.reports
            .lock()
            .expect("no code panics holding the reports")
            .insert(link, counts);
    }

    /// The edge's link ended: its connections are no longer this hub's.
    pub fn gone(&self, link: LinkId) {
        self.reports
            .lock()
            .expect("no code panics holding the reports")
            .remove(&link);
    }

    /// The region's totals, for a link session to forward.
    pub fn totals(&self) -> watch::Receiver<Totals> {
        self.totals.subscribe()
    }

    fn local(&self) -> Vec<(AppId, u32)> {
        let mut sums: HashMap<AppId, u32> = HashMap::new();
        let reports = self
            .reports
            .lock()
            .expect("no code panics holding the reports");
        for (app, count) in reports.values().flatten() {
            *sums.entry(app.clone()).or_default() += count;
        }
        sums.into_iter().collect()
    }
}

/// Computes the region's totals every second until `shutdown`.
pub async fn run(
    connections: Arc<Connections>,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store.connections(connections.local()).await {
            Ok(mut totals) => {
                failing = false;
                totals.sort();
                connections.totals.send_if_modified(|current| {
                    let changed = **current != totals;
                    if changed {
                        *current = Arc::new(totals);
                    }
                    changed
                });
            }
            Err(error) => {
                // Edges keep the last totals meanwhile; say so once per outage.
                if !failing {
                    tracing::warn!(message = "Cannot sum the region's connections per app; quotas use the last figures.", %error);
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_sums_cover_every_linked_edge_and_forget_gone_ones() {
        let connections = Connections::new();
        let app = AppId::new("1");
        connections.report(LinkId(1), vec![(app.clone(), 2)]);
        connections.report(LinkId(2), vec![(app.clone(), 3)]);
        assert_eq!(connections.local(), vec![(app.clone(), 5)]);
        connections.gone(LinkId(1));
        assert_eq!(connections.local(), vec![(app, 3)]);
    }
}
