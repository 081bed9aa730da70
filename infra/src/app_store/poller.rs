//! Keeping a hub's app table current: the file's apps and the store's, combined, re-read every
//! `app_store.refresh_ms`.
//!
//! Only hubs read the store. Edges get the table from their hub over the link (the welcome, then
//! `HubToEdge::Apps` on every change), so database credentials never reach an edge and an edge
//! needs no route to the database; a region's edges see a change at most one refresh and one link
//! round trip after it is committed.
//!
//! A clash (a store app with the id or key of a file app) is a configuration error at start,
//! naming both; a clash that appears later skips the store row, reported like any bad row. A
//! store that cannot be read at start is an error; one that fails later leaves the last table
//! serving, and `/up`, `/stats` and `/metrics` say so.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use herald_hub::apps::{AppStoreStatus, Apps};
use herald_hub::webhooks::Endpoint;
use herald_shared::app::{App, AppTable};
use herald_shared::ids::AppId;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::row::BadRow;
use super::{AppStore, StoreError, StoreUrl, StoredRow};

/// How a hub reads its app store.
#[derive(Debug, Clone)]
pub struct StorePlan {
    /// Where.
    pub url: StoreUrl,
    /// How often.
    pub refresh: Duration,
    /// How long connecting and each read may take.
    pub timeout: Duration,
}

/// Why a hub cannot start with its app store.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store cannot be read.
    #[error("{0} (Herald needs its app store at start; check app_store.url)")]
    Store(#[from] StoreError),
    /// A store app has a file app's id or key.
    #[error("{0}")]
    Clash(String),
    /// Connecting took longer than app_store.connect_timeout_secs.
    #[error("app store {0}: no answer within app_store.connect_timeout_secs")]
    Timeout(String),
}

/// The combined table of one refresh.
struct Combined {
    table: AppTable,
    store_apps: usize,
    bad: Vec<BadRow>,
    webhooks: Vec<(AppId, Endpoint)>,
}

/// The file's apps and the store's rows as one table; store rows that are invalid or clash with
/// a file app are left out and returned.
fn combine(file: &[App], rows: &[StoredRow]) -> Combined {
    let mut apps: Vec<App> = file.to_vec();
    let mut bad = Vec::new();
    let mut webhooks = Vec::new();
    let mut store_apps = 0;
    for row in rows {
        let stored = match row.validate() {
            Ok(stored) => stored,
            Err(error) => {
                bad.push(error);
                continue;
            }
        };
        let clash = file.iter().find_map(|app| {
            if app.id == stored.app.id {
                Some(format!("id {:?}", app.id.as_str()))
            } else if app.key == stored.app.key {
                Some(format!("key {:?}", app.key.as_str()))
            } else {
                None
            }
        });
        // Unique columns keep store rows apart; a collation that compares differently from
        // Herald (case) could still let two through.
        let twin = apps
            .iter()
            .any(|app| app.id == stored.app.id || app.key == stored.app.key);
        if clash.is_none() && twin {
            bad.push(BadRow {
                id: row.id.clone(),
                problems: vec!["another row has the same id or key".to_string()],
            });
            continue;
        }
        if let Some(what) = clash {
            bad.push(BadRow {
                id: row.id.clone(),
                problems: vec![format!(
                    "its {what} is also a configured app's (config file or environment); an app lives in one place"
                )],
            });
            continue;
        }
        store_apps += 1;
        webhooks.extend(
            stored
                .webhooks
                .into_iter()
                .map(|endpoint| (stored.app.id.clone(), endpoint)),
        );
        apps.push(stored.app);
    }
    let table = AppTable::new(apps).unwrap_or_else(|error| {
        // Unreachable: every id and key was checked above.
        tracing::error!(message = "App table refused; serving the configured apps only.", %error);
        AppTable::new(file.to_vec()).unwrap_or_default()
    });
    Combined {
        table,
        store_apps,
        bad,
        webhooks,
    }
}

/// A running poller's start: the live apps, the store apps' webhook endpoints (read at start
/// only) and the task to spawn.
pub struct Started {
    /// The apps, following the store.
    pub apps: Apps,
    /// Webhook endpoints of the store's apps at start.
    pub webhooks: Vec<(AppId, Endpoint)>,
    /// The refresh loop; it ends on shutdown.
    pub poller: Poller,
}

