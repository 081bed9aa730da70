//! One module per subcommand.

pub mod bench;
pub mod config;
pub mod dev;
pub mod edge;
pub mod hub;
pub mod local_region;
pub mod probe;
pub mod redis_endpoint;
pub mod sign;

use std::path::Path;
use std::process::ExitCode;

use crate::config::Override;
use crate::config::env::ProcessEnv;
use crate::config::raw::RawConfig;
use crate::process::{EXIT_CONFIG, fail};

/// A command's configuration: its file (if any), then the process environment, then its flags.
/// A bad file or value is reported naming the key, and the command exits with [`EXIT_CONFIG`].
fn load_config(file: Option<&Path>, overrides: &[Override]) -> Result<RawConfig, ExitCode> {
    crate::config::load(file, &ProcessEnv, overrides).map_err(|errors| fail(EXIT_CONFIG, errors))
}
