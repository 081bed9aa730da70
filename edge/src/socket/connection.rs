//! The task that owns one client socket.
//!
//! It selects over the outbox (frames fanned out to it), the client's frames, its single timer
//! (heartbeat, drain, or the sign-in deadline of authorized connections) and the drain signal.
//! Its [`Session`] owns the socket's subscriptions, and on the way out walks its own list to
//! leave every channel: there is no reverse index elsewhere.
//!
//! Fan-out writes to a plain socket directly while nothing is queued (see
//! [`crate::index::Outbox`]); every write of the task's own first takes the stream from it
//! ([`Connection::claim`]), so the two never interleave.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use herald_shared::app::App;
use herald_shared::ids::SocketId;
use herald_shared::protocol::{CloseCode, Incoming, Outgoing, ProtocolError};
use tokio::time::{Instant, Sleep};

use super::heartbeat::{Beat, Heartbeat};
use super::linger::linger;
use super::reader::{ClientFrame, FrameReader, ReadError};
use super::session::Session;
use super::stream::ClientStream;
use super::writer::{self, WriteError};
use super::{SocketContext, SocketLimits};
use crate::frame;
use crate::index::{CloseOrder, Next, OutboxReceiver, PlainStream, encode, outbox};
use crate::metrics::{self, Received};

/// An upgraded client socket: its stream and the state of its read half.
#[derive(Debug)]
pub struct Socket {
    stream: ClientStream,
    reader: FrameReader,
}

impl Socket {
    /// The socket after its upgrade; `leftover` is what the client sent after the request.
    pub fn new(stream: ClientStream, leftover: &[u8]) -> Self {
        Self {
            stream,
            reader: FrameReader::with_leftover(leftover),
        }
    }

    /// The plain stream, which fan-out writes to directly while nothing is queued; `None` for
    /// TLS.
    pub fn direct_stream(&self) -> Option<PlainStream> {
        match &self.stream {
            ClientStream::Plain(tcp) => Some(tcp.clone()),
            ClientStream::Tls(_) => None,
        }
    }

    /// Writes one text frame (before the socket has an outbox: see [`Connection::claim`]).
    async fn send(&mut self, frame: &Outgoing) -> io::Result<()> {
        writer::write_frame(&mut self.stream, frame::TEXT, encode(frame).as_bytes()).await
    }
}

/// How long sending the close frame may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the loop does next.
#[derive(Debug)]
enum Flow {
    Continue,
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The client sent a close frame: answer it with its code, then let go.
    ClientClosed(u16),
    /// The client is gone (closed, or the connection failed).
    Gone,
}

/// One client connection.
pub struct Connection {
    ctx: Arc<SocketContext>,
    socket_id: SocketId,
    session: Session,
    inbox: OutboxReceiver,
    heartbeat: Heartbeat,
    drain_at: Option<Instant>,
    /// Authorized connections: the socket must sign in before this.
    signin_by: Option<Instant>,
}

/// A `pusher:error` carrying the close code the socket is about to close with.
fn closing_error(code: CloseCode, message: &str) -> Outgoing {
    Outgoing::Error {
        code: Some(code.code()),
        message: message.to_string(),
    }
}

/// Sends `pusher:error` with a close code, then closes with it (Pusher's way of refusing a
/// connection: pusher-js reads the code from either).
pub async fn refuse(mut ws: Socket, code: CloseCode) {
    if ws.send(&closing_error(code, code.reason())).await.is_ok() {
        close(&mut ws, code.code(), code.reason()).await;
    }
}

/// Sends the close frame, then closes the TCP connection so the client reads it whatever it is
/// still sending ([`linger`]). The bytes after our close frame are never parsed: the client's
/// close frame among them needs no answer, and after an error the read side may be mid-frame.
async fn close(ws: &mut Socket, code: u16, reason: &str) {
    if send_close(ws, code, reason).await {
        linger(&mut ws.stream).await;
    }
}

