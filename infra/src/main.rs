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

use clap::Parser;

use cli::Command;
use config::env::ProcessEnv;

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
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = commands::worker_threads(&server) {
                builder.worker_threads(threads.get());
            }
            let runtime = match builder.enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    return process::fail(
                        process::EXIT_OS,
                        format!("cannot start the runtime: {error}"),
                    );
                }
            };
            runtime.block_on(async move {
                match server {
                    Command::Hub(args) => commands::hub::run(args).await,
                    Command::Edge(args) => commands::edge::run(args).await,
                    Command::Dev(args) => commands::dev::run(args).await,
                    Command::Probe(args) => commands::probe::run(args).await,
                    Command::Apps(args) => commands::apps::run(args).await,
                    Command::Sign(_)
                    | Command::Config(_)
                    | Command::Cert(_)
                    | Command::RedisEndpoint(_) => {
                        unreachable!("handled above")
                    }
                }
            })
        }
    }
}
