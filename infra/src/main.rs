//! `herald`: the command-line program that runs Herald's hub and edge and operates them.
//!
//! # Layout
//! - [`cli`] — the command-line grammar (clap).
//! - [`commands`] — one module per subcommand.
//! - [`config`] — files, environment and flags resolved into typed configs.
//! - [`process`] — logging, signals, the ready line, exit codes.
//! - [`net`] — listeners with a large backlog.
//! - [`tls`] — certificates: the hub link's, served ones (reloaded), `herald cert`'s.
//! - [`rlimit`] — the open-files limit.
//! - [`metrics`] — the process's Prometheus recorder.
//! - [`discovery`] — finding Redis through the ElastiCache API.
//!
//! # Invariants
//! - This crate is the only one that reads the environment, files, flags, signals, rlimits or
//!   AWS; `herald-hub` and `herald-edge` are libraries that take typed configuration.

mod app_store;
mod cli;
mod commands;
mod config;
mod discovery;
mod metrics;
mod net;
mod process;
mod rlimit;
mod tls;

use std::process::ExitCode;

use std::num::NonZeroUsize;
use std::path::Path;

use clap::Parser;

use cli::Command;
use config::Override;
use config::env::ProcessEnv;
use config::raw::RawConfig;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Links and Redis use rustls with ring; other crates may bring aws-lc too, so say which.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Sign(args) => commands::sign::run(args),
        Command::RedisEndpoint(args) => commands::redis_endpoint::run(args),
        Command::Config(args) => commands::config::run(args),
        Command::Cert(args) => commands::cert::run(args),
        server => {
            process::init_logging(&ProcessEnv);
            process::stop_with_parent(&ProcessEnv);
            match server {
                Command::Hub(args) => {
                    let (file, overrides) = (args.common.app.config.clone(), args.overrides());
                    configured(file.as_deref(), &overrides, |raw| {
                        commands::hub::run(args, raw)
                    })
                }
                Command::Edge(args) => {
                    let (file, overrides) = (args.common.app.config.clone(), args.overrides());
                    configured(file.as_deref(), &overrides, |raw| {
                        commands::edge::run(args, raw)
                    })
                }
                Command::Dev(args) => {
                    let (file, overrides) = (args.common.app.config.clone(), args.overrides());
                    configured(file.as_deref(), &overrides, |raw| {
                        commands::dev::run(args, raw)
                    })
                }
                Command::Probe(args) => serve(None, commands::probe::run(args)),
                Command::Apps(args) => serve(None, commands::apps::run(args)),
                Command::Sign(_)
                | Command::Config(_)
                | Command::Cert(_)
                | Command::RedisEndpoint(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// Loads a server command's configuration, then runs the command on it with the runtime threads
/// it sets.
fn configured<F: Future<Output = ExitCode>>(
    file: Option<&Path>,
    overrides: &[Override],
    run: impl FnOnce(RawConfig) -> F,
) -> ExitCode {
    match commands::load_config(file, overrides) {
        Ok(raw) => serve(commands::worker_threads(&raw), run(raw)),
        Err(code) => code,
    }
}

/// Runs a command on a multi-threaded runtime of `threads` workers (default: one per core).
fn serve(threads: Option<NonZeroUsize>, command: impl Future<Output = ExitCode>) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads.get());
    }
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(command),
        Err(error) => process::fail(
            process::EXIT_OS,
            format!("cannot start the runtime: {error}"),
        ),
    }
}
