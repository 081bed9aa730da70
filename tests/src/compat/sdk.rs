//! The official server SDKs (npm `pusher`, PyPI `pusher`) running one list of operations each.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::process::Command;

use super::script::MASTER_KEY_BASE64;
use super::{SDK_TIMEOUT, Server, append_log, compat_dir, log_path, node_modules, python_venv};

/// Runs a server SDK script once; returns its stdout lines, one per operation.
async fn run_sdk(test: &str, name: &str, command: &mut Command, operations: usize) -> Vec<Value> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SDK_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish within {SDK_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("{name} could not be started: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    append_log(&log_path(test, name), &format!("{stdout}{stderr}"));
    assert!(
        output.status.success(),
        "{name} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{name} printed {line:?}, not JSON: {error}"))
        })
        .collect();
    assert_eq!(
        lines.len(),
        operations,
        "{name} printed one line per operation?\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    lines
}

/// Runs `ops` (see `trigger.mjs`) with the npm `pusher` SDK against `server`; it holds the
/// encryption master key, so it encrypts what it triggers on `private-encrypted-` channels.
pub async fn node_sdk(test: &str, server: &Server, ops: Value) -> Vec<Value> {
    let dir = node_modules().await;
    let count = ops.as_array().map_or(0, Vec::len);
    let request = json!({
        "server": {"appId": server.app.0, "key": server.app.1, "secret": server.app.2,
                   "host": server.host, "port": server.port, "useTLS": server.tls_ca.is_some(),
                   "encryptionMasterKeyBase64": MASTER_KEY_BASE64},
        "ops": ops,
    });
    let mut command = Command::new("node");
    command
        .arg(dir.join("trigger.mjs"))
        .arg(request.to_string())
        .current_dir(dir);
    if let Some(ca) = &server.tls_ca {
        command.env("NODE_EXTRA_CA_CERTS", ca);
    }
    run_sdk(test, "node-sdk", &mut command, count).await
}

/// Runs `ops` (see `trigger.py`) with the Python `pusher` SDK against `server`.
pub async fn python_sdk(test: &str, server: &Server, ops: Value) -> Vec<Value> {
    let python = python_venv().await;
    let count = ops.as_array().map_or(0, Vec::len);
    let request = json!({
        "server": {"app_id": server.app.0, "key": server.app.1, "secret": server.app.2,
                   "host": server.host, "port": server.port, "ssl": server.tls_ca.is_some()},
        "ops": ops,
    });
    let mut command = Command::new(python);
    command
        .arg(compat_dir().join("trigger.py"))
        .arg(request.to_string());
    if let Some(ca) = &server.tls_ca {
        // requests (under the SDK) trusts this bundle instead of the system's.
        command.env("REQUESTS_CA_BUNDLE", ca);
    }
    run_sdk(test, "python-sdk", &mut command, count).await
}