/// Connects, reads the store once (every failure is an error here) and prepares the refresh
/// loop.
pub async fn start(plan: &StorePlan, file: Vec<App>) -> Result<Started, StartError> {
    let opened = tokio::time::timeout(plan.timeout * 2, AppStore::open(&plan.url, plan.timeout));
    let store = opened
        .await
        .map_err(|_| StartError::Timeout(plan.url.redacted().to_string()))??;
    let rows = store.rows().await?;
    let combined = combine(&file, &rows);
    let clashes: Vec<String> = combined
        .bad
        .iter()
        .filter(|bad| bad.problems.iter().any(|p| p.contains("configured app's")))
        .map(|bad| {
            format!(
                "app_store row {:?} ({}) and the configured app: {}",
                bad.id,
                plan.url.redacted(),
                bad.problems.join("; ")
            )
        })
        .collect();
    if !clashes.is_empty() {
        return Err(StartError::Clash(clashes.join("\n")));
    }
    let status = Arc::new(AppStoreStatus::default());
    status.refreshed(combined.store_apps, combined.bad.len());
    report_bad(&combined.bad, &mut BTreeSet::new());
    tracing::info!(
        message = "App store read.",
        store = %plan.url.redacted(),
        apps = combined.store_apps,
        skipped = combined.bad.len(),
    );
    let (tx, rx) = watch::channel(Arc::new(combined.table));
    Ok(Started {
        apps: Apps::live(rx, status.clone()),
        webhooks: combined.webhooks,
        poller: Poller {
            store,
            file,
            tx,
            status,
            refresh: plan.refresh,
            timeout: plan.timeout,
            reported: combined.bad.iter().map(ToString::to_string).collect(),
        },
    })
}

/// Logs bad rows not logged yet (each once, until it changes).
fn report_bad(bad: &[BadRow], reported: &mut BTreeSet<String>) {
    let now: BTreeSet<String> = bad.iter().map(ToString::to_string).collect();
    for problem in now.difference(reported) {
        tracing::warn!(message = "An app store row is not served.", problem = %problem);
    }
    *reported = now;
}

/// The refresh loop of one hub.
pub struct Poller {
    store: AppStore,
    file: Vec<App>,
    tx: watch::Sender<Arc<AppTable>>,
    status: Arc<AppStoreStatus>,
    refresh: Duration,
    timeout: Duration,
    reported: BTreeSet<String>,
}

impl Poller {
    /// Re-reads the store every refresh interval until `stop`, replacing the table when it
    /// changed.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(self.refresh);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let read = tokio::select! {
                () = stop.cancelled() => break,
                read = tokio::time::timeout(self.timeout, self.store.rows()) => read,
            };
            match read {
                Ok(Ok(rows)) => self.apply(&rows),
                Ok(Err(error)) => self.failed(error.to_string()),
                Err(_) => self.failed(format!(
                    "app store {}: no answer within app_store.connect_timeout_secs",
                    self.store.url().redacted()
                )),
            }
        }
        self.store.close().await;
    }

    fn apply(&mut self, rows: &[StoredRow]) {
        if self.status.problem().is_some() {
            tracing::info!(message = "App store reachable again.", store = %self.store.url().redacted());
        }
        let combined = combine(&self.file, rows);
        self.status
            .refreshed(combined.store_apps, combined.bad.len());
        report_bad(&combined.bad, &mut self.reported);
        let changed = {
            let current = self.tx.borrow();
            !current.apps().eq(combined.table.apps())
        };
        if changed {
            tracing::info!(
                message = "Apps changed in the app store.",
                apps = combined.store_apps
            );
            self.tx.send_replace(Arc::new(combined.table));
        }
    }

    fn failed(&mut self, problem: String) {
        let problem = self.store.url().scrub(&problem);
        if self.status.problem().is_none() {
            tracing::warn!(
                message = "App store unreachable; the apps read last keep serving.",
                apps = self.tx.borrow().apps().count(),
                %problem,
            );
        }
        self.status.failed(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::app::AppSettings;
    use herald_shared::ids::AppKey;
    use herald_shared::secret::Secret;

    fn row(id: &str, key: &str) -> StoredRow {
        StoredRow {
            id: id.into(),
            key: key.into(),
            secret: "s".into(),
            previous_secret: None,
            previous_secret_until: None,
            enabled: true,
            settings: None,
        }
    }

    #[test]
    fn store_rows_join_file_apps_unless_bad_or_clashing() {
        let file = vec![App {
            id: AppId::new("1"),
            key: AppKey::new("file-key"),
            secret: Secret::new("s"),
            previous_secret: None,
            settings: AppSettings::default(),
        }];
        let combined = combine(
            &file,
            &[
                row("2", "k2"),
                row("1", "other"),
                row("3", "file-key"),
                row("b d", "k4"),
            ],
        );
        assert_eq!(combined.store_apps, 1);
        let ids: Vec<&str> = combined.table.apps().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "2"]);
        let bad: Vec<String> = combined.bad.iter().map(ToString::to_string).collect();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(
            bad[0].contains("its id \"1\" is also a configured app's"),
            "{bad:?}"
        );
        assert!(bad[1].contains("its key \"file-key\""), "{bad:?}");
    }
}
