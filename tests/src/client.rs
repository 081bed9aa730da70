//! A wire-level Pusher client: raw WebSocket frames as JSON, no Herald types.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any single frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket type.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the next frame was.
#[derive(Debug)]
pub enum Frame {
    /// A text frame, parsed.
    Json(Value),
    /// A close frame (code, reason), or `None` code when the stream ended without one.
    Closed(Option<u16>, String),
    /// A WebSocket pong.
    Pong,
}

/// A connected Pusher client.
pub struct PusherClient {
    /// The socket.
    pub ws: Socket,
    /// The socket id from `connection_established`.
    pub socket_id: String,
}

/// Opens a WebSocket to `url`, without reading anything.
pub async fn open(url: &str) -> Socket {
    let (ws, _) = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
        .unwrap_or_else(|e| panic!("connecting to {url} failed: {e}"));
    ws
}

/// How an upgrade went when it may be refused: the socket, or the HTTP answer instead.
pub enum Upgraded {
    /// Upgraded.
    Open(Box<Socket>),
    /// Answered with this HTTP status and `Retry-After` value.
    Refused(u16, Option<String>),
}

/// Opens a WebSocket to `ws://{address}{path}` from the local address `source` (a 127.0.0.x,
/// so several clients can come from different addresses), with extra request headers.
pub async fn open_from(
    source: std::net::IpAddr,
    address: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Upgraded {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(std::net::SocketAddr::new(source, 0))
        .unwrap_or_else(|e| panic!("binding {source}: {e}"));
    let target = address.parse().expect("host:port");
    let stream = tokio::time::timeout(FRAME_TIMEOUT, socket.connect(target))
        .await
        .unwrap_or_else(|_| panic!("connecting to {address} timed out"))
        .unwrap_or_else(|e| panic!("connecting to {address} failed: {e}"));
    let mut request = format!("ws://{address}{path}")
        .into_client_request()
        .expect("a valid URL");
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .expect("a valid header name"),
            value.parse().expect("a valid header value"),
        );
    }
    let stream = MaybeTlsStream::Plain(stream);
    let upgraded = tokio::time::timeout(
        FRAME_TIMEOUT,
        tokio_tungstenite::client_async(request, stream),
    )
    .await
    .unwrap_or_else(|_| panic!("the upgrade to {address} timed out"));
    match upgraded {
        Ok((ws, _)) => Upgraded::Open(Box::new(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            Upgraded::Refused(response.status().as_u16(), retry_after)
        }
        Err(error) => panic!("the upgrade to {address} failed: {error}"),
    }
}

/// Reads the next frame (pings are answered by tungstenite and skipped).
pub async fn next_frame(ws: &mut Socket) -> Frame {
    next_frame_within(ws, FRAME_TIMEOUT).await
}

/// Reads the next frame, which must come within `bound` (a bound the test asserts, longer or
/// shorter than [`FRAME_TIMEOUT`]).
pub async fn next_frame_within(ws: &mut Socket, bound: Duration) -> Frame {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no frame within {bound:?}"));
        match message {
            Some(Ok(Message::Text(text))) => {
                let value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("server sent invalid JSON {text:?}: {e}"));
                return Frame::Json(value);
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|CloseFrame { code, reason }| (Some(u16::from(code)), reason.to_string()))
                    .unwrap_or((None, String::new()));
                return Frame::Closed(code, reason);
            }
            Some(Ok(Message::Pong(_))) => return Frame::Pong,
            Some(Ok(Message::Ping(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Binary(bytes))) => panic!("server sent a binary frame: {bytes:?}"),
            Some(Err(_)) | None => return Frame::Closed(None, String::new()),
        }
    }
}

/// Reads the next JSON frame; panics on anything else.
pub async fn next_json(ws: &mut Socket) -> Value {
    match next_frame(ws).await {
        Frame::Json(value) => value,
        other => panic!("expected a JSON frame, got {other:?}"),
    }
}

/// Reads until the connection closes; returns the close code.
pub async fn expect_close(ws: &mut Socket) -> Option<u16> {
    loop {
        match next_frame(ws).await {
            Frame::Closed(code, _) => return code,
            Frame::Json(_) | Frame::Pong => {}
        }
    }
}

