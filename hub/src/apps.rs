//! The apps a hub serves now, and the health of the app store they partly come from.
//!
//! The table is replaced as a whole when a source changes (the process's app store poller sends
//! it); every lookup reads the latest table, and link sessions forward each new one to their
//! edges as [`herald_shared::link::HubToEdge::Apps`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use herald_shared::app::{App, AppTable};
use serde::Serialize;
use tokio::sync::watch;

/// A cheap-clone handle on the current app table.
#[derive(Debug, Clone)]
pub struct Apps {
    table: watch::Receiver<Arc<AppTable>>,
    store: Option<Arc<AppStoreStatus>>,
}

impl Apps {
    /// Apps that never change (file and environment apps only).
    pub fn fixed(table: Arc<AppTable>) -> Self {
        let (_, table) = watch::channel(table);
        Self { table, store: None }
    }

    /// Apps that follow `table`, which the app store poller whose health is `store` replaces.
    pub fn live(table: watch::Receiver<Arc<AppTable>>, store: Arc<AppStoreStatus>) -> Self {
        Self {
            table,
            store: Some(store),
        }
    }

    /// The table now.
    pub fn current(&self) -> Arc<AppTable> {
        self.table.borrow().clone()
    }

    /// The app with this id now.
    pub fn by_id(&self, id: &str) -> Option<Arc<App>> {
        self.table.borrow().by_id(id).cloned()
    }

    /// The app with this key now.
    pub fn by_key(&self, key: &str) -> Option<Arc<App>> {
        self.table.borrow().by_key(key).cloned()
    }

    /// A receiver that wakes on every new table (the current one counts as seen).
    pub fn changes(&self) -> watch::Receiver<Arc<AppTable>> {
        let mut changes = self.table.clone();
        changes.mark_unchanged();
        changes
    }

    /// The app store's health, when apps come from one.
    pub fn store(&self) -> Option<&Arc<AppStoreStatus>> {
        self.store.as_ref()
    }
}

/// What the app store poller last saw, for `/up`, `/stats` and `/metrics`. Errors are kept as
/// text the poller made safe (no password).
#[derive(Debug, Default, Serialize)]
pub struct AppStoreStatus {
    /// Whether the last refresh reached the database.
    pub reachable: AtomicBool,
    /// Refreshes that read the table.
    pub refreshes: AtomicU64,
    /// Refreshes that failed (the cached apps kept serving).
    pub failures: AtomicU64,
    /// Rows the last refresh skipped because they hold an invalid app (each logged once with
    /// the reason).
    pub bad_rows: AtomicU64,
    /// Apps the store holds (usable rows), as of the last refresh.
    pub apps: AtomicU64,
    #[serde(skip)]
    last_error: Mutex<Option<String>>,
}

impl AppStoreStatus {
    /// Records a refresh that read `apps` usable rows and skipped `bad_rows`.
    pub fn refreshed(&self, apps: usize, bad_rows: usize) {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        self.bad_rows.store(bad_rows as u64, Ordering::Relaxed);
        self.apps.store(apps as u64, Ordering::Relaxed);
        self.reachable.store(true, Ordering::Relaxed);
        *self.lock() = None;
        crate::metrics::app_store_refresh(true);
    }

    /// Records a failed refresh with its (password-free) reason.
    pub fn failed(&self, reason: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.reachable.store(false, Ordering::Relaxed);
        *self.lock() = Some(reason);
        crate::metrics::app_store_refresh(false);
    }

    /// Why the last refresh failed, while the store is unreachable.
    pub fn problem(&self) -> Option<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::app::AppSettings;
    use herald_shared::ids::{AppId, AppKey};
    use herald_shared::secret::Secret;

    fn table(key: &str) -> Arc<AppTable> {
        Arc::new(
            AppTable::new(vec![App {
                id: AppId::new("1"),
                key: AppKey::new(key),
                secret: Secret::new("s"),
                previous_secret: None,
                settings: AppSettings::default(),
            }])
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn lookups_follow_the_latest_table() {
        let (tx, rx) = watch::channel(table("a"));
        let apps = Apps::live(rx, Arc::default());
        let mut changes = apps.changes();
        assert!(apps.by_key("a").is_some());
        tx.send_replace(table("b"));
        changes.changed().await.unwrap();
        assert!(apps.by_key("a").is_none());
        assert_eq!(apps.by_id("1").unwrap().key.as_str(), "b");
    }
}
