//! A minimal Pusher protocol v7 client at the wire level, independent of the edge crate: parse a
//! `ws://` base URL, open a TCP connection (optionally from a chosen source address), upgrade,
//! wait for `pusher:connection_established`, subscribe. Used by `herald-bench` and
//! `herald probe`, against Herald or any other Pusher-compatible server.
//!
//! Frames are read with borrowed fields ([`Frame`]) so the receive loop of the benchmark parses
//! each event without allocating.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// A client WebSocket.
pub type Socket = WebSocketStream<TcpStream>;

/// The `client` query parameter this program announces.
pub const CLIENT_NAME: &str = "herald-bench";

/// Why talking to a server failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The URL does not parse or lacks a host.
    #[error("{url:?} is not a usable WebSocket URL: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host name does not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// host:port as given.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The local socket cannot be bound to the source address.
    #[error("cannot bind a client socket to {ip}: {source}")]
    Bind {
        /// The source address.
        ip: IpAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TCP connection failed (refused, unreachable, out of ports…).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server answered the upgrade with a non-101 HTTP status.
    #[error("the WebSocket upgrade was refused with HTTP {status}{}", body_suffix(.body))]
    UpgradeRefused {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, if any.
        body: String,
    },
    /// The upgrade failed below HTTP (reset, bad response).
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(tungstenite::Error),
    /// Reading or writing the WebSocket failed.
    #[error("the WebSocket failed: {0}")]
    Socket(tungstenite::Error),
    /// The server sent `pusher:error`.
    #[error("the server sent pusher:error {}: {message}", code.map_or_else(|| "(no code)".to_string(), |c| c.to_string()))]
    Pusher {
        /// The Pusher error code.
        code: Option<u16>,
        /// Its message.
        message: String,
    },
    /// The server refused a subscription.
    #[error("subscribing to {channel} failed with status {status:?}: {message}")]
    Subscription {
        /// The channel.
        channel: String,
        /// The status the server gave, if any.
        status: Option<u16>,
        /// The error text (the frame's data).
        message: String,
    },
    /// The server closed the connection.
    #[error("the server closed the connection{}", close_suffix(*.code, .reason))]
    Closed {
        /// The close code, if one was sent.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// A frame that makes no sense at this point of the protocol.
    #[error("unexpected frame from the server: {0}")]
    UnexpectedFrame(String),
    /// The server did not answer in time.
    #[error("no {waiting_for} within {after:?}")]
    TimedOut {
        /// What was awaited.
        waiting_for: &'static str,
        /// How long.
        after: Duration,
    },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

fn close_suffix(code: Option<u16>, reason: &str) -> String {
    match (code, reason.is_empty()) {
        (None, _) => " without a close frame".to_string(),
        (Some(code), true) => format!(" with code {code}"),
        (Some(code), false) => format!(" with code {code} ({reason})"),
    }
}

impl WireError {
    /// A short, stable label for grouping many failures in a report.
    pub fn label(&self) -> String {
        match self {
            Self::InvalidUrl { .. } => "invalid url".into(),
            Self::Resolve { .. } => "resolve".into(),
            Self::Bind { source, .. } => format!("bind: {}", source.kind()),
            Self::Connect { source, .. } => format!("connect: {}", source.kind()),
            Self::UpgradeRefused { status, .. } => format!("upgrade: HTTP {status}"),
            Self::Handshake(_) => "handshake".into(),
            Self::Socket(_) => "socket".into(),
            Self::Pusher { code, .. } => format!("pusher:error {code:?}"),
            Self::Subscription { status, .. } => format!("subscription_error {status:?}"),
            Self::Closed { code, .. } => format!("closed {code:?}"),
            Self::UnexpectedFrame(_) => "unexpected frame".into(),
            Self::TimedOut { waiting_for, .. } => format!("timeout: {waiting_for}"),
        }
    }
}

/// A server's WebSocket URL, resolved once: a base URL (`ws://host:port[/prefix]`) or a client
/// URL as `herald dev` prints it (`ws://host:port/app/{key}?protocol=7…`), whose key is kept and
/// whose query is replaced by this program's own.
#[derive(Debug, Clone)]
pub struct WsTarget {
    /// The URL as given.
    pub url: String,
    authority: String,
    prefix: String,
    /// The app key named by a client URL's `/app/{key}` path.
    pub app_key: Option<String>,
    /// The address connections go to.
    pub addr: SocketAddr,
}

/// Why the app key cannot be chosen.
#[derive(Debug, thiserror::Error)]
#[error("--app-key {flag:?} differs from the key {in_url:?} in the URL {url:?}; give one of them")]
pub struct KeyConflict {
    /// The flag's value.
    pub flag: String,
    /// The key in the URL.
    pub in_url: String,
    /// The URL.
    pub url: String,
}

impl WsTarget {
    /// Parses and resolves a URL. Only `ws://` is supported: the benchmark and the probe talk to
    /// an edge's own port, not through a TLS terminator.
    pub async fn resolve(url: &str) -> Result<Self, WireError> {
        let invalid = |reason| WireError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("it does not parse"))?;
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => return Err(invalid("wss:// is not supported; use the ws:// port")),
            _ => return Err(invalid("the scheme must be ws://")),
        }
        let host = uri.host().ok_or_else(|| invalid("it has no host"))?;
        let path = uri.path().trim_end_matches('/');
        let (prefix, app_key) = match path.rsplit_once("/app/") {
            Some((prefix, key)) if !key.is_empty() && !key.contains('/') => {
                (prefix, Some(key.to_string()))
            }
            _ => (path, None),
        };
        if uri.query().is_some() && app_key.is_none() {
            return Err(invalid(
                "a query belongs to a client URL (/app/{key}?…); give the base URL without one",
            ));
        }
        let port = uri.port_u16().unwrap_or(80);
        let authority = match uri.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let lookup = format!(
            "{}:{port}",
            host.trim_start_matches('[').trim_end_matches(']')
        );
        let addr = tokio::net::lookup_host(&lookup)
            .await
            .map_err(|source| WireError::Resolve {
                host: lookup.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| WireError::Resolve {
                host: lookup.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            })?;
        Ok(Self {
            url: url.to_string(),
            authority,
            prefix: prefix.to_string(),
            app_key,
            addr,
        })
    }

    /// The app key to connect with: `flag` when given (it must agree with a key in the URL),
    /// else the URL's, else `default`.
    pub fn key<'a>(
        &'a self,
        flag: Option<&'a str>,
        default: &'a str,
    ) -> Result<&'a str, KeyConflict> {
        match (flag, self.app_key.as_deref()) {
            (Some(flag), Some(in_url)) if flag != in_url => Err(KeyConflict {
                flag: flag.to_string(),
                in_url: in_url.to_string(),
                url: self.url.clone(),
            }),
            (Some(flag), _) => Ok(flag),
            (None, Some(in_url)) => Ok(in_url),
            (None, None) => Ok(default),
        }
    }

    /// The full URL of the app endpoint, as Pusher clients form it.
    pub fn app_url(&self, key: &str) -> String {
        format!(
            "ws://{}{}/app/{key}?protocol=7&client={CLIENT_NAME}&version={}",
            self.authority,
            self.prefix,
            env!("CARGO_PKG_VERSION")
        )
    }
}