/// Sends a close frame within [`CLOSE_TIMEOUT`]; whether it went out. Answering the client's
/// own close needs no more: its close frame was the last thing it sends (RFC 6455 §5.5.1), so
/// the socket is dropped right after.
async fn send_close(ws: &mut Socket, code: u16, reason: &str) -> bool {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    let sent = writer::write_frame(&mut ws.stream, frame::CLOSE, &payload);
    matches!(tokio::time::timeout(CLOSE_TIMEOUT, sent).await, Ok(Ok(())))
}

/// The client's next message or control frame: frames up to the hard limit, read `read_size`
/// bytes at a time into a buffer that is given back between messages.
fn next_message<'a>(
    ws: &'a mut Socket,
    limits: &'a SocketLimits,
) -> impl Future<Output = Result<ClientFrame, ReadError>> + 'a {
    poll_fn(move |cx| {
        ws.reader.poll_next(
            &mut ws.stream,
            limits.hard_message_limit(),
            limits.read_buffer_bytes,
            cx,
        )
    })
}

impl Connection {
    /// Prepares a connection for an admitted socket; `direct`: its plain stream, which fan-out
    /// writes to while nothing is queued.
    pub fn new(
        ctx: Arc<SocketContext>,
        app: Arc<App>,
        socket_id: SocketId,
        direct: Option<PlainStream>,
    ) -> Self {
        let (outbox, inbox) = outbox(ctx.limits.outbox, direct.as_ref());
        let now = Instant::now();
        let heartbeat = Heartbeat::new(now, ctx.limits.activity_timeout, ctx.limits.pong_timeout);
        let signin_by = app
            .settings
            .user_authentication_timeout_secs
            .map(|secs| now + Duration::from_secs(u64::from(secs)));
        Self {
            session: Session::new(ctx.clone(), app, socket_id, outbox),
            ctx,
            socket_id,
            inbox,
            heartbeat,
            drain_at: None,
            signin_by,
        }
    }

    /// Runs the connection to its end (`greeted`: whether [`Connection::greet`] reached the
    /// client), then leaves every channel. Both are borrowed, not moved in: the socket task's
    /// future then holds them once (an async fn keeps a copy of the arguments it owns beside its
    /// locals for its whole life).
    pub async fn run(&mut self, ws: &mut Socket, greeted: bool) {
        let stats = self.ctx.stats.clone();
        let app_id = self.session.app_id().clone();
        let flow = if greeted {
            self.serve(ws).await
        } else {
            Flow::Gone
        };
        // From here on only the task writes (its close frame), if anyone: what fan-out left
        // queued goes first, so the rest of a frame it began is not cut off.
        let flow = match flow {
            Flow::Close(..) | Flow::ClientClosed(_) => match Box::pin(self.claim(ws)).await {
                Ok(()) => flow,
                Err(_) => Flow::Gone,
            },
            Flow::Continue | Flow::Gone => {
                self.inbox.claim();
                Flow::Gone
            }
        };
        let reason = match flow {
            Flow::Close(code, reason) => {
                Box::pin(close(ws, code, reason)).await;
                reason
            }
            Flow::ClientClosed(code) => {
                Box::pin(send_close(ws, code, "")).await;
                metrics::CLOSED_BY_CLIENT
            }
            Flow::Continue | Flow::Gone => metrics::CLOSED_BY_CLIENT,
        };
        metrics::connection_closed(&app_id, reason);
        Box::pin(self.session.leave_all()).await;
        stats.connections.fetch_sub(1, Ordering::Relaxed);
    }

    fn signin_deadline(&self) -> Option<Instant> {
        self.signin_by.filter(|_| !self.session.authorized())
    }

    fn deadline(&self) -> Instant {
        [self.drain_at, self.signin_deadline()]
            .into_iter()
            .flatten()
            .fold(self.heartbeat.deadline(), Instant::min)
    }

