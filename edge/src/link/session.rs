//! One link session: connect, introduce, resume, then relay until the connection ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use futures_util::StreamExt;
use futures_util::stream::SelectAll;
use herald_shared::app::{AppTable, AppTableError};
use herald_shared::link::{
    self, CLOSE_PROTOCOL_ERROR, CLOSE_SHUTDOWN, EdgeToHub, Hello, HubToEdge, LINK_VERSION,
    LinkCodecError, claims,
};
use herald_shared::time::UnixTime;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, RecvStream, SendStream, TransportConfig};
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::CancellationToken;

use herald_shared::channel::ChannelKey;
use herald_shared::link::Interest;

use super::liveness::{self, Liveness};
use super::probe::PortProbe;
use super::standby::Standby;
use super::tracker::{Tracker, Verdict};
use super::{LinkState, LinkTask};
use crate::index::{Changes, Command, Desired};

/// The port probe goes out at every this many liveness checks (every sixth of the deadline with
/// 24 checks per deadline, like the keep-alive pings).
const PROBES_EVERY: u32 = 4;

/// The edge's one link frame reader: bytes from a QUIC stream, frames from the shared decoder.
struct FromHub;

impl Decoder for FromHub {
    type Item = HubToEdge;
    type Error = LinkError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<HubToEdge>, LinkError> {
        Ok(link::decode_frame(buf)?)
    }
}

type Frames = FramedRead<RecvStream, FromHub>;

/// How a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// The edge is shutting down.
    Shutdown,
    /// The session was established, then broke.
    Lasted(LinkError),
    /// The session could not be established.
    Failed(LinkError),
}

