//! One client script (`client.mjs`, `echo.mjs`) as a child process: JSON-line commands on its
//! stdin, one JSON report per line on its stdout, stderr kept in its log file and printed when the
//! test fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::{LINE_TIMEOUT, log_path, node_modules, split_address};
use crate::topology::{APP_ID, APP_KEY, APP_SECRET, Edge};

/// The base64 encryption master key of the test app's auth endpoint and of the npm SDK that
/// triggers on encrypted channels. Herald never sees it (32 bytes: `herald-compat-master-key-32bytes`).
pub const MASTER_KEY_BASE64: &str = "aGVyYWxkLWNvbXBhdC1tYXN0ZXIta2V5LTMyYnl0ZXM=";

/// The npm `pusher` SDK options a client script signs with, as the app's auth endpoints would.
pub fn signer() -> Value {
    json!({"appId": APP_ID, "key": APP_KEY, "secret": APP_SECRET,
           "encryptionMasterKeyBase64": MASTER_KEY_BASE64})
}

/// The stderr of a script, kept for failure messages and written to its log file.
#[derive(Clone, Default)]
pub(super) struct Stderr(Arc<Mutex<String>>);

impl Stderr {
    pub(super) fn collect(&self, child: &mut Child, log_path: PathBuf) {
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = self.0.clone();
        tokio::spawn(async move {
            let mut file = tokio::fs::File::create(&log_path).await.ok();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(file) = file.as_mut() {
                    let _ = file.write_all(format!("{line}\n").as_bytes()).await;
                }
                let mut text = sink.lock().expect("stderr lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
    }

    pub(super) fn text(&self) -> String {
        self.0.lock().expect("stderr lock").clone()
    }
}

/// A node script started as a child process: its stdin, its stdout as parsed JSON lines, its
/// stderr collected (and written to `target/test-logs/<test>/<name>.log`).
pub(super) struct NodeChild {
    /// The process (killed when dropped).
    pub child: Child,
    /// Its stdout, one JSON value a line (an unparsable line as `{"type": "unparsable"}`).
    pub lines: mpsc::UnboundedReceiver<Value>,
    /// Its stderr.
    pub stderr: Stderr,
}

/// Starts `node <file> <options>` in `tests/compat`, installing its packages first.
pub(super) async fn spawn_node(
    test: &str,
    name: &str,
    file: &str,
    options: &Value,
    env: &[(String, String)],
) -> NodeChild {
    let dir = node_modules().await;
    let mut child = Command::new("node")
        .arg(dir.join(file))
        .arg(options.to_string())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node can be started (is it on PATH?)");
    let stderr = Stderr::default();
    stderr.collect(&mut child, log_path(test, name));
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, lines) = mpsc::unbounded_channel();
    let script = name.to_string();
    tokio::spawn(async move {
        let mut stdout = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = stdout.next_line().await {
            let value = serde_json::from_str(&line).unwrap_or_else(
                |error| json!({"type": "unparsable", "line": line, "error": error.to_string(), "script": script}),
            );
            if sender.send(value).is_err() {
                break;
            }
        }
    });
    NodeChild {
        child,
        lines,
        stderr,
    }
}

/// A running client script connected to one edge.
pub(super) struct Script {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Every line read so far, for failure messages.
    seen: Vec<Value>,
    stderr: Stderr,
}

/// How a client script starts beyond its edge and user: pusher-js options over the defaults
/// (`{"forceTLS": true, …}`), and environment variables (`NODE_EXTRA_CA_CERTS`).
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// pusher-js options merged over the script's defaults (null: none).
    pub pusher: Value,
    /// Extra environment of the node process.
    pub env: Vec<(String, String)>,
    /// Options of the script itself, merged into its options JSON (null: none), e.g.
    /// `{"resume": true}` to install the resume add-on (`clients/js`).
    pub script: Value,
    /// The app to connect to and sign for, (id, key, secret); the test app when `None`.
    pub app: Option<(String, String, String)>,
}

impl Script {
    /// Starts `node <file>` against `edge` as `user` (`{"id", "info"}`, or null for nobody), and
    /// waits for its `connected` report; returns the script and its socket id.
    pub(super) async fn start(
        test: &str,
        name: &str,
        file: &str,
        edge: &Edge,
        user: &Value,
        launch: &Launch,
    ) -> (Self, String) {
        let (host, port) = split_address(&edge.websocket);
        let mut options = json!({"key": APP_KEY, "host": host, "port": port, "signer": signer()});
        if let Some((id, key, secret)) = &launch.app {
            options["key"] = json!(key);
            options["signer"] = json!({"appId": id, "key": key, "secret": secret,
                                       "encryptionMasterKeyBase64": MASTER_KEY_BASE64});
        }
        if !user.is_null() {
            options["user"] = user.clone();
        }
        if !launch.pusher.is_null() {
            options["pusher"] = launch.pusher.clone();
        }
        if let Some(extra) = launch.script.as_object() {
            for (field, value) in extra {
                options[field] = value.clone();
            }
        }
        let NodeChild {
            mut child,
            lines,
            stderr,
        } = spawn_node(test, name, file, &options, &launch.env).await;
        let mut script = Self {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
        };
        let connected = script.next_report().await;
        if connected["type"] != "connected" {
            script.fail(&format!("expected `connected`, got {connected}"));
        }
        let socket_id = connected["socket_id"]
            .as_str()
            .unwrap_or_else(|| script.fail(&format!("connected without a socket id: {connected}")))
            .to_string();
        (script, socket_id)
    }