    async fn serve(&mut self, ws: &mut Socket) -> Flow {
        let ctx = self.ctx.clone();
        let timer = tokio::time::sleep_until(self.deadline());
        tokio::pin!(timer);
        // Made once: a fresh `cancelled()` per turn of the loop would join and leave the
        // token's waiter list (a lock shared by every socket) on every wake.
        let drain = ctx.drain.cancelled();
        tokio::pin!(drain);
        loop {
            let flow = tokio::select! {
                next = self.inbox.next() => self.write(ws, next, timer.as_mut()).await,
                // Boxed: handling a client message or a timer (subscribing, signing in,
                // closing) needs more state than anything else the socket does, and an unboxed
                // handler would make every idle socket's task carry it.
                message = next_message(ws, &ctx.limits) => {
                    Box::pin(self.on_message(ws, message)).await
                }
                () = &mut timer => Box::pin(self.on_timer(ws)).await,
                () = &mut drain, if self.drain_at.is_none() => {
                    let spread = ctx.limits.drain_window.mul_f64(fastrand::f64());
                    self.drain_at = Some(Instant::now() + spread);
                    Flow::Continue
                }
            };
            match flow {
                Flow::Continue => {
                    let deadline = self.deadline();
                    if timer.deadline() != deadline {
                        timer.as_mut().reset(deadline);
                    }
                }
                other => return other,
            }
        }
    }

