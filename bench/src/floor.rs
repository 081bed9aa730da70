//! `herald-bench floor`: the do-nothing WebSocket writer Herald's benchmarks are measured
//! against (BENCHMARKS.md).
//!
//! It is the least a Pusher-compatible server can do and still pass `herald-bench fanout`:
//! upgrade, send `connection_established`, answer one `pusher:subscribe`, and on each
//! `POST /apps/{id}/events` encode the frame once and `write` it to every socket. No signature
//! check, no channels (every socket gets every event), no queue (a socket whose send buffer is
//! full misses the event, counted), no reads after the subscription, no timers. What it costs
//! per delivery is the kernel's TCP work plus a loop: the floor for CPU and latency.
//!
//! Not a Herald component and not a client: it is here so the benchmark and its reference
//! server ship together, apart from the `herald` binary (it checks no signature).
//! It listens with Herald's backlog ([`LISTEN_BACKLOG`]), so a connect burst meets the same
//! kernel queue. Sockets are split over one writer thread per core, each owning its
//! sockets (plain non-blocking `std` sockets written in a loop, off the async runtime so the
//! loop never starves the HTTP side); a trigger hands the encoded frame to every writer (in one
//! order, under a lock held only for the hand-off) and is answered at once, as Herald answers
//! once the event is handed to its fan-out path. The queues are unbounded: this is a measuring
//! stick, not a server, and the benchmark's rate bounds them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use herald_shared::limits::LISTEN_BACKLOG;
use serde::Deserialize;
use std::io::Write as _;
use std::sync::mpsc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// What a writer thread is handed.
enum Work {
    /// A subscribed socket to write to from now on (non-blocking).
    Socket(std::net::TcpStream),
    /// An encoded frame for every socket.
    Frame(Arc<[u8]>),
}

/// The writers' queues and counters.
struct Floor {
    /// One queue per writer task. The lock is held while a frame is handed to every writer, so
    /// all of them get the frames of concurrent triggers in one order.
    writers: std::sync::Mutex<Vec<mpsc::Sender<Work>>>,
    next: AtomicU64,
    missed: Arc<AtomicU64>,
}

