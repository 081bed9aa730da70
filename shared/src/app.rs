//! Applications: credentials, settings, and the table edges and hubs look them up in.
//!
//! The hub owns the app list (from its configuration and its app store) and hands it to every
//! edge over the link whenever it changes, so edges need no app configuration of their own.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{AppId, AppKey};
use crate::limits;
use crate::secret::Secret;

/// One Pusher application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// The id used by the HTTP API (`/apps/{id}/…`).
    pub id: AppId,
    /// The key used by clients (`/app/{key}`) and in signatures.
    pub key: AppKey,
    /// The secret that signs HTTP API requests and channel authorizations.
    pub secret: Secret,
    /// The secret this one replaced, still accepted until its grace period ends.
    pub previous_secret: Option<PreviousSecret>,
    /// Per-app behaviour and limits.
    pub settings: AppSettings,
}

/// A rotated-out secret and the end of its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// The old secret.
    pub secret: Secret,
    /// Unix time (seconds) from which it is refused.
    pub until: u64,
}

impl App {
    /// Checks a signature with the app's secret and, during its grace period at `now` (Unix
    /// seconds), with the previous one: `Ok` if either checks out, the current secret's error
    /// otherwise. Only verification looks at the previous secret; Herald signs with the current
    /// one.
    pub fn verify_with<E>(&self, now: u64, check: impl Fn(&str) -> Result<(), E>) -> Result<(), E> {
        let current = check(self.secret.expose());
        match &self.previous_secret {
            Some(previous) if current.is_err() && now < previous.until => {
                check(previous.secret.expose()).or(current)
            }
            _ => current,
        }
    }
}

/// Per-app behaviour and limits. Defaults are Pusher's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSettings {
    /// A disabled app refuses connections (close 4003) and triggers (403).
    pub enabled: bool,
    /// Largest `data` of a triggered event, in bytes.
    pub max_event_data_bytes: u32,
    /// Most channels in one trigger.
    pub max_channels_per_trigger: u32,
    /// Most events in one batch trigger.
    pub max_batch_events: u32,
    /// Whether clients may send `client-*` events on private and presence channels.
    pub client_events: bool,
    /// Client events one socket may send per second.
    pub client_events_per_second: u32,
    /// "Authorized connections": a socket that has not signed in after this many seconds is
    /// closed with 4009. `None` lets unauthenticated sockets stay.
    pub user_authentication_timeout_secs: Option<u32>,
    /// Whether subscribers get `pusher_internal:subscription_count` events.
    pub subscription_count_events: bool,
    /// Whether signed-in users with a watchlist get online/offline events.
    pub watchlist_events: bool,
    /// Most users in one presence channel.
    pub max_presence_members: u32,
    /// Largest `user_info` of a presence member, in bytes.
    pub max_user_info_bytes: u32,
    /// Hosts whose pages may connect ([`crate::origin`]); `*` allows every origin.
    pub allowed_origins: Vec<String>,
    /// Refuse upgrades without an `Origin` (non-browser clients) unless `allowed_origins` is
    /// `*`.
    pub require_origin: bool,
    /// Most connections the app may hold across the region; `None`: no limit.
    pub max_connections: Option<u32>,
    /// HTTP API requests the app may make per second, per hub.
    pub api_requests_per_second: u32,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_event_data_bytes: limits::DEFAULT_MAX_EVENT_DATA_BYTES as u32,
            max_channels_per_trigger: limits::DEFAULT_MAX_CHANNELS_PER_TRIGGER as u32,
            max_batch_events: limits::DEFAULT_MAX_BATCH_EVENTS as u32,
            // Reverb accepts client events by default; Laravel apps moving over keep whispers.
            client_events: true,
            client_events_per_second: limits::DEFAULT_CLIENT_EVENTS_PER_SECOND,
            user_authentication_timeout_secs: None,
            subscription_count_events: false,
            watchlist_events: true,
            max_presence_members: limits::DEFAULT_MAX_PRESENCE_MEMBERS as u32,
            max_user_info_bytes: limits::DEFAULT_MAX_USER_INFO_BYTES as u32,
            allowed_origins: vec!["*".to_string()],
            require_origin: false,
            max_connections: None,
            api_requests_per_second: limits::DEFAULT_API_REQUESTS_PER_SECOND,
        }
    }
}

/// Why a list of apps cannot form a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppTableError {
    /// Two apps share an id.
    #[error("two apps have the id {0:?}")]
    DuplicateId(String),
    /// Two apps share a key.
    #[error("two apps have the key {0:?}")]
    DuplicateKey(String),
}

/// The apps a server knows, indexed by id and by key.
#[derive(Debug, Clone, Default)]
pub struct AppTable {
    apps: Vec<Arc<App>>,
    by_id: HashMap<AppId, Arc<App>>,
    by_key: HashMap<AppKey, Arc<App>>,
}

impl AppTable {
    /// Indexes the apps, refusing duplicate ids or keys.
    pub fn new(apps: Vec<App>) -> Result<Self, AppTableError> {
        let mut table = Self::default();
        for app in apps {
            let app = Arc::new(app);
            if table.by_id.insert(app.id.clone(), app.clone()).is_some() {
                return Err(AppTableError::DuplicateId(app.id.to_string()));
            }
            if table.by_key.insert(app.key.clone(), app.clone()).is_some() {
                return Err(AppTableError::DuplicateKey(app.key.to_string()));
            }
            table.apps.push(app);
        }
        Ok(table)
    }

    /// The app with this id.
    pub fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id)
    }

    /// The app with this key.
    pub fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key)
    }

    /// Every app, in configuration order.
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.iter().map(|app| app.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, key: &str) -> App {
        App {
            id: AppId::new(id),
            key: AppKey::new(key),
            secret: Secret::new("s"),
            previous_secret: None,
            settings: AppSettings::default(),
        }
    }

    #[test]
    fn the_previous_secret_verifies_only_during_its_grace() {
        let mut app = app("1", "k");
        let check = |secret: &str| {
            if secret == "old" {
                Ok(())
            } else {
                Err(secret.to_string())
            }
        };
        assert_eq!(app.verify_with(100, check), Err("s".to_string()));
        app.previous_secret = Some(PreviousSecret {
            secret: Secret::new("old"),
            until: 200,
        });
        assert_eq!(app.verify_with(199, check), Ok(()));
        assert_eq!(app.verify_with(200, check), Err("s".to_string()));
        let new = |secret: &str| if secret == "s" { Ok(()) } else { Err(()) };
        assert_eq!(app.verify_with(500, new), Ok(()));
    }

    #[test]
    fn looks_up_by_id_and_key() {
        let table = AppTable::new(vec![app("1", "k1"), app("2", "k2")]).unwrap();
        assert_eq!(table.by_id("2").unwrap().key.as_str(), "k2");
        assert_eq!(table.by_key("k1").unwrap().id.as_str(), "1");
        assert!(table.by_key("nope").is_none());
    }

    #[test]
    fn refuses_duplicates() {
        assert_eq!(
            AppTable::new(vec![app("1", "a"), app("1", "b")]).unwrap_err(),
            AppTableError::DuplicateId("1".into())
        );
        assert_eq!(
            AppTable::new(vec![app("1", "a"), app("2", "a")]).unwrap_err(),
            AppTableError::DuplicateKey("a".into())
        );
    }
}