/// Why a link session failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The hub address did not resolve.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    /// The local UDP endpoint could not be opened.
    #[error("cannot open a UDP endpoint: {0}")]
    Endpoint(std::io::Error),
    /// The connection could not be started.
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A write failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// A read failed.
    #[error("read: {0}")]
    Read(#[from] std::io::Error),
    /// A frame could not be decoded.
    #[error(transparent)]
    Codec(#[from] LinkCodecError),
    /// The hub refused the edge.
    #[error("refused by the hub: {0}")]
    Refused(String),
    /// A step took too long.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// Nothing arrived from the hub for longer than the silence deadline.
    #[error("the hub was silent for {0:?}")]
    Silent(Duration),
    /// The hub's host answers that nothing listens on its link port any more.
    #[error("the hub's port is closed (its process is gone)")]
    PortClosed,
    /// The hub closed the control stream.
    #[error("the hub closed the control stream")]
    ControlClosed,
    /// The hub sent a frame that does not belong where it came.
    #[error("unexpected {0} frame")]
    Unexpected(&'static str),
    /// The hub speaks another link version.
    #[error("the hub speaks link version {0}, this edge speaks {LINK_VERSION}")]
    Version(u16),
    /// The hub's app table is inconsistent.
    #[error("the hub's app table is invalid: {0}")]
    Apps(#[from] AppTableError),
}

fn frames(stream: RecvStream) -> Frames {
    FramedRead::new(stream, FromHub)
}

/// How long the hub has to answer `Hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the edge tells its hub its connections per app (when they changed).
const CONNECTIONS_REPORT: Duration = Duration::from_secs(1);

/// Makes welcomed sessions for one link task: what connecting to a hub takes, and the
/// numbering of sessions (`Hello::session`) — each gets a larger number than any before,
/// whichever hub it is with, the standby's included (numbered when it connects, so a standby
/// taken over is later than the session it replaces).
pub struct Connector<'a> {
    task: &'a LinkTask,
    crypto: Arc<QuicClientConfig>,
    numbers: AtomicU64,
}

impl<'a> Connector<'a> {
    /// A connector for `task`'s sessions, numbered from 1.
    pub fn new(task: &'a LinkTask, crypto: Arc<QuicClientConfig>) -> Self {
        Self {
            task,
            crypto,
            numbers: AtomicU64::new(0),
        }
    }

    /// The link task.
    pub fn task(&self) -> &'a LinkTask {
        self.task
    }

    /// Connects to `hub` as the next session and waits for the welcome.
    pub async fn establish(&self, hub: &str) -> Result<Session, LinkError> {
        let number = self.numbers.fetch_add(1, Ordering::Relaxed) + 1;
        establish(self.task, hub, self.crypto.clone(), number).await
    }
}

/// Runs one session with `hub`: on `ready` (the standby link, already welcomed by `hub`) or on
/// a new connection; keeps `standby` ready meanwhile.
pub async fn run(
    connector: &Connector<'_>,
    hub: &str,
    ready: Option<Session>,
    tracker: &mut Tracker,
    standby: &mut Standby<'_>,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let task = connector.task();
    let established = match ready {
        Some(session) => Ok(session),
        None => tokio::select! {
            _ = shutdown.cancelled() => return SessionEnd::Shutdown,
            established = connector.establish(hub) => established,
        },
    };
    let mut session = match established {
        Ok(session) => session,
        Err(LinkError::Refused(reason)) => {
            tracing::error!(message = "Hub refused the link.", hub = %hub, reason = %reason);
            return SessionEnd::Failed(LinkError::Refused(reason));
        }
        Err(error) => return SessionEnd::Failed(error),
    };
    task.apps.send_replace(Some(session.apps.clone()));
    tracker.begin_session();
    task.stats.link_sessions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(message = "Link established.", hub = %hub, hub_id = %session.hub_id);
    task.state.send_replace(LinkState::Up(session.hub_id));
    crate::metrics::link(hub, true);
    let end = session.relay(task, tracker, standby, shutdown).await;
    let code = match &end {
        SessionEnd::Shutdown => CLOSE_SHUTDOWN,
        _ => CLOSE_PROTOCOL_ERROR,
    };
    session.connection.close(code.into(), b"edge closing");
    end
}

/// A welcomed connection to a hub.
pub struct Session {
    _endpoint: Endpoint,
    /// The QUIC connection.
    pub connection: Connection,
    control_send: SendStream,
    control: Frames,
    channels: SelectAll<Frames>,
    /// The hub's id.
    pub hub_id: herald_shared::ids::HubId,
    cache_ttl: Duration,
    /// The app table of the hub's welcome, published when the session starts.
    apps: Arc<AppTable>,
}

/// The frames for a set of board changes, in the board's order; `interest` turns each channel's
/// desired state into its `Interest` frame (fresh or resuming).
fn frames_for(
    changes: Changes,
    mut interest: impl FnMut(ChannelKey, Desired) -> Interest,
) -> Vec<EdgeToHub> {
    let Changes {
        leaves,
        interests,
        joins,
        watchlists,
        client_events,
        replays,
    } = changes;
    let leaves = leaves.into_iter().map(EdgeToHub::Presence);
    let interests = interests
        .into_iter()
        .map(|(key, desired)| EdgeToHub::Interest(interest(key, desired)));
    let joins = joins.into_iter().map(EdgeToHub::Presence);
    let watchlists = watchlists
        .into_iter()
        .map(|(app, user_id, watchlist)| EdgeToHub::Watchlist {
            app,
            user_id,
            watchlist,
        });
    let client_events = client_events.into_iter().map(EdgeToHub::ClientEvent);
    let replays = replays.into_iter().map(EdgeToHub::Replay);
    leaves
        .chain(interests)
        .chain(joins)
        .chain(watchlists)
        .chain(client_events)
        .chain(replays)
        .collect()
}

/// Connects to the first address of `hub` that answers (a DNS name may stand for several).
async fn connect(
    task: &LinkTask,
    hub: &str,
    crypto: Arc<QuicClientConfig>,
) -> Result<(Endpoint, Connection), LinkError> {
    let addresses: Vec<_> = tokio::net::lookup_host(hub)
        .await
        .map_err(|e| LinkError::Resolve(hub.to_string(), e))?
        .collect();
    let mut last_error = LinkError::Resolve(hub.to_string(), std::io::ErrorKind::NotFound.into());
    let idle = task.config.idle_timeout;
    // A dead hub answers nothing: give up on an address after the idle timeout, not later.
    let handshake_timeout = idle.clamp(Duration::from_secs(1), HANDSHAKE_TIMEOUT);
    for address in addresses {
        let bind = if address.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let endpoint = Endpoint::client(bind.parse().expect("a literal socket address"))
            .map_err(LinkError::Endpoint)?;
        let mut client = quinn::ClientConfig::new(crypto.clone());
        let mut transport = TransportConfig::default();
        // QUIC's own idle timeout is the backstop; the silence deadline (see `liveness`) decides
        // first. A keep-alive ping after a sixth of it makes a live hub answer well within it.
        transport.max_idle_timeout(idle.try_into().ok());
        transport.keep_alive_interval(Some(task.config.silence / 6));
        client.transport_config(Arc::new(transport));
        let name = super::tls::server_name(hub, task.config.server_name.as_deref());
        let connecting = endpoint.connect_with(client, address, &name)?;
        match tokio::time::timeout(handshake_timeout, connecting).await {
            Ok(Ok(connection)) => return Ok((endpoint, connection)),
            Ok(Err(error)) => last_error = error.into(),
            Err(_) => last_error = LinkError::Timeout("the QUIC handshake"),
        }
    }
    Err(last_error)
}

/// Connects to `hub`, introduces the edge as session number `session` and waits for the
/// hub's welcome.
async fn establish(
    task: &LinkTask,
    hub: &str,
    crypto: Arc<QuicClientConfig>,
    session: u64,
) -> Result<Session, LinkError> {
    let (endpoint, connection) = connect(task, hub, crypto).await?;
    let (mut control_send, control_recv) = connection.open_bi().await?;
    let hello = EdgeToHub::Hello(Hello {
        version: LINK_VERSION,
        edge_id: task.edge_id,
        session,
        token: claims::mint(
            &task.config.cluster_key,
            task.edge_id,
            UnixTime::from_system(SystemTime::now()).as_secs(),
        ),
    });
    control_send.write_all(&link::encode(&hello)).await?;
    let mut control = frames(control_recv);
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, control.next())
        .await
        .map_err(|_| LinkError::Timeout("the hub's welcome"))?
        .ok_or(LinkError::ControlClosed)??;
    let welcome = match first {
        HubToEdge::Welcome(welcome) => welcome,
        HubToEdge::Refused { reason } => return Err(LinkError::Refused(reason)),
        _ => return Err(LinkError::Unexpected("non-welcome first")),
    };
    if welcome.version != LINK_VERSION {
        return Err(LinkError::Version(welcome.version));
    }
    let apps = Arc::new(AppTable::new(welcome.apps)?);
    Ok(Session {
        _endpoint: endpoint,
        connection,
        control_send,
        control,
        channels: SelectAll::new(),
        hub_id: welcome.hub_id,
        cache_ttl: Duration::from_millis(welcome.cache_ttl_ms),
        apps,
    })
}