/// A writer thread: owns its sockets, writes each frame to all of them.
fn writer(work: mpsc::Receiver<Work>, missed: Arc<AtomicU64>) {
    let mut sockets: Vec<std::net::TcpStream> = Vec::new();
    while let Ok(item) = work.recv() {
        match item {
            Work::Socket(socket) => sockets.push(socket),
            Work::Frame(frame) => {
                for mut socket in &sockets {
                    if !matches!(socket.write(&frame), Ok(n) if n == frame.len()) {
                        missed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// A WebSocket frame from the server (unmasked, FIN, text).
fn server_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x81);
    match payload.len() {
        len @ 0..=125 => frame.push(len as u8),
        len @ 126..=65535 => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// The payload of the first complete client frame in `buf` (masked, as clients must send),
/// and how many bytes it took; `None` when more bytes are needed.
fn client_frame(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let &[_, second] = buf.first_chunk::<2>()?;
    let rest = &buf[2..];
    let (len, rest, header) = match second & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(*rest.first_chunk()?)),
            &rest[2..],
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(*rest.first_chunk()?)).ok()?,
            &rest[8..],
            10,
        ),
        len => (usize::from(len), rest, 2),
    };
    let masked = second & 0x80 != 0;
    let mask: [u8; 4] = if masked { *rest.first_chunk()? } else { [0; 4] };
    let body = rest.get(if masked { 4 } else { 0 }..)?.get(..len)?;
    let payload = body
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Some((payload, header + usize::from(masked) * 4 + len))
}

/// Reads until the end of the HTTP head; returns the head and whatever followed it.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let rest = buf[end + 4..].to_vec();
            buf.clear();
            return Some((head, rest));
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[derive(Deserialize)]
struct Trigger {
    name: String,
    channel: String,
    data: String,
}

impl Floor {
    async fn serve(self: Arc<Self>, mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut buf = Vec::new();
        let Some((head, rest)) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        if head.starts_with("GET /app/") {
            self.websocket(stream, &head, rest).await;
        } else {
            self.api(stream, head, rest).await;
        }
    }

    async fn websocket(&self, mut stream: TcpStream, head: &str, mut rest: Vec<u8>) {
        let Some(key) = header(head, "sec-websocket-key") else {
            return;
        };
        let established = server_frame(
            br#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.1\",\"activity_timeout\":120}"}"#,
        );
        let mut reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        reply.extend_from_slice(&established);
        if stream.write_all(&reply).await.is_err() {
            return;
        }
        let subscribe = loop {
            if let Some((payload, _)) = client_frame(&rest) {
                break payload;
            }
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        };
        let channel = serde_json::from_slice::<serde_json::Value>(&subscribe)
            .ok()
            .and_then(|frame| frame["data"]["channel"].as_str().map(str::to_string))
            .unwrap_or_default();
        let succeeded = serde_json::json!({
            "event": "pusher_internal:subscription_succeeded",
            "channel": channel,
            "data": "{}",
        })
        .to_string();
        if stream
            .write_all(&server_frame(succeeded.as_bytes()))
            .await
            .is_err()
        {
            return;
        }
        let Ok(stream) = stream.into_std() else {
            return;
        };
        let writers = self
            .writers
            .lock()
            .expect("the writers lock is never poisoned");
        let shard = self.next.fetch_add(1, Ordering::Relaxed) as usize % writers.len();
        let _ = writers[shard].send(Work::Socket(stream));
    }

    async fn api(&self, mut stream: TcpStream, mut head: String, mut rest: Vec<u8>) {
        let mut buf = Vec::new();
        loop {
            let length: usize = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while rest.len() < length {
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => rest.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Vec<u8> = rest.drain(..length).collect();
            let status = match serde_json::from_slice::<Trigger>(&body) {
                Ok(trigger) if head.starts_with("POST /apps/") => {
                    self.fan_out(trigger);
                    "200 OK"
                }
                _ => "400 Bad Request",
            };
            let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\n{{}}");
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            buf.clone_from(&rest);
            match read_head(&mut stream, &mut buf).await {
                Some((next_head, next_rest)) => (head, rest) = (next_head, next_rest),
                None => return,
            }
        }
    }

    fn fan_out(&self, trigger: Trigger) {
        let event = serde_json::json!({
            "event": trigger.name,
            "channel": trigger.channel,
            "data": trigger.data,
        })
        .to_string();
        let frame: Arc<[u8]> = server_frame(event.as_bytes()).into();
        let writers = self
            .writers
            .lock()
            .expect("the writers lock is never poisoned");
        for writer in writers.iter() {
            let _ = writer.send(Work::Frame(frame.clone()));
        }
    }
}

/// Binds the floor's listener with Herald's backlog.
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves until the process is stopped; prints `{"event":"ready","websocket":…,"http":…}`
/// (the same address) once listening.
pub async fn run(listener: TcpListener) -> std::io::Result<()> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let missed = Arc::new(AtomicU64::new(0));
    let writers = (0..cores)
        .map(|_| {
            let (queue, work) = mpsc::channel();
            let missed = missed.clone();
            std::thread::spawn(move || writer(work, missed));
            queue
        })
        .collect();
    let floor = Arc::new(Floor {
        writers: std::sync::Mutex::new(writers),
        next: AtomicU64::new(0),
        missed,
    });
    let addr: SocketAddr = listener.local_addr()?;
    let ready = serde_json::json!({
        "event": "ready",
        "role": "floor",
        "websocket": addr.to_string(),
        "http": addr.to_string(),
    });
    #[allow(
        clippy::print_stdout,
        reason = "the ready line goes to stdout by contract"
    )]
    {
        println!("{ready}");
    }
    let mut report = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                tokio::spawn(floor.clone().serve(stream));
            }
            _ = report.tick() => {
                let missed = floor.missed.load(Ordering::Relaxed);
                if missed > 0 {
                    tracing::warn!(message = "Deliveries missed on full send buffers.", missed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_client_parser() {
        for len in [0, 5, 125, 126, 300, 70_000] {
            let payload = vec![b'a'; len];
            let frame = server_frame(&payload);
            assert_eq!(client_frame(&frame), Some((payload, frame.len())), "{len}");
            assert_eq!(client_frame(&frame[..frame.len() - 1]), None);
        }
    }

    #[test]
    fn masked_client_frames_are_unmasked() {
        let mask = [1, 2, 3, 4];
        let text = br#"{"event":"pusher:subscribe"}"#;
        let mut frame = vec![0x81, 0x80 | text.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame.extend_from_slice(b"next");
        assert_eq!(
            client_frame(&frame),
            Some((text.to_vec(), 2 + 4 + text.len()))
        );
    }

    #[test]
    fn headers_are_found_case_insensitively() {
        let head = "GET /app/k HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: abc==";
        assert_eq!(header(head, "sec-websocket-key"), Some("abc=="));
        assert_eq!(header(head, "content-length"), None);
    }
}
