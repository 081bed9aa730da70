//! The environment: read behind a trait so tests pass a map instead of mutating the process,
//! applied to a [`RawConfig`] through the key table.

use std::collections::HashMap;

use super::keys::{self, KEYS, PROCESS_VARIABLES, REVERB_SERVER_HOST, REVERB_SERVER_PORT};
use super::raw::{Origin, RawConfig, Setting, unknown_env};

/// A source of environment variables.
pub trait Env {
    /// The variable's value, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    /// The names of every variable set.
    fn names(&self) -> Vec<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

/// Overrides the raw configuration with the environment: Reverb aliases first, then the
/// `HERALD_…` names, which win.
pub fn apply(raw: &mut RawConfig, env: &dyn Env) {
    for key in KEYS {
        for alias in key.aliases {
            if let Some(value) = env.var(alias) {
                raw.settings
                    .set(key, Setting::new(value, Origin::Env(alias.to_string())));
            }
        }
    }
    let host = env.var(REVERB_SERVER_HOST);
    let port = env.var(REVERB_SERVER_PORT);
    if host.is_some() || port.is_some() {
        let default = keys::EDGE_LISTEN.default_value();
        let origin = format!("{REVERB_SERVER_HOST}/{REVERB_SERVER_PORT}");
        let listen = format!(
            "{}:{}",
            host.unwrap_or_else(|| default.ip().to_string()),
            port.unwrap_or_else(|| default.port().to_string())
        );
        raw.settings.set(
            &keys::EDGE_LISTEN.meta,
            Setting::new(listen, Origin::Env(origin)),
        );
    }
    for key in KEYS {
        let name = key.env_name();
        if let Some(value) = env.var(&name) {
            raw.settings
                .set(key, Setting::new(value, Origin::Env(name)));
        }
    }
}

/// Every `HERALD_` variable that names no key, with what is wrong: a typo must not silently
/// leave a setting at its default.
pub fn unknown(env: &dyn Env) -> Vec<(String, String)> {
    let mut names: Vec<String> = env
        .names()
        .into_iter()
        .filter(|name| name.starts_with("HERALD_"))
        .filter(|name| keys::by_env_name(name).is_none())
        .filter(|name| PROCESS_VARIABLES.iter().all(|(known, _)| known != name))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let problem = unknown_env(&name);
            (name, problem)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reverb_names_set_the_app_and_herald_names_win() {
        let mut raw = RawConfig::default();
        apply(
            &mut raw,
            &env(&[
                ("REVERB_APP_ID", "42"),
                ("REVERB_APP_KEY", "reverb-key"),
                ("HERALD_APP__KEY", "herald-key"),
            ]),
        );
        assert_eq!(raw.settings.get(&keys::APP_ID.meta).unwrap().text, "42");
        let app_key = raw.settings.get(&keys::APP_KEY.meta).unwrap();
        assert_eq!(app_key.text, "herald-key");
        assert_eq!(app_key.origin, Origin::Env("HERALD_APP__KEY".into()));
    }

    #[test]
    fn reverb_server_host_and_port_set_the_websocket_address() {
        let mut raw = RawConfig::default();
        apply(&mut raw, &env(&[("REVERB_SERVER_PORT", "6001")]));
        assert_eq!(
            raw.settings.get(&keys::EDGE_LISTEN.meta).unwrap().text,
            "0.0.0.0:6001"
        );
    }

    #[test]
    fn herald_variables_that_name_no_key_are_found() {
        let found = unknown(&env(&[
            ("HERALD_EDGE__LISTEN", "x"),
            ("HERALD_LOG", "debug"),
            ("HERALD_EDGE__LISTN", "x"),
            ("HERALD_NONSENSE_AT_ALL_HERE", "x"),
            ("PATH", "/bin"),
        ]));
        assert_eq!(
            found,
            vec![
                (
                    "HERALD_EDGE__LISTN".to_string(),
                    "names no configuration key (did you mean HERALD_EDGE__LISTEN?)".to_string()
                ),
                (
                    "HERALD_NONSENSE_AT_ALL_HERE".to_string(),
                    "names no configuration key (`herald config env` lists them)".to_string()
                ),
            ]
        );
    }
}