/// Sends a JSON text frame.
pub async fn send_json(ws: &mut Socket, value: Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("the socket accepts a frame");
}

impl PusherClient {
    /// Connects and waits for `pusher:connection_established`.
    pub async fn connect(url: &str) -> Self {
        let mut ws = open(url).await;
        let established = next_json(&mut ws).await;
        assert_eq!(
            established["event"], "pusher:connection_established",
            "{established}"
        );
        let data: Value =
            serde_json::from_str(established["data"].as_str().expect("data is a string"))
                .expect("connection_established data is JSON");
        let socket_id = data["socket_id"].as_str().expect("a socket_id").to_string();
        Self { ws, socket_id }
    }

    /// Sends a frame.
    pub async fn send(&mut self, value: Value) {
        send_json(&mut self.ws, value).await;
    }

    /// The next JSON frame.
    pub async fn next(&mut self) -> Value {
        next_json(&mut self.ws).await
    }

    /// The next frame that is not a server `pusher:ping`.
    pub async fn next_event(&mut self) -> Value {
        self.next_event_within(FRAME_TIMEOUT).await
    }

    /// The next frame that is not a server `pusher:ping`, which must come within `bound`.
    pub async fn next_event_within(&mut self, bound: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match next_frame_within(&mut self.ws, left).await {
                Frame::Json(frame) if frame["event"] == "pusher:ping" => {}
                Frame::Json(frame) => return frame,
                other => panic!("expected a JSON frame within {bound:?}, got {other:?}"),
            }
        }
    }

    /// Subscribes to a public channel and waits for the confirmation.
    pub async fn subscribe(&mut self, channel: &str) {
        self.send(json!({"event": "pusher:subscribe", "data": {"channel": channel}}))
            .await;
        let reply = self.next_event().await;
        assert_eq!(
            reply,
            json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
        );
    }

    /// Sends `pusher:subscribe` for a private or encrypted channel, signed with the test app's
    /// secret; returns the server's answer.
    pub async fn subscribe_private(&mut self, channel: &str) -> Value {
        let auth = crate::auth::channel(&self.socket_id, channel, None);
        self.send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
            .await;
        self.next_event().await
    }

    /// Joins a presence channel as `channel_data`; returns the server's answer.
    pub async fn subscribe_presence(&mut self, channel: &str, channel_data: &Value) -> Value {
        let data = channel_data.to_string();
        let auth = crate::auth::channel(&self.socket_id, channel, Some(&data));
        let subscribe = json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth, "channel_data": data}});
        self.send(subscribe).await;
        self.next_event().await
    }

    /// Signs in with `user_data`; returns the server's answer.
    pub async fn signin(&mut self, user_data: &Value) -> Value {
        let data = user_data.to_string();
        let auth = crate::auth::user(&self.socket_id, &data);
        self.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": data}}))
            .await;
        self.next_event().await
    }

    /// Signs in with `user_data` and checks that it succeeded.
    pub async fn sign_in(&mut self, user_data: &Value) {
        let reply = self.signin(user_data).await;
        assert_eq!(reply["event"], "pusher:signin_success", "{reply}");
        assert_eq!(reply["data"]["user_data"], user_data.to_string(), "{reply}");
    }

    /// The `events` of the next event, which must be a watchlist event.
    pub async fn next_watchlist_events(&mut self) -> Value {
        let frame = self.next_event().await;
        assert_eq!(
            frame["event"], "pusher_internal:watchlist_events",
            "{frame}"
        );
        frame["data"]["events"].clone()
    }

    /// A ping round trip: proves the server has processed everything sent before.
    pub async fn sync(&mut self) {
        self.send(json!({"event": "pusher:ping", "data": {}})).await;
        let pong = self.next_event().await;
        assert_eq!(pong["event"], "pusher:pong", "{pong}");
    }

    /// Unsubscribes (Pusher sends no reply).
    pub async fn unsubscribe(&mut self, channel: &str) {
        self.send(json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}))
            .await;
    }
}
