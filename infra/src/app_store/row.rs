//! One row of `herald_apps` and its validation into an [`App`].
//!
//! The row becomes the [`Settings`] of one app (its columns as `app.id`, `app.key`,
//! `app.secret`, `app.enabled`; each entry of its `settings` JSON as the `app.*` key of that
//! name) and is resolved by the very function that resolves `[[apps]]` entries, so a stored app
//! accepts exactly the settings, defaults and checks of a file app.

use std::fmt;

use herald_hub::webhooks::Endpoint;
use herald_shared::app::{App, PreviousSecret};
use herald_shared::secret::Secret;
use serde_json::{Map, Value};

use crate::config::keys::{self, APP_ENABLED, APP_ID, APP_KEY, APP_SECRET};
use crate::config::raw::{Origin, Setting, Settings};
use crate::config::resolve::{self, Resolver};
use crate::config::webhooks;

/// A row as the database holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// `id`.
    pub id: String,
    /// `app_key`.
    pub key: String,
    /// `secret`.
    pub secret: String,
    /// `previous_secret`: the secret before the last rotation.
    pub previous_secret: Option<String>,
    /// `previous_secret_until`: Unix seconds from which the previous secret is refused.
    pub previous_secret_until: Option<i64>,
    /// `enabled`.
    pub enabled: bool,
    /// `settings`: a JSON object of other `app.*` settings; `NULL` for every default.
    pub settings: Option<String>,
}

impl fmt::Debug for StoredRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRow")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("enabled", &self.enabled)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A valid row: the app, and its webhook endpoints (which stay on hubs).
#[derive(Debug, Clone)]
pub struct StoredApp {
    /// The app.
    pub app: App,
    /// Its webhook endpoints.
    pub webhooks: Vec<Endpoint>,
}

/// A row that is not a valid app, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("app store row with id {id:?} is skipped: {}", .problems.join("; "))]
pub struct BadRow {
    /// The row's id.
    pub id: String,
    /// What is wrong, each naming the setting.
    pub problems: Vec<String>,
}

/// Columns, not `settings` entries.
const COLUMN_KEYS: [&str; 4] = ["id", "key", "secret", "enabled"];

/// Whether an id or key is usable in URLs and logs: 1 to 100 of `A-Z a-z 0-9 . _ -`.
pub fn valid_name(text: &str) -> bool {
    (1..=100).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A JSON value as a setting's text: scalars as written, lists of scalars comma-separated,
/// structured keys (`webhooks`) as JSON; `None` for `null` (the default).
fn setting_text(structured: bool, value: &Value) -> Result<Option<String>, String> {
    if structured {
        return Ok(Some(value.to_string()));
    }
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        Value::Bool(flag) => Ok(Some(flag.to_string())),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Bool(_) | Value::Number(_) => Ok(item.to_string()),
                _ => Err("is a list of lists or objects; give a list of values".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| Some(items.join(","))),
        Value::Object(_) => Err("is an object; give a value".to_string()),
    }
}

/// The `settings` JSON as a map (`NULL` and `""` as none).
pub fn settings_map(settings: Option<&str>) -> Result<Map<String, Value>, String> {
    match settings.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(Map::new()),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("settings is not a JSON object".to_string()),
            Err(error) => Err(format!("settings is not JSON: {error}")),
        },
    }
}

/// Why a `settings` entry name names no storable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsKeyError {
    /// The name is one of the row's own columns (id, key, secret, enabled…).
    #[error("settings.{0}: {0} is a column of its own, not a setting")]
    Column(String),
    /// No `app.*` key has this name.
    #[error("settings.{0} is not an app setting (`herald config env` lists the app.* keys)")]
    NotAnAppKey(String),
}

/// The app key a `settings` entry name stands for.
pub fn settings_key(name: &str) -> Result<&'static crate::config::key::Meta, SettingsKeyError> {
    if COLUMN_KEYS.contains(&name) {
        return Err(SettingsKeyError::Column(name.to_string()));
    }
    keys::key(&format!("app.{name}")).ok_or_else(|| SettingsKeyError::NotAnAppKey(name.to_string()))
}