    /// Writes the frames taken from the outbox (and any queued meanwhile) in one go. The
    /// socket's timer bounds the write while the client does not take it; the loop re-arms it.
    async fn write(&mut self, ws: &mut Socket, next: Next, timer: Pin<&mut Sleep>) -> Flow {
        if let Next::Close(order) = next {
            // Boxed, as the message handlers: rare, and larger than the write itself.
            return Box::pin(self.close_ordered(ws, order)).await;
        }
        match self.write_taken(ws, timer).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Gone,
        }
    }

    /// Writes the frames taken from the outbox, from where fan-out left the first one.
    async fn write_taken(
        &mut self,
        ws: &mut Socket,
        timer: Pin<&mut Sleep>,
    ) -> Result<(), WriteError> {
        let timeout = self.ctx.limits.write_timeout;
        let from = self.inbox.taken_from();
        writer::write_frames(&mut ws.stream, self.inbox.taken(), from, timer, timeout).await?;
        if let Some(accepted) = self.inbox.clear_taken() {
            metrics::delivered(accepted, SystemTime::now());
        }
        Ok(())
    }

    /// Takes the stream from fan-out's direct writes for a write of the task's own, first
    /// writing what fan-out left queued (the rest of a frame it began among it). Every write of
    /// the task's own goes after this; the task holds the stream until it next finds its outbox
    /// empty.
    async fn claim(&mut self, ws: &mut Socket) -> Result<(), WriteError> {
        if !self.inbox.claim() {
            return Ok(());
        }
        let timer = std::pin::pin!(tokio::time::sleep(self.ctx.limits.write_timeout));
        Box::pin(self.write_taken(ws, timer)).await
    }

    /// Writes one frame of the task's own (first header byte `first`) once it holds the stream.
    async fn send(&mut self, ws: &mut Socket, first: u8, payload: &[u8]) -> Flow {
        if self.claim(ws).await.is_err() {
            return Flow::Gone;
        }
        match writer::write_frame(&mut ws.stream, first, payload).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Gone,
        }
    }

    /// Sends `pusher:error` with `code` and `message`, then has the loop close with `code` and
    /// `reason`.
    async fn error_then_close(
        &mut self,
        ws: &mut Socket,
        code: CloseCode,
        message: &str,
        reason: &'static str,
    ) -> Flow {
        match self.reply(ws, &closing_error(code, message)).await {
            Flow::Continue => Flow::Close(code.code(), reason),
            other => other,
        }
    }

    /// Closes the socket as the index ordered.
    async fn close_ordered(&mut self, ws: &mut Socket, order: CloseOrder) -> Flow {
        match order {
            CloseOrder::SlowConsumer => {
                self.ctx
                    .stats
                    .slow_consumer_closes
                    .fetch_add(1, Ordering::Relaxed);
                let message = "Too many messages queued for this connection; reconnect";
                self.error_then_close(ws, CloseCode::ReconnectNow, message, "slow consumer")
                    .await
            }
            CloseOrder::Terminated => {
                let message = "The server terminated this user's connections";
                self.error_then_close(
                    ws,
                    CloseCode::Unauthorized,
                    message,
                    "connection terminated",
                )
                .await
            }
        }
    }

    /// Counts the connection open, then answers the upgrade (`answer`: its `101 Switching
    /// Protocols`) and sends `connection_established`, in one write; whether it went out. Called
    /// once, by the socket's opening, before [`Connection::run`].
    pub async fn greet(&mut self, ws: &mut Socket, answer: &str) -> bool {
        let stats = &self.ctx.stats;
        stats.connections.fetch_add(1, Ordering::Relaxed);
        stats.connections_total.fetch_add(1, Ordering::Relaxed);
        metrics::connection_opened(self.session.app_id());
        let established = encode(&Outgoing::ConnectionEstablished {
            socket_id: self.socket_id,
            activity_timeout_secs: self.ctx.limits.activity_timeout.as_secs(),
        });
        if self.claim(ws).await.is_err() {
            return false;
        }
        let greeting = writer::write_frame_after(
            &mut ws.stream,
            answer.as_bytes(),
            frame::TEXT,
            established.as_bytes(),
        );
        greeting.await.is_ok()
    }

    async fn reply(&mut self, ws: &mut Socket, frame: &Outgoing) -> Flow {
        self.send(ws, frame::TEXT, encode(frame).as_bytes()).await
    }

    async fn on_message(
        &mut self,
        ws: &mut Socket,
        message: Result<ClientFrame, ReadError>,
    ) -> Flow {
        let message = match message {
            Ok(message) => message,
            Err(ReadError::TooLong { size, max_size }) => {
                let error = ProtocolError::TooLarge {
                    len: size,
                    limit: max_size,
                };
                return match self.reply(ws, &error.reply()).await {
                    Flow::Continue => Flow::Close(1009, "message too big"),
                    other => other,
                };
            }
            Err(ReadError::Utf8) => return Flow::Close(1007, "invalid UTF-8"),
            Err(ReadError::Protocol(_)) => return Flow::Close(1002, "protocol error"),
            Err(ReadError::Io(_) | ReadError::Eof) => return Flow::Gone,
        };
        self.heartbeat.on_activity(Instant::now());
        match message {
            ClientFrame::Text(frame) => {
                let limit = self.ctx.limits.max_message_bytes;
                if frame.len() > limit {
                    let error = ProtocolError::TooLarge {
                        len: frame.len(),
                        limit,
                    };
                    return self.reply(ws, &error.reply()).await;
                }
                let reply = match Incoming::parse(&frame) {
                    Ok(incoming) => {
                        metrics::received(Received::of(&incoming));
                        self.session.handle(incoming).await
                    }
                    Err(error) => {
                        metrics::received(Received::Invalid);
                        Some(error.reply())
                    }
                };
                match reply {
                    Some(reply) => self.reply(ws, &reply).await,
                    None => Flow::Continue,
                }
            }
            ClientFrame::Binary => {
                metrics::received(Received::Invalid);
                self.reply(ws, &ProtocolError::BinaryFrame.reply()).await
            }
            ClientFrame::Ping(payload) => self.send(ws, frame::PONG, &payload).await,
            ClientFrame::Pong => Flow::Continue,
            // The client's close is answered with its own code (RFC 6455 §5.5.1).
            ClientFrame::Close(code) => Flow::ClientClosed(code.unwrap_or(1000)),
        }
    }

    async fn on_timer(&mut self, ws: &mut Socket) -> Flow {
        let now = Instant::now();
        if self.drain_at.is_some_and(|at| at <= now) {
            let message = "Server is restarting; reconnect";
            return self
                .error_then_close(ws, CloseCode::ReconnectNow, message, "server draining")
                .await;
        }
        if self.signin_deadline().is_some_and(|at| at <= now) {
            let message = "Connection not authorized within timeout";
            return self
                .error_then_close(ws, CloseCode::Unauthorized, message, "not signed in")
                .await;
        }
        if now < self.heartbeat.deadline() {
            return Flow::Continue;
        }
        // The client was silent for a whole activity timeout: an idle socket holds no queue
        // memory until its next frame.
        self.inbox.release();
        match self.heartbeat.on_deadline(now) {
            Beat::Ping => self.reply(ws, &Outgoing::Ping).await,
            Beat::TimedOut => Flow::Close(CloseCode::PongTimeout.code(), "pong not received"),
        }
    }
}
