//! Client sockets: one task per WebSocket connection.
//!
//! # Layout
//! - [`handshake`] — the HTTP/1.1 upgrade (or a plain HTTP answer to anything else).
//! - [`admission`] — app key, protocol version, app state and origin checks after the upgrade.
//! - [`rate`], [`client_ip`] — new connections per client address per second.
//! - [`connection`] — the task that owns the socket: frames in, outbox out, heartbeat, drain.
//! - [`session`] — the socket's subscriptions, sign-in and client events.
//! - [`limiter`] — the client-event token bucket.
//! - [`heartbeat`] — the single idle → ping → pong deadline.
//! - [`linger`] — the lingering close every answered socket ends with.
//! - [`stream`] — the connection's bytes: plain TCP or TLS.
//! - [`reader`] — the client's WebSocket frames, read with no buffer held between messages.
//! - [`writer`] — fanned-out frames written straight to the stream, one vectored write per batch.
//!
//! A socket's outbox (the bounded queue fan-out pushes into) lives with its writers in
//! [`crate::index`]; the socket task only drains it.

mod admission;
mod client_ip;
mod connection;
mod handshake;
mod heartbeat;
mod limiter;
mod linger;
mod rate;
mod reader;
mod session;
mod stream;
mod writer;

pub use rate::{ConnectionRate, ConnectionRateLimit};

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use herald_shared::app::AppTable;
use herald_shared::ids::{EdgeId, SocketId};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::stream::ClientStream;
use crate::index::{IndexHandle, OutboxLimits};
use crate::metrics;
use crate::quota::{Quotas, Slot};
use crate::stats::EdgeStats;

/// Per-socket limits and timings.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// Announced in `connection_established`; silence this long triggers a server ping.
    pub activity_timeout: Duration,
    /// How long the server waits for an answer to its ping before closing with 4201.
    pub pong_timeout: Duration,
    /// How long a client has to send its HTTP upgrade request.
    pub handshake_timeout: Duration,
    /// Largest client message handled; larger ones (up to 4× this) get a `pusher:error`, and
    /// beyond that the connection closes with 1009.
    pub max_message_bytes: usize,
    /// How much a socket reads at once: a buffer of this size is taken when the client sends
    /// and given back once its bytes are handled, so an idle socket holds none.
    pub read_buffer_bytes: usize,
    /// Bounds of each socket's outbox.
    pub outbox: OutboxLimits,
    /// How long writing a batch of frames to a client may take before it is dropped.
    pub write_timeout: Duration,
    /// On drain, each socket closes with 4200 after a random delay within this window.
    pub drain_window: Duration,
    /// Channels one socket may be subscribed to at once.
    pub max_channels: usize,
}

impl SocketLimits {
    /// The largest frame tungstenite reads at all.
    fn hard_message_limit(&self) -> usize {
        self.max_message_bytes.saturating_mul(4)
    }
}

/// Everything a socket task needs, shared by all of them.
#[derive(Debug)]
pub struct SocketContext {
    /// The app table, once the hub has sent it.
    pub apps: watch::Receiver<Option<Arc<AppTable>>>,
    /// The local channel index.
    pub index: IndexHandle,
    /// Limits and timings.
    pub limits: SocketLimits,
    /// This edge's id (the high half of socket ids).
    pub edge_id: EdgeId,
    /// The next socket id's low half.
    pub next_socket: AtomicU64,
    /// Cancelled when the edge drains.
    pub drain: CancellationToken,
    /// Counters.
    pub stats: Arc<EdgeStats>,
    /// Serve `wss://` with this configuration (its certificate resolver may change
    /// certificates at any time); plain `ws://` when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The edge's and the apps' connection quotas.
    pub quotas: Arc<Quotas>,
    /// New connections per client address; `None`: unlimited.
    pub rate: Option<ConnectionRate>,
}

/// Serves one accepted TCP connection from `peer` until it closes.
///
/// The opening (TLS, upgrade, admission, the greeting) runs as a boxed future of its own, freed
/// once the socket is greeted: a task's future is as large as its largest state, and the
/// opening's buffers and TLS handshake would otherwise be carried by every idle socket for its
/// lifetime.
pub async fn serve(tcp: TcpStream, peer: IpAddr, ctx: Arc<SocketContext>) {
    let Some(Opened {
        mut ws,
        mut connection,
        slot,
        greeted,
    }) = Box::pin(open(tcp, peer, ctx)).await
    else {
        return;
    };
    connection.run(&mut ws, greeted).await;
    drop(slot);
}

