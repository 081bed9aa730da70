//! One module per subcommand.

pub mod apps;
pub mod cert;
pub mod config;
pub mod dev;
pub mod edge;
pub mod hub;
pub mod local_region;
pub mod probe;
pub mod redis_endpoint;
pub mod sign;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use herald_edge::RunningEdge;
use tokio_util::sync::CancellationToken;

use crate::config::Override;
use crate::config::env::ProcessEnv;
use crate::config::raw::RawConfig;
use crate::config::resolve::{self, Resolver};
use crate::process::{EXIT_CONFIG, EXIT_OS, fail, shutdown_on_signal};
use crate::tls::files::{CertFiles, Reloader};

/// A command's configuration: its file (if any), then the process environment, then its flags.
/// A bad file or value is reported naming the key, and the command exits with [`EXIT_CONFIG`].
pub fn load_config(file: Option<&Path>, overrides: &[Override]) -> Result<RawConfig, ExitCode> {
    crate::config::load(file, &ProcessEnv, overrides).map_err(|errors| fail(EXIT_CONFIG, errors))
}

/// The threads a server command's runtime gets (`runtime.worker_threads`), read from its
/// configuration before the runtime exists; `None` when the value is bad — the command reports
/// that with every other problem once it runs.
pub fn worker_threads(raw: &RawConfig) -> Option<NonZeroUsize> {
    let mut r = Resolver::default();
    let threads = resolve::worker_threads(raw, &mut r);
    r.finish(threads).ok()
}

/// `value` if resolving it found no problem; otherwise every problem is reported and the command
/// exits with [`EXIT_CONFIG`].
fn resolved<T>(r: Resolver, value: T) -> Result<T, ExitCode> {
    r.finish(value).map_err(|errors| fail(EXIT_CONFIG, errors))
}

/// What `--check` ends with once the configuration resolved: says so on stdout, exit 0.
fn configuration_ok(command: &str) -> ExitCode {
    #[allow(
        clippy::print_stdout,
        reason = "saying the configuration is valid is --check's job"
    )]
    {
        println!("herald {command}: configuration ok");
    }
    ExitCode::SUCCESS
}

/// The token a long-running command stops on (see [`shutdown_on_signal`]); it exits with
/// [`EXIT_OS`] when the signal handlers cannot be installed.
fn shutdown_token() -> Result<CancellationToken, ExitCode> {
    shutdown_on_signal().map_err(|error| fail(EXIT_OS, format!("cannot handle signals: {error}")))
}

/// Waits until the edge has linked to a hub; `false` when a signal came first (the ready line
/// is then not printed).
async fn wait_linked(edge: &mut RunningEdge, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = edge.linked() => {}
        () = shutdown.cancelled() => {}
    }
    !shutdown.is_cancelled()
}

/// What a listener that cannot be bound exits with: the error, naming the key and the address,
/// and [`EXIT_OS`].
fn cannot_bind(key: &str, address: SocketAddr) -> impl FnOnce(std::io::Error) -> ExitCode + '_ {
    move |error| fail(EXIT_OS, format!("{key} {address}: {error}"))
}

/// Re-reads the served certificates on SIGHUP and when their files change, until `shutdown`;
/// await the handle after the servers stopped.
fn watch_certificates(
    sources: impl IntoIterator<Item = Option<Arc<CertFiles>>>,
    interval: std::time::Duration,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let reloader = Reloader::new(sources.into_iter().flatten().collect(), interval);
    tokio::spawn(reloader.run(shutdown.clone()))
}
