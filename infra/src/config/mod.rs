//! Configuration: defaults < TOML file < environment < flags, resolved into the typed configs of
//! `herald-hub` and `herald-edge`.
//!
//! Every problem is collected and reported at once, each naming its key and where the value came
//! from (`edge.hubs (from HERALD_EDGE__HUBS): "x" is not host:port`); `herald` then exits 64.
//! A bad value is never replaced by a default, an unknown key in the file or an unknown
//! `HERALD_…` variable is an error, not ignored.
//!
//! # How to add a key
//! 1. Declare it once in [`keys`], in its section's block of `declare_keys!`: the doc comment is
//!    its help, then `NAME: Type = "section.name", <default>, parse::fn` and, when Laravel
//!    Reverb has a name for it, `aliases["REVERB_…"]`. `<default>` is `default("text")` (the text
//!    a user would write; parsed by the same parser, so the docs cannot lie), `computed(|| …)`
//!    for a constant defined elsewhere, `machine("words", fn)`, `required`, or
//!    `optional("what absence means")`. Write a parser in [`parse`] if none fits.
//! 2. Read it where the typed config is built ([`resolve`]): `r.get(s, &keys::NAME)` (or
//!    `r.optional`/`r.required`, chosen by the key's type).
//! 3. Regenerate the reference: `cargo run --bin herald -- config markdown > docs/configuration.md`
//!    (a test fails until you do). The TOML reader, `HERALD_SECTION__NAME`, the aliases,
//!    `herald config env` and unknown-key detection need nothing more. A flag, if the key gets
//!    one, is an [`Override`] naming the key in `cli.rs`.
//!
//! # Layout
//! - [`key`] — what a key is, and the `declare_keys!` macro.
//! - [`keys`] — every key, declared once.
//! - [`parse`] — value parsers.
//! - [`raw`] — the configuration as given, every value with its origin; the TOML reader.
//! - [`env`] — the environment, behind a trait.
//! - [`resolve`] — validation and defaults into typed configs.
//! - [`docs`] — `herald config env` and docs/configuration.md.
//! - [`webhooks`] — webhook endpoints and delivery settings.

#[macro_use]
pub mod key;
pub mod docs;
pub mod env;
pub mod keys;
pub mod parse;
pub mod raw;
pub mod resolve;
pub mod webhooks;

use std::fmt;
use std::path::{Path, PathBuf};

use env::Env;
use key::Meta;
use raw::{Origin, RawConfig, Setting};

/// A value given on the command line for a key.
#[derive(Debug, Clone)]
pub struct Override {
    /// The key.
    pub key: &'static Meta,
    /// The value.
    pub value: String,
    /// The flag it came from.
    pub flag: &'static str,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file cannot be read or parsed, or names something that is not a key.
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `HERALD_…` environment variable names no key.
    UnknownVariable {
        /// The variable.
        name: String,
        /// What is wrong (with the nearest key's variable when one is close).
        problem: String,
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
            Self::UnknownVariable { name, problem } => write!(f, "{name}: {problem}"),
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

/// Reads the file (if any), then applies the environment and the flags. Every problem with the
/// file and every `HERALD_…` variable that names no key is reported.
pub fn load(
    file: Option<&Path>,
    env: &dyn Env,
    overrides: &[Override],
) -> Result<RawConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut raw = match file {
        None => RawConfig::default(),
        Some(path) => {
            let file_error = |message: String| ConfigError::File {
                path: path.to_path_buf(),
                message,
            };
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| vec![e.to_string()])
                .and_then(|text| RawConfig::from_toml(&text));
            match parsed {
                Ok(raw) => raw,
                Err(problems) => {
                    errors.extend(problems.into_iter().map(file_error));
                    RawConfig::default()
                }
            }
        }
    };
    env::apply(&mut raw, env);
    errors.extend(
        env::unknown(env)
            .into_iter()
            .map(|(name, problem)| ConfigError::UnknownVariable { name, problem }),
    );
    for item in overrides {
        raw.settings.set(
            item.key,
            Setting::new(item.value.clone(), Origin::Flag(item.flag.to_string())),
        );
    }
    if errors.is_empty() {
        Ok(raw)
    } else {
        Err(ConfigErrors(errors))
    }
}
