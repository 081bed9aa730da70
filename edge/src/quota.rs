//! Connection quotas: the edge's own cap (`edge.max_connections`, refused with 4100) and each
//! app's `max_connections` across the region (refused with 4004).
//!
//! A socket holds a [`Slot`] from admission to its end; dropping it gives the place back. An
//! app's count is this edge's own (exact) plus the rest of the region's, as the hub last
//! reported it: the hub sums every edge's reports (sent by the link at most once a second) and
//! sends the totals back, and this edge subtracts its own part of them. The region-wide figure
//! is therefore up to about two seconds old: during a burst spread over several edges an app
//! can overshoot its quota by what the other edges admitted meanwhile, never by what this edge
//! admitted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use herald_shared::app::App;
use herald_shared::ids::AppId;
use herald_shared::protocol::CloseCode;

/// What the region said last, and what this edge had reported when it was said.
#[derive(Debug, Default)]
struct Region {
    /// Per app, the connections of every edge of the region.
    totals: HashMap<AppId, u32>,
    /// Per app, this edge's last report (its part of `totals`).
    reported: HashMap<AppId, u32>,
    /// The version of `apps` last reported.
    reported_version: u64,
}

/// The quotas of one edge.
#[derive(Debug)]
pub struct Quotas {
    max_connections: Option<u64>,
    open: AtomicU64,
    apps: Mutex<HashMap<AppId, u32>>,
    /// Bumped by every change of `apps`.
    version: AtomicU64,
    region: Mutex<Region>,
}

/// A socket's place under the quotas, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    quotas: Arc<Quotas>,
    app: AppId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut apps = self
            .quotas
            .apps
            .lock()
            .expect("no code panics holding the app counts");
        if let Some(count) = apps.get_mut(&self.app) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                apps.remove(&self.app);
            }
        }
        self.quotas.version.fetch_add(1, Ordering::Relaxed);
        drop(apps);
        self.quotas.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Quotas {
    /// Quotas with this edge's cap (`None`: none).
    pub fn new(max_connections: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            max_connections,
            open: AtomicU64::new(0),
            apps: Mutex::new(HashMap::new()),
            version: AtomicU64::new(0),
            region: Mutex::new(Region::default()),
        })
    }

    /// A place for a new socket of `app`, or the code it is refused with.
    pub fn admit(self: &Arc<Self>, app: &App) -> Result<Slot, CloseCode> {
        let reserved =
            self.open
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                    match self.max_connections {
                        Some(max) if open >= max => None,
                        _ => Some(open + 1),
                    }
                });
        if reserved.is_err() {
            return Err(CloseCode::OverCapacity);
        }
        let mut apps = self
            .apps
            .lock()
            .expect("no code panics holding the app counts");
        let local = apps.get(&app.id).copied().unwrap_or(0);
        if let Some(max) = app.settings.max_connections {
            let others = self.others(&app.id);
            if local.saturating_add(others) >= max {
                drop(apps);
                self.open.fetch_sub(1, Ordering::Relaxed);
                return Err(CloseCode::OverConnectionQuota);
            }
        }
        apps.insert(app.id.clone(), local + 1);
        self.version.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            quotas: self.clone(),
            app: app.id.clone(),
        })
    }

    /// The rest of the region's connections of `app`, as last heard.
    fn others(&self, app: &AppId) -> u32 {
        let region = self
            .region
            .lock()
            .expect("no code panics holding the region counts");
        let total = region.totals.get(app).copied().unwrap_or(0);
        let mine = region.reported.get(app).copied().unwrap_or(0);
        total.saturating_sub(mine)
    }

    /// Whether the edge is at its cap (then `/up` says so, and new sockets get 4100).
    pub fn full(&self) -> bool {
        self.max_connections
            .is_some_and(|max| self.open.load(Ordering::Relaxed) >= max)
    }

    /// This edge's connections per app, if they changed since the last report (or always, when
    /// `force`d: a new hub knows nothing yet); remembered as reported.
    pub fn report(&self, force: bool) -> Option<Vec<(AppId, u32)>> {
        let version = self.version.load(Ordering::Relaxed);
        let apps = self
            .apps
            .lock()
            .expect("no code panics holding the app counts");
        let mut region = self
            .region
            .lock()
            .expect("no code panics holding the region counts");
        if !force && region.reported_version == version {
            return None;
        }
        region.reported_version = version;
        region.reported = apps.clone();
        Some(
            apps.iter()
                .map(|(app, count)| (app.clone(), *count))
                .collect(),
        )
    }

    /// Per app: this edge's connections and the region's, as last heard (for `/stats`).
    pub fn snapshot(&self) -> Vec<(AppId, u32, u32)> {
        let apps = self
            .apps
            .lock()
            .expect("no code panics holding the app counts");
        let region = self
            .region
            .lock()
            .expect("no code panics holding the region counts");
        let mut ids: Vec<&AppId> = apps.keys().chain(region.totals.keys()).collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .map(|app| {
                let local = apps.get(app).copied().unwrap_or(0);
                let total = region.totals.get(app).copied().unwrap_or(0);
                (app.clone(), local, total)
            })
            .collect()
    }

    /// The region's totals, from the hub.
    pub fn heard(&self, totals: Vec<(AppId, u32)>) {
        let mut region = self
            .region
            .lock()
            .expect("no code panics holding the region counts");
        region.totals = totals.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use herald_shared::app::AppSettings;
    use herald_shared::ids::AppKey;
    use herald_shared::secret::Secret;

    use super::*;

    fn app(max: Option<u32>) -> App {
        App {
            id: AppId::new("1"),
            key: AppKey::new("k"),
            secret: Secret::new("s"),
            previous_secret: None,
            settings: AppSettings {
                max_connections: max,
                ..AppSettings::default()
            },
        }
    }

    #[test]
    fn the_edge_cap_refuses_with_4100_and_frees_on_drop() {
        let quotas = Quotas::new(Some(2));
        let a = quotas.admit(&app(None)).unwrap();
        let _b = quotas.admit(&app(None)).unwrap();
        assert!(quotas.full());
        assert_eq!(quotas.admit(&app(None)).unwrap_err().code(), 4100);
        drop(a);
        assert!(!quotas.full());
        assert!(quotas.admit(&app(None)).is_ok());
    }

    #[test]
    fn an_apps_quota_counts_the_rest_of_the_region() {
        let quotas = Quotas::new(None);
        let limited = app(Some(3));
        let _first = quotas.admit(&limited).unwrap();
        assert_eq!(quotas.report(false), Some(vec![(AppId::new("1"), 1)]));
        assert_eq!(quotas.report(false), None, "nothing changed");
        // The region holds 3: this edge's 1 and 2 elsewhere.
        quotas.heard(vec![(AppId::new("1"), 3)]);
        assert_eq!(quotas.admit(&limited).unwrap_err().code(), 4004);
        // Elsewhere one closed.
        quotas.heard(vec![(AppId::new("1"), 2)]);
        let _second = quotas.admit(&limited).unwrap();
        assert_eq!(quotas.admit(&limited).unwrap_err().code(), 4004);
        assert_eq!(quotas.report(true), Some(vec![(AppId::new("1"), 2)]));
    }
}