/// Small buffers: the benchmark holds thousands of sockets whose frames are a few hundred
/// bytes, and tungstenite's default read buffer (128 KiB each) would dominate its memory.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens a TCP connection from `source` (any local address when `None`) and upgrades it.
pub async fn connect(
    target: &WsTarget,
    key: &str,
    source: Option<IpAddr>,
) -> Result<Socket, WireError> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|source| WireError::Connect {
        addr: target.addr,
        source,
    })?;
    if let Some(ip) = source {
        // The port is chosen at connect, for the 4-tuple: bound with port 0 alone, every socket
        // would reserve a port of its own on that address, and each bind would search the ports
        // still held in TIME_WAIT by earlier runs (seconds of system time per 10k sockets). Only
        // a speed-up: where the option is refused, the bind reserves a port as before.
        #[cfg(target_os = "linux")]
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::IpBindAddressNoPort,
            &true,
        );
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|source| WireError::Bind { ip, source })?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .map_err(|source| WireError::Connect {
            addr: target.addr,
            source,
        })?;
    let _ = stream.set_nodelay(true);
    match tokio_tungstenite::client_async_with_config(
        target.app_url(key),
        stream,
        Some(client_config()),
    )
    .await
    {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|body| {
                    String::from_utf8_lossy(body)
                        .trim()
                        .chars()
                        .take(200)
                        .collect()
                })
                .unwrap_or_default();
            Err(WireError::UpgradeRefused {
                status: response.status().as_u16(),
                body,
            })
        }
        Err(error) => Err(WireError::Handshake(error)),
    }
}

/// A server frame with borrowed fields.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    /// The event name.
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    /// The channel, on channel frames.
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    /// The data, still as JSON text (a string for events; an object for errors).
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

