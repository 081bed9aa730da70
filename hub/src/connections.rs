//! Client connections per app across the region, for the apps' `max_connections`.
//!
//! Each edge reports its connections per app when they change (at most once a second); this
//! hub records its edges' reports in the region and reads every edge's ([`Store::connections`]:
//! Redis, or just this hub alone), sums them per app, and every linked edge is sent the totals
//! when they change. Edges admit a socket while their own count plus the rest of the region's
//! stays under the quota. The debug console shows the region's edges from the same reading.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_shared::ids::{AppId, EdgeId, HubId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::edge::LinkId;
use crate::region::{EdgeLoad, Store};

/// How often the region's totals are computed.
const INTERVAL: Duration = Duration::from_secs(1);

/// Per app, connections (sorted by app, for stable comparisons).
pub type Totals = Arc<Vec<(AppId, u32)>>;

/// The edges' reports and the region's totals.
#[derive(Debug)]
pub struct Connections {
    hub: HubId,
    reports: Mutex<HashMap<LinkId, EdgeLoad>>,
    totals: watch::Sender<Totals>,
    /// Every edge of the region, as last read.
    region: Mutex<Arc<Vec<EdgeLoad>>>,
}

impl Connections {
    /// No reports yet, on hub `hub`.
    pub fn new(hub: HubId) -> Arc<Self> {
        Arc::new(Self {
            hub,
            reports: Mutex::new(HashMap::new()),
            totals: watch::channel(Arc::new(Vec::new())).0,
            region: Mutex::new(Arc::new(Vec::new())),
        })
    }

    /// An edge's connections per app now.
    pub fn report(&self, link: LinkId, edge: EdgeId, counts: Vec<(AppId, u32)>) {
        self.reports
            .lock()
            .expect("no code panics holding the reports")
            .insert(
                link,
                EdgeLoad {
                    edge,
                    hub: self.hub,
                    apps: counts,
                },
            );
    }

    /// Every edge of the region with its connections, as last read (at most a second old; this
    /// hub's own edges are in it once they reported).
    pub fn region(&self) -> Arc<Vec<EdgeLoad>> {
        self.region
            .lock()
            .expect("no code panics holding the region's edges")
            .clone()
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

    fn local(&self) -> Vec<EdgeLoad> {
        let reports = self
            .reports
            .lock()
            .expect("no code panics holding the reports");
        reports.values().cloned().collect()
    }
}

/// Each app's connections over `loads`, sorted by app.
fn sums(loads: &[EdgeLoad]) -> Vec<(AppId, u32)> {
    let mut sums: HashMap<AppId, u32> = HashMap::new();
    for (app, count) in loads.iter().flat_map(|load| &load.apps) {
        *sums.entry(app.clone()).or_default() += count;
    }
    let mut sums: Vec<_> = sums.into_iter().collect();
    sums.sort();
    sums
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
            Ok(loads) => {
                failing = false;
                let totals = sums(&loads);
                *connections
                    .region
                    .lock()
                    .expect("no code panics holding the region's edges") = Arc::new(loads);
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
        let connections = Connections::new(HubId(9));
        let app = AppId::new("1");
        connections.report(LinkId(1), EdgeId(1), vec![(app.clone(), 2)]);
        connections.report(LinkId(2), EdgeId(2), vec![(app.clone(), 3)]);
        assert_eq!(sums(&connections.local()), vec![(app.clone(), 5)]);
        connections.gone(LinkId(1));
        let local = connections.local();
        assert_eq!(sums(&local), vec![(app.clone(), 3)]);
        assert_eq!((local[0].edge, local[0].hub), (EdgeId(2), HubId(9)));
        assert_eq!(local[0].of(&app), 3);
    }
}
