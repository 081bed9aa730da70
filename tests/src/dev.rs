//! Servers and one-shot runs for the bench and probe tests: `herald dev` or the floor server
//! (`herald bench floor`) on port 0, and `herald ARGS` run to completion.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::binary::herald_binary;
use crate::process::HeraldProcess;

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

    /// Starts `herald bench floor` on a free loopback port.
    pub async fn floor(test: &str) -> Self {
        let args = ["bench", "floor", "--listen", "127.0.0.1:0"];
        Self::spawn(test, "floor", &args, &[]).await
    }

    async fn spawn(test: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let process = HeraldProcess::start(test, name, args, env).await;
        Self {
            websocket: process.ready_field("websocket"),
            http: process.ready_field("http"),
            process,
        }
    }
}

/// Runs `herald ARGS` to completion (bounded by `limit`) and returns its output.
pub async fn herald(args: &[&str], limit: Duration) -> std::process::Output {
    let output = Command::new(herald_binary())
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(limit, output)
        .await
        .unwrap_or_else(|_| panic!("herald {args:?} finishes within {limit:?}"))
        .expect("herald can be run")
}
