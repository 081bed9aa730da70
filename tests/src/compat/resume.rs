//! [`ResumeClients`]: many pusher-js 8 clients in one `node resume.mjs` process, each behind its
//! own port (a [`Proxy`](crate::proxy::Proxy)), with or without the resume add-on
//! (`clients/js`), counting per channel what each received.

use serde_json::{Value, json};

use super::script::{Launch, Script};
use crate::topology::Edge;

/// The clients' script.
pub struct ResumeClients {
    script: Script,
}

/// What one client received on one channel, as `resume.mjs` counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTally {
    /// Events received.
    pub count: u64,
    /// Whether each event's `n` was above the previous one's.
    pub in_order: bool,
    /// Events received more than once.
    pub duplicates: u64,
    /// Events 1..=last never received.
    pub missing: u64,
}

/// The script's report.
#[derive(Debug, Clone)]
pub struct ResumeReport {
    /// One JSON object per client (see `resume.mjs`).
    pub clients: Vec<Value>,
}

impl ResumeReport {
    /// What client `index` received on `channel`.
    pub fn tally(&self, index: usize, channel: &str) -> ChannelTally {
        let of = &self.clients[index]["channels"][channel];
        ChannelTally {
            count: of["count"].as_u64().unwrap_or(0),
            in_order: of["in_order"].as_bool().unwrap_or(false),
            duplicates: of["duplicates"].as_u64().unwrap_or(0),
            missing: of["missing"].as_u64().unwrap_or(0),
        }
    }

    /// A number every client reports (`connections`, `resumed`, `failed`, `replayed`), summed.
    pub fn total(&self, field: &str) -> u64 {
        self.clients
            .iter()
            .map(|client| client[field].as_u64().unwrap_or(0))
            .sum()
    }
}

impl ResumeClients {
    /// Starts one client per port of `ports` (on 127.0.0.1), each subscribing to `channels`,
    /// with the add-on when `resume`; `edge` only names the test app's host. Waits until every
    /// client is connected and subscribed.
    pub async fn start(
        test: &str,
        name: &str,
        edge: &Edge,
        ports: &[u16],
        channels: &[&str],
        resume: bool,
        user: &Value,
    ) -> Self {
        let launch = Launch {
            script: json!({"ports": ports, "channels": channels, "resume": resume}),
            ..Launch::default()
        };
        let (mut script, _) = Script::start(test, name, "resume.mjs", edge, user, &launch).await;
        script.expect("subscribed").await;
        Self { script }
    }

    /// Waits until every client received event `n` of each channel (the last one triggered, a
    /// fence), and returns what each received.
    pub async fn report_after(&mut self, last: &[(&str, u64)]) -> ResumeReport {
        let last: serde_json::Map<String, Value> = last
            .iter()
            .map(|(channel, n)| ((*channel).to_string(), json!(n)))
            .collect();
        self.script
            .command(json!({"op": "wait", "last": last}))
            .await;
        let report = self.script.expect("report").await;
        ResumeReport {
            clients: report["clients"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// Waits until every client had every channel confirmed `times` times (once per connection).
    pub async fn subscribed_times(&mut self, times: u64) {
        self.script
            .command(json!({"op": "until_subscribed", "times": times}))
            .await;
        self.script.expect("subscribed").await;
    }

    /// Disconnects every client and waits for the script to exit.
    pub async fn close(self) {
        self.script.close().await;
    }
}