impl Session {
    async fn relay(
        &mut self,
        task: &LinkTask,
        tracker: &mut Tracker,
        standby: &mut Standby<'_>,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let everything = frames_for(task.board.snapshot(), |key, desired| {
            tracker.resume(key, desired)
        });
        if let Err(error) = self.send(&everything).await {
            return SessionEnd::Lasted(error);
        }
        // The new hub knows nothing of this edge's connections yet.
        let mut reports = tokio::time::interval(CONNECTIONS_REPORT);
        // The first tick reports at once: the hub counts this link as relaying (not a standby)
        // from its first frame.
        let mut force_report = true;
        let mut liveness = Liveness::new(task.config.silence, Instant::now(), self.received());
        let mut checks = tokio::time::interval(liveness.period());
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let probe = match PortProbe::open(self.connection.remote_address()).await {
            Ok(probe) => Some(probe),
            Err(error) => {
                tracing::warn!(message = "Cannot open the port probe; only silence will tell the hub is gone.", %error);
                None
            }
        };
        let mut count = 0u32;
        loop {
            let step = tokio::select! {
                _ = shutdown.cancelled() => return SessionEnd::Shutdown,
                never = standby.drive() => match never {},
                () = async {
                    match &probe {
                        Some(probe) => probe.closed().await,
                        None => std::future::pending().await,
                    }
                } => Err(LinkError::PortClosed),
                _ = checks.tick() => {
                    count = count.wrapping_add(1);
                    if count.is_multiple_of(PROBES_EVERY)
                        && let Some(probe) = &probe
                        && !probe.poke().await
                    {
                        return SessionEnd::Lasted(LinkError::PortClosed);
                    }
                    let now = Instant::now();
                    let standby = standby.silence(now);
                    match liveness.check(now, self.received(), standby) {
                        liveness::Verdict::Keep => Ok(()),
                        liveness::Verdict::Recovered(silence) => {
                            tracing::info!(message = "Heard from the hub again after a long silence (a slow hub, or this edge was paused).", silence_ms = silence.as_millis() as u64);
                            Ok(())
                        }
                        liveness::Verdict::Stranded(silence) => {
                            tracing::warn!(message = "The hub is silent, but no standby hub answers either; staying.", silence_ms = silence.as_millis() as u64);
                            Ok(())
                        }
                        liveness::Verdict::Gone(silence) => Err(LinkError::Silent(silence)),
                    }
                },
                frame = self.control.next() => self.on_control(task, frame),
                stream = self.connection.accept_uni() => match stream {
                    Ok(stream) => {
                        self.channels.push(frames(stream));
                        Ok(())
                    }
                    Err(error) => Err(error.into()),
                },
                Some(frame) = self.channels.next(), if !self.channels.is_empty() => {
                    self.on_channel(task, tracker, frame).await
                }
                _ = reports.tick() => {
                    let report = task.quotas.report(std::mem::take(&mut force_report));
                    match report {
                        Some(counts) => self.send(&[EdgeToHub::Connections(counts)]).await,
                        None => Ok(()),
                    }
                }
                () = task.board.changed() => {
                    // The change that woke this task is usually one socket's subscribe in a
                    // burst of them: let the tasks already runnable go first, so one take
                    // (and one frame per channel to the hub) covers what they change too,
                    // rather than one take, frame and hub answer per socket.
                    tokio::task::yield_now().await;
                    let changes = frames_for(task.board.take(), |key, desired| {
                        tracker.interest(key, desired)
                    });
                    self.send(&changes).await
                }
            };
            if let Err(error) = step {
                return SessionEnd::Lasted(error);
            }
        }
    }

    /// Datagrams received on the connection so far (whatever they carried).
    pub fn received(&self) -> u64 {
        self.connection.stats().udp_rx.datagrams
    }

    async fn send(&mut self, frames: &[EdgeToHub]) -> Result<(), LinkError> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut buf = BytesMut::new();
        for frame in frames {
            buf.extend_from_slice(&link::encode(frame));
        }
        self.control_send.write_all(&buf).await?;
        Ok(())
    }

    fn on_control(
        &mut self,
        task: &LinkTask,
        frame: Option<Result<HubToEdge, LinkError>>,
    ) -> Result<(), LinkError> {
        match frame.ok_or(LinkError::ControlClosed)?? {
            HubToEdge::Apps(apps) => {
                task.apps.send_replace(Some(Arc::new(AppTable::new(apps)?)));
                Ok(())
            }
            HubToEdge::Connections(totals) => {
                task.quotas.heard(totals);
                Ok(())
            }
            HubToEdge::Refused { reason } => Err(LinkError::Refused(reason)),
            _ => Err(LinkError::Unexpected("channel frame on the control stream")),
        }
    }

    async fn on_channel(
        &mut self,
        task: &LinkTask,
        tracker: &mut Tracker,
        frame: Result<HubToEdge, LinkError>,
    ) -> Result<(), LinkError> {
        match frame? {
            HubToEdge::Subscribed {
                key,
                generation,
                seq,
                cached,
            } => {
                if tracker.subscribed(&key, generation, seq) {
                    let confirmed = Command::Confirmed {
                        key,
                        generation,
                        seq,
                        cached,
                        cache_ttl: self.cache_ttl,
                    };
                    task.index.send(confirmed).await;
                }
            }
            HubToEdge::Counted {
                key,
                generation,
                version,
            } => {
                let counted = Command::Counted {
                    key,
                    generation,
                    version,
                };
                task.index.send(counted).await;
            }
            HubToEdge::Presence(answer) => task.index.send(Command::Presence(answer)).await,
            HubToEdge::Replayed(replayed) => task.index.send(Command::Replayed(replayed)).await,
            HubToEdge::Event(event) => {
                task.stats.events_received.fetch_add(1, Ordering::Relaxed);
                match tracker.event(&event.key, event.seq) {
                    Verdict::Deliver => task.index.send(Command::Deliver(event)).await,
                    Verdict::Duplicate => {
                        task.stats.duplicate_events.fetch_add(1, Ordering::Relaxed);
                    }
                    Verdict::Gap(request) => {
                        task.stats.gap_events.fetch_add(1, Ordering::Relaxed);
                        if let Some(after) = request {
                            let backfill = EdgeToHub::Backfill {
                                key: event.key,
                                after,
                            };
                            self.send(&[backfill]).await?;
                        }
                    }
                    Verdict::Unwanted => {}
                }
            }
            HubToEdge::Truncated { key, resume_after } => {
                let lost = tracker.truncated(&key, resume_after);
                task.stats.events_lost.fetch_add(lost, Ordering::Relaxed);
                crate::metrics::events_lost(lost);
                tracing::warn!(message = "History did not cover a gap; events lost.", channel = %key.channel, lost);
            }
            HubToEdge::Welcome(_)
            | HubToEdge::Refused { .. }
            | HubToEdge::Apps(_)
            | HubToEdge::Connections(_) => {
                return Err(LinkError::Unexpected("control frame on a channel stream"));
            }
        }
        Ok(())
    }
}