impl StoredRow {
    /// The row as the settings of one app.
    fn settings(&self) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        let mut s = Settings::scoped(format!("app_store[{:?}]", self.id));
        let origin = || Origin::Store;
        s.set(&APP_ID.meta, Setting::new(&self.id, origin()));
        s.set(&APP_KEY.meta, Setting::new(&self.key, origin()));
        s.set(&APP_SECRET.meta, Setting::new(&self.secret, origin()));
        s.set(
            &APP_ENABLED.meta,
            Setting::new(self.enabled.to_string(), origin()),
        );
        match settings_map(self.settings.as_deref()) {
            Ok(map) => {
                for (name, value) in map {
                    let key = match settings_key(&name) {
                        Ok(key) => key,
                        Err(problem) => {
                            problems.push(problem.to_string());
                            continue;
                        }
                    };
                    let structured = key.path == keys::APP_WEBHOOKS.meta.path;
                    match setting_text(structured, &value) {
                        Ok(Some(text)) => s.set(key, Setting::new(text, origin())),
                        Ok(None) => {}
                        Err(problem) => problems.push(format!("settings.{name}: {problem}")),
                    }
                }
            }
            Err(problem) => problems.push(problem),
        }
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(problems)
        }
    }

    /// The app this row holds, or every problem with it.
    pub fn validate(&self) -> Result<StoredApp, BadRow> {
        let bad = |problems| BadRow {
            id: self.id.clone(),
            problems,
        };
        let mut problems = Vec::new();
        for (column, value) in [("id", &self.id), ("app_key", &self.key)] {
            if !valid_name(value) {
                problems.push(format!(
                    "{column} {value:?} is not 1 to 100 of the characters A-Z a-z 0-9 . _ -"
                ));
            }
        }
        if self.secret.trim().is_empty() {
            problems.push("secret is empty".to_string());
        }
        let previous_secret = match (&self.previous_secret, self.previous_secret_until) {
            (Some(secret), Some(until)) if !secret.is_empty() => Some(PreviousSecret {
                secret: Secret::new(secret.as_str()),
                until: until.max(0) as u64,
            }),
            _ => None,
        };
        let settings = match self.settings() {
            Ok(settings) => settings,
            Err(mut more) => {
                problems.append(&mut more);
                return Err(bad(problems));
            }
        };
        let mut r = Resolver::default();
        let mut app = resolve::app(&settings, &mut r);
        let webhooks = webhooks::endpoints(&settings, &mut r);
        if let Err(errors) = r.finish(()) {
            problems.extend(errors.0.iter().map(ToString::to_string));
        }
        if !problems.is_empty() {
            return Err(bad(problems));
        }
        app.previous_secret = previous_secret;
        Ok(StoredApp { app, webhooks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, key: &str, settings: Option<&str>) -> StoredRow {
        StoredRow {
            id: id.into(),
            key: key.into(),
            secret: "s3cret".into(),
            previous_secret: None,
            previous_secret_until: None,
            enabled: true,
            settings: settings.map(Into::into),
        }
    }

    #[test]
    fn settings_are_the_app_keys_with_their_parsers() {
        let stored = row(
            "42",
            "key-42",
            Some(r#"{"max_connections": 7, "allowed_origins": ["a.com", "*.b.com"], "client_events": false, "webhooks": [{"url": "https://example.com/hook"}], "user_authentication_timeout_secs": null}"#),
        )
        .validate()
        .unwrap();
        let settings = &stored.app.settings;
        assert_eq!(settings.max_connections, Some(7));
        assert_eq!(settings.allowed_origins, vec!["a.com", "*.b.com"]);
        assert!(!settings.client_events);
        assert_eq!(stored.webhooks.len(), 1);
        assert!(row("1", "k", None).validate().is_ok());
    }

    #[test]
    fn bad_rows_name_every_problem() {
        let error = row(
            "4 2",
            "k/ey",
            Some(r#"{"max_connections": 0, "nope": 1, "secret": "x"}"#),
        )
        .validate()
        .unwrap_err();
        let text = error.to_string();
        for expected in [
            "id \"4 2\" is not 1 to 100",
            "app_key \"k/ey\" is not",
            "settings.nope is not an app setting",
            "settings.secret: secret is a column",
        ] {
            assert!(text.contains(expected), "{text}");
        }
        assert!(!text.contains("s3cret"), "{text}");
        let error = row("1", "k", Some(r#"{"max_connections": 0}"#))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("app_store[\"1\"].max_connections (in the app store): \"0\" is not a whole number above 0"),
            "{error}"
        );
        let error = row("1", "k", Some("[1]"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.contains("settings is not a JSON object"), "{error}");
    }
}
