//! An app's webhook endpoint (`webhook_receiver.mjs`): a real HTTP server on a free port that
//! verifies every request with the npm `pusher` SDK's `webhook().isValid()` and the PyPI
//! `pusher` SDK's `validate_webhook()`, and answers as the test tells it.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use super::script::{NodeChild, Stderr, spawn_node};
use super::{LINE_TIMEOUT, python_venv};
use crate::topology::{APP_ID, APP_KEY, APP_SECRET};

/// A running webhook receiver.
pub struct WebhookReceiver {
    name: String,
    _child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Request lines read while waiting for something else.
    held: VecDeque<Value>,
    /// Every request reported so far, for failure messages.
    seen: Vec<Value>,
    stderr: Stderr,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl WebhookReceiver {
    /// Starts a receiver for the test app that answers 200.
    pub async fn start(test: &str, name: &str) -> Self {
        let python = python_venv().await;
        let options = json!({"appId": APP_ID, "key": APP_KEY, "secret": APP_SECRET,
                             "python": python});
        let NodeChild {
            mut child,
            lines,
            stderr,
        } = spawn_node(test, name, "webhook_receiver.mjs", &options, &[]).await;
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut receiver = Self {
            name: name.to_string(),
            _child: child,
            stdin,
            lines,
            held: VecDeque::new(),
            seen: Vec::new(),
            stderr,
            port: 0,
        };
        let ready = receiver.line(LINE_TIMEOUT).await;
        receiver.port = ready["port"]
            .as_u64()
            .unwrap_or_else(|| receiver.fail(&format!("expected a ready line, got {ready}")))
            as u16;
        receiver
    }

    /// The URL to configure as the endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/pusher/webhooks", self.port)
    }

    async fn line(&mut self, timeout: Duration) -> Value {
        match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => self.fail("the receiver's stdout closed"),
            Err(_) => self.fail(&format!("no line within {timeout:?}")),
        }
    }

    /// Sends a command and waits for its acknowledgement.
    async fn command(&mut self, command: Value) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("the receiver's stdin is open");
        self.stdin.flush().await.expect("stdin flushes");
        loop {
            let line = self.line(LINE_TIMEOUT).await;
            if line["type"] == "ack" {
                return;
            }
            self.held.push_back(line);
        }
    }

    /// Answers the next requests with `statuses`, then as the mode says.
    pub async fn respond(&mut self, statuses: &[u16]) {
        self.command(json!({"respond": statuses})).await;
    }

    /// `ok` (200), `fail` (500) or `hang` (never answer).
    pub async fn mode(&mut self, mode: &str) {
        self.command(json!({"mode": mode})).await;
    }

    /// The next request, which both SDKs must have accepted.
    pub async fn next_request(&mut self, timeout: Duration) -> Value {
        let line = match self.held.pop_front() {
            Some(line) => line,
            None => self.line(timeout).await,
        };
        if line["type"] != "request" {
            self.fail(&format!("expected a request, got {line}"));
        }
        self.seen.push(line.clone());
        if line["node_valid"] != true || line["python_valid"] != true {
            self.fail(&format!("an SDK rejected a webhook request: {line}"));
        }
        line
    }

    /// The next request if one comes within `timeout`.
    pub async fn maybe_request(&mut self, timeout: Duration) -> Option<Value> {
        if self.held.is_empty() {
            let line = tokio::time::timeout(timeout, self.lines.recv())
                .await
                .ok()??;
            self.held.push_back(line);
        }
        Some(self.next_request(timeout).await)
    }

    /// The events of the requests answered 200, until `done` holds for all of them so far (or
    /// `timeout` passes, which fails the test).
    pub async fn delivered_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = Vec::new();
        while !done(&events) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                self.fail(&format!("the expected webhooks did not arrive within {timeout:?}; delivered: {events:#?}"));
            }
            let request = self.next_request(left).await;
            if request["status"] == 200 {
                events.extend(request["events"].as_array().cloned().unwrap_or_default());
            }
        }
        events
    }

    /// Panics with `what`, the requests seen and the receiver's stderr.
    pub fn fail(&self, what: &str) -> ! {
        let seen: String = self.seen.iter().map(|line| format!("{line}\n")).collect();
        panic!(
            "{}: {what}\nrequests so far:\n{seen}----- its stderr -----\n{}",
            self.name,
            self.stderr.text()
        )
    }
}