/// A socket past its opening: upgraded, admitted to its app and greeted (or gone meanwhile).
struct Opened {
    ws: connection::Socket,
    connection: connection::Connection,
    /// The socket's place in the connection quotas, held until it closes.
    slot: Slot,
    /// Whether `connection_established` went out.
    greeted: bool,
}

/// The opening of a connection: TLS, the HTTP upgrade, the rate limit, admission and the
/// greeting. `None` when the connection was answered (refused, rejected) or went away first.
async fn open(tcp: TcpStream, peer: IpAddr, ctx: Arc<SocketContext>) -> Option<Opened> {
    // Small frames must not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    // The TLS handshake and the upgrade request share one deadline.
    let deadline = Instant::now() + ctx.limits.handshake_timeout;
    let tls = ctx.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let mut stream = match ClientStream::accept(tcp, tls, ctx.limits.handshake_timeout).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(message = "Client TLS handshake failed.", %error);
            return None;
        }
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let upgrade = match handshake::read_upgrade(&mut stream, remaining).await {
        Ok(upgrade) => upgrade,
        Err(handshake::ReadError::Rejected(rejection)) => {
            handshake::reject(&mut stream, &rejection).await;
            return None;
        }
        Err(handshake::ReadError::Io | handshake::ReadError::Timeout) => return None,
    };
    if let Some(rate) = &ctx.rate
        && let Err(wait) = rate.check(peer, upgrade.forwarded_for.as_deref())
    {
        ctx.stats
            .refused_rate_limited
            .fetch_add(1, Ordering::Relaxed);
        metrics::connection_refused("rate limited");
        let rejection = handshake::Rejection::too_many(wait);
        handshake::reject(&mut stream, &rejection).await;
        return None;
    }
    let apps = ctx.apps.borrow().clone();
    let apps = match (apps, ctx.drain.is_cancelled()) {
        (Some(apps), false) => apps,
        (_, true) => {
            metrics::connection_refused("draining");
            unavailable(
                &mut stream,
                "This edge is draining; reconnect to another one.",
            )
            .await;
            return None;
        }
        (None, false) => {
            metrics::connection_refused("not linked");
            unavailable(
                &mut stream,
                "This edge is not linked to a hub yet; retry shortly.",
            )
            .await;
            return None;
        }
    };
    // Admission is decided before the upgrade is answered: an admitted socket gets the answer
    // and `connection_established` in one write (the client reads both at once), a refused one
    // the answer, then its refusal as WebSocket frames (Pusher's way: pusher-js reads the code).
    let admitted =
        admission::admit(&apps, &upgrade).and_then(|app| Ok((app.clone(), ctx.quotas.admit(app)?)));
    match admitted {
        Ok((app, slot)) => {
            let mut ws = connection::Socket::new(stream, &upgrade.leftover);
            let socket_id = SocketId {
                high: ctx.edge_id.0,
                low: ctx.next_socket.fetch_add(1, Ordering::Relaxed),
            };
            let direct = ws.direct_stream();
            let mut connection = connection::Connection::new(ctx, app, socket_id, direct);
            let answer = handshake::switching_protocols(&upgrade);
            let greeted = connection.greet(&mut ws, &answer).await;
            Some(Opened {
                ws,
                connection,
                slot,
                greeted,
            })
        }
        Err(code) => {
            if handshake::accept(&mut stream, &upgrade).await.is_err() {
                return None;
            }
            ctx.stats.refused(code);
            metrics::connection_refused(code.code().to_string());
            connection::refuse(connection::Socket::new(stream, &upgrade.leftover), code).await;
            None
        }
    }
}

/// Answers 503: the edge cannot serve this connection now, another edge (or a retry) can.
async fn unavailable(stream: &mut ClientStream, body: &str) {
    let rejection = handshake::Rejection::new((503, "Service Unavailable"), body);
    handshake::reject(stream, &rejection).await;
}
