//! [`JsClient`]: one pusher-js 8 client (`client.mjs`) driven by the test.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::script::{Launch, Script};
use crate::topology::Edge;

/// A pusher-js client in its own `node client.mjs` process.
pub struct JsClient {
    script: Script,
    /// `pusher.connection.socket_id` once connected.
    pub socket_id: String,
}

impl JsClient {
    /// Starts pusher-js against `edge` with no user, and waits until it reports `connected`.
    /// It can still subscribe to private and encrypted channels: the app's authorizer signs them.
    pub async fn connect(test: &str, name: &str, edge: &Edge) -> Self {
        Self::connect_as(test, name, edge, &Value::Null).await
    }

    /// Starts pusher-js against `edge` as `user` (`{"id": "1", "info": {...}, "watchlist"?: [...]}`:
    /// the presence `channel_data` and the sign-in `user_data` the app's endpoints sign), and
    /// waits until it reports `connected`.
    pub async fn connect_as(test: &str, name: &str, edge: &Edge, user: &Value) -> Self {
        Self::connect_with(test, name, edge, user, &Launch::default()).await
    }

    /// Starts pusher-js against `edge` as `user` with extra options and environment (e.g.
    /// `forceTLS` and `NODE_EXTRA_CA_CERTS`), and waits until it reports `connected`.
    pub async fn connect_with(
        test: &str,
        name: &str,
        edge: &Edge,
        user: &Value,
        launch: &Launch,
    ) -> Self {
        let (script, socket_id) = Script::start(test, name, "client.mjs", edge, user, launch).await;
        Self { script, socket_id }
    }

    /// Sends one command line to the script (see `client.mjs`).
    pub async fn command(&mut self, command: Value) {
        self.script.command(command).await;
    }

    /// The next line the script printed, whatever its type.
    pub async fn next_line(&mut self) -> Value {
        self.script.next_line().await
    }

    /// The next line that is not a connection state change.
    pub async fn next_report(&mut self) -> Value {
        self.script.next_report().await
    }

    /// The next report, which must have type `kind`; returned without its `type`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        self.script.expect(kind).await
    }

    /// Subscribes and waits for `pusher:subscription_succeeded`; returns that report without its
    /// `type` (`{"channel", "data"}`, or for presence `{"channel", "count", "me", "members"}`).
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.command(json!({"op": "subscribe", "channel": channel}))
            .await;
        let subscribed = self.expect("subscribed").await;
        if subscribed["channel"] != channel {
            self.script.fail(&format!(
                "expected the subscription to {channel} to succeed: {subscribed}"
            ));
        }
        subscribed
    }

    /// Unsubscribes (pusher-js reports nothing for it).
    pub async fn unsubscribe(&mut self, channel: &str) {
        self.command(json!({"op": "unsubscribe", "channel": channel}))
            .await;
    }

    /// `pusher.signin()` with `pusher.user.bind(event)` for each of `events`; waits until
    /// sign-in succeeded and pusher-js's `#server-to-user-<id>` subscription is confirmed;
    /// returns the `user_data` pusher-js keeps.
    pub async fn signin(&mut self, events: &[&str]) -> Value {
        self.command(json!({"op": "signin", "events": events}))
            .await;
        self.expect("signed_in").await["user_data"].take()
    }

    /// The next channel event as `{"channel", "event", "data"}` (what pusher-js handed to the
    /// app, `data` parsed as pusher-js parses it); panics on any other report.
    pub async fn next_event(&mut self) -> Value {
        self.expect("event").await
    }

    /// The next `count` channel events, grouped by channel as `{"event", "data"}` in arrival
    /// order. Herald orders the events of one channel, never events of different channels
    /// (they travel on different shards and streams), so a test compares each channel's list.
    pub async fn events_per_channel(&mut self, count: usize) -> BTreeMap<String, Vec<Value>> {
        let mut per_channel = BTreeMap::new();
        for _ in 0..count {
            let event = self.next_event().await;
            file_by_channel(&mut per_channel, &event);
        }
        per_channel
    }

    /// Channel events until every channel in `fences` has delivered an event named `fence`,
    /// grouped by channel as [`events_per_channel`](Self::events_per_channel) does, fences
    /// included. A fence proves nothing else is pending on its own channel, and only there.
    pub async fn events_until_fences(&mut self, fences: &[&str]) -> BTreeMap<String, Vec<Value>> {
        let mut per_channel = BTreeMap::new();
        let mut pending: Vec<&str> = fences.to_vec();
        while !pending.is_empty() {
            let event = self.next_event().await;
            let channel = file_by_channel(&mut per_channel, &event);
            if event["event"] == "fence" {
                pending.retain(|fenced| *fenced != channel);
            }
        }
        per_channel
    }

    /// Closes stdin, which makes the client disconnect and exit; waits for that.
    pub async fn close(self) {
        self.script.close().await;
    }
}

/// Adds `event` (`{"channel", "event", "data"}`) to its channel's list; returns the channel.
fn file_by_channel(per_channel: &mut BTreeMap<String, Vec<Value>>, event: &Value) -> String {
    let channel = event["channel"]
        .as_str()
        .unwrap_or_else(|| panic!("an event names its channel: {event}"))
        .to_string();
    per_channel
        .entry(channel.clone())
        .or_default()
        .push(json!({"event": event["event"], "data": event["data"]}));
    channel
}
