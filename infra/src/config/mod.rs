//! Configuration: defaults < TOML file < environment < flags, resolved into the typed configs of
//! `herald-hub` and `herald-edge`.
//!
//! Every problem is collected and reported at once, each naming its key and where the value came
//! from (`edge.hubs (from HERALD_EDGE__HUBS): "x" is not host:port`); `herald` then exits 64.
//! A bad value is never replaced by a default.
//!
//! # Layout
//! - [`raw`] — the configuration as given, every value with its origin.
//! - [`keys`] — the key table, environment names and Reverb aliases.
//! - [`env`] — the environment, behind a trait.
//! - [`resolve`] — validation and defaults into typed configs.

pub mod env;
pub mod keys;
pub mod raw;
pub mod resolve;

use std::fmt;
use std::path::{Path, PathBuf};

use env::Env;
use raw::{Origin, RawConfig, Setting};

/// A value given on the command line for a key.
#[derive(Debug, Clone)]
pub struct Override {
    /// The key's path.
    pub path: &'static str,
    /// The value.
    pub value: String,
    /// The flag it came from.
    pub flag: &'static str,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file cannot be read or parsed.
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A key's value is missing or invalid.
    Value {
        /// The key.
        key: String,
        /// Where the bad value came from (`None` when it is missing).
        origin: Option<Origin>,
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, message } => {
                write!(f, "config file {}: {message}", path.display())
            }
            Self::Value {
                key,
                origin: Some(origin),
                problem,
            } => write!(f, "{key} ({origin}): {problem}"),
            Self::Value {
                key,
                origin: None,
                problem,
            } => write!(f, "{key}: {problem}"),
        }
    }
}

/// All the problems found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for error in &self.0 {
            writeln!(f, "  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads the file (if any), then applies the environment and the flags.
pub fn load(
    file: Option<&Path>,
    env: &dyn Env,
    overrides: &[Override],
) -> Result<RawConfig, ConfigErrors> {
    let mut raw = match file {
        None => RawConfig::default(),
        Some(path) => {
            let file_error = |message: String| {
                ConfigErrors(vec![ConfigError::File {
                    path: path.to_path_buf(),
                    message,
                }])
            };
            let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
            toml::from_str(&text).map_err(|e| file_error(e.to_string()))?
        }
    };
    keys::apply_env(&mut raw, env);
    for item in overrides {
        let key = keys::key(item.path).expect("flags only name keys from the key table");
        *key.slot(&mut raw) = Some(Setting::new(
            item.value.clone(),
            Origin::Flag(item.flag.to_string()),
        ));
    }
    Ok(raw)
}