impl<'a> Frame<'a> {
    /// Parses a text frame.
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The data as a string, when it is one (events carry their data as a JSON string).
    pub fn data_str(&self) -> Option<Cow<'a, str>> {
        // Borrowed when the string has no escapes (the benchmark's own data never has).
        let raw = self.data?.get();
        match serde_json::from_str::<&'a str>(raw) {
            Ok(text) => Some(Cow::Borrowed(text)),
            Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
        }
    }

    /// The data as a JSON object, whether sent as an object or as a string holding one (the
    /// protocol does both, depending on the event and the server).
    pub fn data_object(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let value: serde_json::Value = serde_json::from_str(self.data?.get()).ok()?;
        match value {
            serde_json::Value::Object(map) => Some(map),
            serde_json::Value::String(text) => serde_json::from_str(&text).ok(),
            _ => None,
        }
    }

    fn to_error(&self) -> WireError {
        let data = self.data_object().unwrap_or_default();
        WireError::Pusher {
            code: data
                .get("code")
                .and_then(serde_json::Value::as_u64)
                .and_then(|code| u16::try_from(code).ok()),
            message: data
                .get("message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// What `pusher:connection_established` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// The socket id.
    pub socket_id: String,
}

fn truncated(text: &str) -> String {
    text.chars().take(200).collect()
}

/// The next text frame, skipping control frames; a close becomes [`WireError::Closed`].
async fn next_text(ws: &mut Socket) -> Result<tungstenite::Utf8Bytes, WireError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(frame))) => {
                return Err(WireError::Closed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                });
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(WireError::UnexpectedFrame("a binary frame".into()));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(WireError::Socket(error)),
            None => {
                return Err(WireError::Closed {
                    code: None,
                    reason: String::new(),
                });
            }
        }
    }
}

/// Waits for `pusher:connection_established` (the caller bounds the wait).
pub async fn establish(ws: &mut Socket) -> Result<Established, WireError> {
    let text = next_text(ws).await?;
    let frame = Frame::parse(&text).ok_or_else(|| WireError::UnexpectedFrame(truncated(&text)))?;
    match frame.event.as_ref() {
        "pusher:connection_established" => {
            let data = frame
                .data_object()
                .ok_or_else(|| WireError::UnexpectedFrame(truncated(&text)))?;
            let socket_id = data
                .get("socket_id")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| WireError::UnexpectedFrame(truncated(&text)))?;
            Ok(Established {
                socket_id: socket_id.to_string(),
            })
        }
        "pusher:error" => Err(frame.to_error()),
        _ => Err(WireError::UnexpectedFrame(truncated(&text))),
    }
}

/// The `pusher:subscribe` frame for a public channel.
pub fn subscribe_frame(channel: &str) -> String {
    subscribe_frame_with(channel, false)
}

/// The `pusher:subscribe` frame for a public channel; with `positions`, opting in to Herald's
/// resume extension (`"herald": {}`, docs/resume.md: event frames then carry their position).
pub fn subscribe_frame_with(channel: &str, positions: bool) -> String {
    let mut data = serde_json::json!({"channel": channel});
    if positions {
        data["herald"] = serde_json::json!({});
    }
    serde_json::json!({"event": "pusher:subscribe", "data": data}).to_string()
}

/// The `pusher:pong` frame, the answer to a server's `pusher:ping`.
pub const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;

/// Subscribes to a public channel and waits for `pusher_internal:subscription_succeeded` (the
/// caller bounds the wait). Frames of other channels that arrive meanwhile are skipped.
pub async fn subscribe(ws: &mut Socket, channel: &str) -> Result<(), WireError> {
    subscribe_with(ws, channel, false).await
}

/// [`subscribe`], opting in to event positions when `positions` (see [`subscribe_frame_with`]).
pub async fn subscribe_with(
    ws: &mut Socket,
    channel: &str,
    positions: bool,
) -> Result<(), WireError> {
    ws.send(Message::text(subscribe_frame_with(channel, positions)))
        .await
        .map_err(WireError::Socket)?;
    loop {
        let text = next_text(ws).await?;
        let Some(frame) = Frame::parse(&text) else {
            return Err(WireError::UnexpectedFrame(truncated(&text)));
        };
        let ours = frame.channel.as_deref() == Some(channel);
        match frame.event.as_ref() {
            "pusher_internal:subscription_succeeded" if ours => return Ok(()),
            "pusher:subscription_error" if ours => {
                let data = frame.data_object().unwrap_or_default();
                return Err(WireError::Subscription {
                    channel: channel.to_string(),
                    status: data
                        .get("status")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|s| u16::try_from(s).ok()),
                    message: frame.data.map(|d| truncated(d.get())).unwrap_or_default(),
                });
            }
            "pusher:error" => return Err(frame.to_error()),
            "pusher:ping" => ws
                .send(Message::text(PONG))
                .await
                .map_err(WireError::Socket)?,
            _ => {}
        }
    }
}

