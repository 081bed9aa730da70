//! Servers and one-shot runs for the bench and probe tests: `herald dev` or the floor server
//! (`herald-bench floor`) on port 0, and `herald ARGS` or `herald-bench ARGS` run to completion.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use std::path::Path;

use crate::binary::{bench_binary, herald_binary};
use crate::process::{HeraldProcess, Launch};

/// A running server, killed on drop.
pub struct Dev {
    /// The process.
    pub process: HeraldProcess,
    /// The WebSocket address, host:port.
    pub websocket: String,
    /// The HTTP API address, host:port.
    pub http: String,
}

impl Dev {
    /// Starts `herald dev` on free loopback ports.
    pub async fn start(test: &str) -> Self {
        Self::start_with_env(test, "dev", &[]).await
    }

    /// Starts `herald dev` on free loopback ports with these environment variables, as `name`.
    pub async fn start_with_env(test: &str, name: &str, env: &[(&str, &str)]) -> Self {
        let args = [
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--ready-json",
        ];
        Self::spawn(test, name, &args, env).await
    }

    /// Starts `herald-bench floor` on a free loopback port.
    pub async fn floor(test: &str) -> Self {
        let args = ["floor", "--listen", "127.0.0.1:0"];
        Self::serving(Launch::bench(test, "floor", &args).start().await)
    }

    async fn spawn(test: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::serving(HeraldProcess::start(test, name, args, env).await)
    }

    fn serving(process: HeraldProcess) -> Self {
        Self {
            websocket: process.ready_field("websocket"),
            http: process.ready_field("http"),
            process,
        }
    }
}

/// Runs `herald ARGS` to completion (bounded by `limit`) and returns its output.
pub async fn herald(args: &[&str], limit: Duration) -> std::process::Output {
    run(herald_binary(), args, limit).await
}

/// Runs `herald-bench ARGS` to completion (bounded by `limit`) and returns its output.
pub async fn bench(args: &[&str], limit: Duration) -> std::process::Output {
    run(bench_binary(), args, limit).await
}

async fn run(program: &Path, args: &[&str], limit: Duration) -> std::process::Output {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(limit, output)
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} finishes within {limit:?}", program.display()))
        .unwrap_or_else(|error| panic!("{} cannot be run: {error}", program.display()))
}
