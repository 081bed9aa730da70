//! [`EchoClient`]: one Laravel Echo 2 client (`echo.mjs`, `broadcaster: 'pusher'` over pusher-js)
//! driven by the test.

use serde_json::{Value, json};

use super::script::{Launch, Script};
use crate::topology::Edge;

/// The Echo method that names a channel, as `echo.mjs` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Echo.channel(name)`: `name`.
    Public,
    /// `Echo.private(name)`: `private-name`.
    Private,
    /// `Echo.encryptedPrivate(name)`: `private-encrypted-name`.
    EncryptedPrivate,
    /// `Echo.join(name)`: `presence-name`.
    Presence,
}

impl Kind {
    fn op(self) -> &'static str {
        match self {
            Self::Public => "channel",
            Self::Private => "private",
            Self::EncryptedPrivate => "encryptedPrivate",
            Self::Presence => "join",
        }
    }
}

/// A Laravel Echo client in its own `node echo.mjs` process.
pub struct EchoClient {
    script: Script,
    /// `Echo.socketId()` once connected.
    pub socket_id: String,
}

impl EchoClient {
    /// Starts Echo against `edge` as `user` (`{"id", "info"}`: presence `channel_data` and
    /// sign-in `user_data`, signed by the app's custom handlers), and waits until it connected.
    pub async fn connect(test: &str, name: &str, edge: &Edge, user: &Value) -> Self {
        Self::connect_with(test, name, edge, user, &Launch::default()).await
    }

    /// Starts Echo as [`EchoClient::connect`] does, with extra pusher-js and script options
    /// (e.g. another port, and `{"resume": true}` for the resume add-on).
    pub async fn connect_with(
        test: &str,
        name: &str,
        edge: &Edge,
        user: &Value,
        launch: &Launch,
    ) -> Self {
        let (script, socket_id) = Script::start(test, name, "echo.mjs", edge, user, launch).await;
        Self { script, socket_id }
    }

    /// The next line that is not a connection state change.
    pub async fn next_report(&mut self) -> Value {
        self.script.next_report().await
    }

    /// The next line the script printed, whatever its type.
    pub async fn next_line(&mut self) -> Value {
        self.script.next_line().await
    }

    /// The next report, which must have type `kind`; returned without its `type`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        self.script.expect(kind).await
    }

    /// `Echo[kind](channel)` with `.listen(e)` for each of `listen` and `.listenForWhisper(w)` for
    /// each of `whispers`; waits for `.subscribed()` (or for presence `.here()`) and returns that
    /// report without its `type`.
    pub async fn subscribe(
        &mut self,
        kind: Kind,
        channel: &str,
        listen: &[&str],
        whispers: &[&str],
    ) -> Value {
        self.script
            .command(
                json!({"op": "subscribe", "kind": kind.op(), "channel": channel,
                            "listen": listen, "whispers": whispers}),
            )
            .await;
        let expected = if kind == Kind::Presence {
            "here"
        } else {
            "subscribed"
        };
        self.expect(expected).await
    }

    /// `Echo[kind](channel).whisper(event, data)`.
    pub async fn whisper(&mut self, kind: Kind, channel: &str, event: &str, data: Value) {
        self.script
            .command(
                json!({"op": "whisper", "kind": kind.op(), "channel": channel,
                            "event": event, "data": data}),
            )
            .await;
    }

    /// `Echo.leave(channel)` (Echo reports nothing for it).
    pub async fn leave(&mut self, channel: &str) {
        self.script
            .command(json!({"op": "leave", "channel": channel}))
            .await;
    }

    /// Closes stdin, which makes Echo disconnect and the script exit; waits for that.
    pub async fn close(self) {
        self.script.close().await;
    }
}