/// Closes politely with 1000; errors are ignored (the peer may be gone already).
pub async fn close(ws: &mut Socket) {
    let _ = ws
        .close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_borrow_event_data() {
        let text = r#"{"event":"e","channel":"bench","data":"hb:1:2:xx"}"#;
        let frame = Frame::parse(text).expect("a valid frame");
        assert_eq!(frame.event, "e");
        assert_eq!(frame.channel.as_deref(), Some("bench"));
        assert!(matches!(frame.data_str(), Some(Cow::Borrowed("hb:1:2:xx"))));
        let escaped = Frame::parse(r#"{"event":"e","data":"a\"b"}"#).expect("a valid frame");
        assert_eq!(escaped.data_str().as_deref(), Some("a\"b"));
        let object = Frame::parse(r#"{"event":"e","data":{}}"#).expect("a valid frame");
        assert_eq!(object.data_str(), None);
    }

    #[test]
    fn error_data_is_read_as_object_or_string() {
        for text in [
            r#"{"event":"pusher:error","data":{"code":4001,"message":"no app"}}"#,
            r#"{"event":"pusher:error","data":"{\"code\":4001,\"message\":\"no app\"}"}"#,
        ] {
            let frame = Frame::parse(text).expect("a valid frame");
            assert!(matches!(
                frame.to_error(),
                WireError::Pusher { code: Some(4001), ref message } if message == "no app"
            ));
        }
    }

    #[tokio::test]
    async fn a_client_url_gives_its_key_and_loses_its_query() {
        for url in [
            "ws://127.0.0.1:8080/app/herald-dev-key",
            "ws://127.0.0.1:8080/app/herald-dev-key/",
            "ws://127.0.0.1:8080/app/herald-dev-key?protocol=7&client=herald-dev&version=0.1.0",
        ] {
            let target = WsTarget::resolve(url).await.expect("a client URL");
            assert_eq!(target.app_key.as_deref(), Some("herald-dev-key"), "{url}");
            assert_eq!(target.key(None, "default").unwrap(), "herald-dev-key");
            assert_eq!(
                target.key(Some("herald-dev-key"), "default").unwrap(),
                "herald-dev-key"
            );
            assert!(target.key(Some("other"), "default").is_err(), "{url}");
            assert_eq!(
                target.app_url("herald-dev-key"),
                format!(
                    "ws://127.0.0.1:8080/app/herald-dev-key?protocol=7&client=herald-bench&version={}",
                    env!("CARGO_PKG_VERSION")
                )
            );
        }
        let prefixed = WsTarget::resolve("ws://127.0.0.1:8080/pusher/app/k?protocol=7")
            .await
            .expect("a prefixed client URL");
        assert_eq!(
            prefixed.app_url("k").split('?').next(),
            Some("ws://127.0.0.1:8080/pusher/app/k")
        );
        let base = WsTarget::resolve("ws://127.0.0.1:8080")
            .await
            .expect("a base URL");
        assert_eq!(base.key(None, "default").unwrap(), "default");
        assert_eq!(base.key(Some("flag"), "default").unwrap(), "flag");
    }

    #[tokio::test]
    async fn urls_are_checked_and_keep_their_prefix() {
        let target = WsTarget::resolve("ws://127.0.0.1:8080/pusher/")
            .await
            .expect("a valid URL");
        assert_eq!(target.addr, "127.0.0.1:8080".parse().expect("an address"));
        assert_eq!(
            target.app_url("k"),
            format!(
                "ws://127.0.0.1:8080/pusher/app/k?protocol=7&client=herald-bench&version={}",
                env!("CARGO_PKG_VERSION")
            )
        );
        for bad in [
            "http://127.0.0.1:1",
            "wss://127.0.0.1:1",
            "ws://",
            "not a url",
            "ws://h:1/?a=b",
        ] {
            assert!(
                matches!(
                    WsTarget::resolve(bad).await,
                    Err(WireError::InvalidUrl { .. })
                ),
                "{bad}"
            );
        }
    }
}