    /// Sends one command line to the script.
    pub(super) async fn command(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open until close()");
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap_or_else(|error| panic!("{}: the script's stdin closed: {error}", self.name));
        stdin.flush().await.expect("stdin flushes");
    }

    /// The next line the script printed, whatever its type.
    pub(super) async fn next_line(&mut self) -> Value {
        let line = match tokio::time::timeout(LINE_TIMEOUT, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => {
                let status = self.child.try_wait().ok().flatten();
                self.fail(&format!(
                    "the script's stdout closed (exit status {status:?})"
                ))
            }
            Err(_) => self.fail(&format!("no line within {LINE_TIMEOUT:?}")),
        };
        self.seen.push(line.clone());
        line
    }

    /// The next line that is not a connection state change.
    pub(super) async fn next_report(&mut self) -> Value {
        loop {
            let line = self.next_line().await;
            if line["type"] != "state" {
                return line;
            }
        }
    }

    /// The next report, which must have type `kind`; returned without its `type`.
    pub(super) async fn expect(&mut self, kind: &str) -> Value {
        let mut report = self.next_report().await;
        if report["type"] != kind {
            self.fail(&format!("expected a `{kind}` report, got {report}"));
        }
        report
            .as_object_mut()
            .expect("a report is an object")
            .remove("type");
        report
    }

    /// Closes stdin, which makes the client disconnect and exit; waits for that.
    pub(super) async fn close(mut self) {
        drop(self.stdin.take());
        match tokio::time::timeout(LINE_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(outcome) => self.fail(&format!("the script exited badly: {outcome:?}")),
            Err(_) => self.fail(&format!("the script did not exit within {LINE_TIMEOUT:?}")),
        }
    }

    /// The lines read so far, one JSON object a line.
    fn seen(&self) -> String {
        self.seen.iter().map(|line| format!("{line}\n")).collect()
    }

    /// Panics with `what` and the lines read so far (stderr follows from `Drop`).
    pub(super) fn fail(&self, what: &str) -> ! {
        panic!("{}: {what}\nlines so far:\n{}", self.name, self.seen())
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- {} lines read -----\n{}----- its stderr -----\n{}-----",
                self.name,
                self.seen(),
                self.stderr.text()
            );
        }
    }
}
