//! The HTTP/1.1 side of a WebSocket connection: reads the request head, routes it, and either
//! answers `101 Switching Protocols` or a plain HTTP error.
//!
//! Herald reads the head itself (instead of letting tungstenite do it) so that a request that is
//! not a WebSocket upgrade still gets a useful HTTP answer — tungstenite drops such connections
//! without a response — and so that everything after the head is handed to tungstenite intact.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::stream::ClientStream;

/// The largest request head accepted, in bytes.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most headers parsed.
const MAX_HEADERS: usize = 48;

/// A valid WebSocket upgrade request for `/app/{key}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The app key from the path.
    pub app_key: String,
    /// The `protocol` query parameter, as sent.
    pub protocol: Option<String>,
    /// The `Sec-WebSocket-Key` header.
    pub websocket_key: String,
    /// The `Origin` header (browsers send it; other clients usually do not).
    pub origin: Option<String>,
    /// The `X-Forwarded-For` header, read only when the peer is a trusted proxy.
    pub forwarded_for: Option<String>,
    /// Bytes the client sent after the head (the start of its first frames).
    pub leftover: Vec<u8>,
}

/// A request that is not served, with the HTTP answer it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status line's code and reason.
    pub status: (u16, &'static str),
    /// A plain-text explanation.
    pub body: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after_secs: Option<u64>,
}

/// Why reading the head failed.
#[derive(Debug)]
pub enum ReadError {
    /// The peer went away or the read failed; nothing to answer.
    Io,
    /// The head did not arrive in time.
    Timeout,
    /// The head is answered with an HTTP error.
    Rejected(Rejection),
}

impl Rejection {
    /// An answer with this status and explanation.
    pub fn new(status: (u16, &'static str), body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            retry_after_secs: None,
        }
    }

    /// `429 Too Many Requests`: this address opens connections too fast; retry after `wait`.
    pub fn too_many(wait: Duration) -> Self {
        Self {
            retry_after_secs: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(
                (429, "Too Many Requests"),
                "Too many new connections from this address; retry after the Retry-After seconds.",
            )
        }
    }
}

/// Reads and routes the request head.
pub async fn read_upgrade(
    stream: &mut ClientStream,
    timeout: Duration,
) -> Result<Upgrade, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.map_err(|_| ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Io);
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(upgrade) = parse_head(&buf)? {
                return Ok(upgrade);
            }
            if buf.len() > MAX_HEAD_BYTES {
                return Err(ReadError::Rejected(Rejection::new(
                    (431, "Request Header Fields Too Large"),
                    "request head too large",
                )));
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(ReadError::Timeout))
}

/// Parses a complete head, or returns `None` when more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<Upgrade>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            return Err(ReadError::Rejected(Rejection::new(
                (400, "Bad Request"),
                format!("malformed HTTP request: {error}"),
            )));
        }
    };
    let reject = |status, body: &str| Err(ReadError::Rejected(Rejection::new(status, body)));
    let target = request.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let Some(app_key) = path
        .strip_prefix("/app/")
        .filter(|k| !k.is_empty() && !k.contains('/'))
    else {
        return reject(
            (404, "Not Found"),
            "Not found. Pusher clients connect to /app/{key}; health checks use GET /up on the admin port.",
        );
    };
    if request.method != Some("GET") {
        return reject((405, "Method Not Allowed"), "WebSocket upgrades use GET");
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection_upgrade = header("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !upgrade || !connection_upgrade {
        return reject(
            (426, "Upgrade Required"),
            "This is a Pusher WebSocket endpoint: connect with a WebSocket client (pusher-js, Laravel Echo).",
        );
    }
    if header("sec-websocket-version") != Some("13") {
        return reject(
            (426, "Upgrade Required"),
            "Only WebSocket version 13 is supported",
        );
    }
    let Some(websocket_key) = header("sec-websocket-key").filter(|k| !k.is_empty()) else {
        return reject((400, "Bad Request"), "Missing Sec-WebSocket-Key header");
    };
    let protocol = query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name == "protocol").then(|| value.to_string())
    });
    Ok(Some(Upgrade {
        app_key: app_key.to_string(),
        protocol,
        websocket_key: websocket_key.to_string(),
        origin: header("origin").map(str::to_string),
        forwarded_for: header("x-forwarded-for").map(str::to_string),
        leftover: buf[head_len..].to_vec(),
    }))
}

/// The `101 Switching Protocols` answer to `upgrade`. An admitted socket sends it together with
/// `connection_established`, in one write.
pub fn switching_protocols(upgrade: &Upgrade) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(upgrade.websocket_key.as_bytes())
    )
}

/// Writes the `101 Switching Protocols` answer alone (a socket refused after its upgrade: the
/// refusal follows as WebSocket frames).
pub async fn accept(stream: &mut ClientStream, upgrade: &Upgrade) -> std::io::Result<()> {
    stream
        .write_all(switching_protocols(upgrade).as_bytes())
        .await
}

/// Writes an HTTP error answer and closes the write side.
pub async fn reject(stream: &mut ClientStream, rejection: &Rejection) {
    let (code, reason) = rejection.status;
    let mut response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        rejection.body.len() + 1
    );
    if code == 426 {
        response.push_str("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    }
    if let Some(seconds) = rejection.retry_after_secs {
        response.push_str(&format!("Retry-After: {seconds}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&rejection.body);
    response.push('\n');
    // The peer may already be gone; there is nobody left to tell.
    if stream.write_all(response.as_bytes()).await.is_ok() {
        // A peer still sending (a head over the limit) must read the answer, not a reset.
        super::linger::linger(stream).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /app/key-1?protocol=7&client=js&version=8.4.0 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    fn status(result: Result<Option<Upgrade>, ReadError>) -> u16 {
        match result {
            Err(ReadError::Rejected(rejection)) => rejection.status.0,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_pusher_upgrade() {
        let mut bytes = UPGRADE.as_bytes().to_vec();
        bytes.extend_from_slice(b"\x81\x00");
        let upgrade = parse_head(&bytes).unwrap().unwrap();
        assert_eq!(upgrade.app_key, "key-1");
        assert_eq!(upgrade.protocol.as_deref(), Some("7"));
        assert_eq!(upgrade.leftover, b"\x81\x00");
    }

    #[test]
    fn waits_for_a_complete_head() {
        assert!(parse_head(&UPGRADE.as_bytes()[..40]).unwrap().is_none());
    }

    #[test]
    fn answers_what_is_not_an_upgrade() {
        assert_eq!(status(parse_head(b"GET / HTTP/1.1\r\n\r\n")), 404);
        assert_eq!(status(parse_head(b"GET /app/ HTTP/1.1\r\n\r\n")), 404);
        assert_eq!(
            status(parse_head(b"GET /app/k HTTP/1.1\r\nHost: x\r\n\r\n")),
            426
        );
        assert_eq!(status(parse_head(b"POST /app/k HTTP/1.1\r\n\r\n")), 405);
        assert_eq!(status(parse_head(b"\x16\x03\x01garbage\r\n\r\n")), 400);
        let no_key = UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        assert_eq!(status(parse_head(no_key.as_bytes())), 400);
    }

    #[test]
    fn a_missing_protocol_is_reported_as_absent() {
        let head = UPGRADE.replace("?protocol=7&client=js&version=8.4.0", "");
        assert_eq!(parse_head(head.as_bytes()).unwrap().unwrap().protocol, None);
    }
}
