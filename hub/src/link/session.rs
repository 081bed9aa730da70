//! One edge connection, from `Hello` to `EdgeGone`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use herald_shared::link::{
    self, CLOSE_LAGGING, CLOSE_PROTOCOL_ERROR, CLOSE_REFUSED, CLOSE_SHUTDOWN, EdgeToHub, Hello,
    HubToEdge, LINK_VERSION, LinkCodecError, Welcome, claims,
};
use herald_shared::time::UnixTime;
use quinn::{Connection, Incoming, RecvStream, SendStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::LinkContext;
use crate::edge::{EdgeLink, LinkId};
use crate::region::Publication;

/// Why an edge is refused or its link ends, as the edge's `LinkError` names its side's causes.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The edge speaks another link version.
    #[error("link version {0} is not supported; this hub speaks {LINK_VERSION}")]
    Version(u16),
    /// The edge's token is invalid, expired or for another edge.
    #[error(transparent)]
    Token(#[from] claims::TokenError),
    /// The QUIC connection failed or closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A write to the edge failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading the control stream failed.
    #[error("read: {0}")]
    Read(#[from] std::io::Error),
    /// The edge sent a frame that does not decode.
    #[error(transparent)]
    Codec(#[from] LinkCodecError),
    /// The edge closed its control stream.
    #[error("the edge closed the control stream")]
    ControlClosed,
    /// The edge sent `Hello` twice.
    #[error("a second Hello")]
    SecondHello,
}

/// Frames written to a stream in one go.
const WRITE_BATCH: usize = 64;
/// How long a refused edge has to read the refusal before the connection is closed.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);

/// The hub's one link frame reader: bytes from a QUIC stream, frames from the shared decoder.
struct FromEdge;

impl Decoder for FromEdge {
    type Item = EdgeToHub;
    type Error = LinkError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<EdgeToHub>, LinkError> {
        Ok(link::decode_frame(buf)?)
    }
}

type Frames = FramedRead<RecvStream, FromEdge>;

/// Serves one incoming connection.
pub async fn serve(incoming: Incoming, context: Arc<LinkContext>, shutdown: CancellationToken) {
    let remote = incoming.remote_address();
    let connection = match tokio::time::timeout(context.settings.hello_timeout, incoming).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            tracing::debug!(message = "Link handshake failed.", %remote, %error);
            return;
        }
        Err(_) => {
            tracing::debug!(message = "Link handshake timed out.", %remote);
            return;
        }
    };
    let Some((control_send, control, hello)) = read_hello(&connection, &context).await else {
        return;
    };
    let (control_send, control) = match admit(&context, &hello) {
        Ok(()) => (control_send, control),
        Err(reason) => {
            context.stats.links_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(message = "Edge refused.", %remote, edge_id = %hello.edge_id, reason = %reason);
            refuse(&connection, control_send, &reason.to_string()).await;
            return;
        }
    };
    let link_id = LinkId::next();
    let span = tracing::info_span!("link", edge_id = %hello.edge_id, link_id = link_id.0);
    let relayed = relay(
        &connection,
        &context,
        &hello,
        link_id,
        control_send,
        control,
        &shutdown,
    )
    .instrument(span)
    .await;
    match relayed {
        Ok(code) => connection.close(code.into(), b"hub closing"),
        Err(reason) => {
            tracing::info!(message = "Edge link ended.", reason = %reason);
            connection.close(CLOSE_PROTOCOL_ERROR.into(), reason.to_string().as_bytes());
        }
    }
}

async fn read_hello(
    connection: &Connection,
    context: &LinkContext,
) -> Option<(SendStream, Frames, Hello)> {
    let first = async {
        let (send, recv) = connection.accept_bi().await.ok()?;
        let mut control = FramedRead::new(recv, FromEdge);
        match control.next().await? {
            Err(LinkError::Read(_)) => None,
            decoded => Some((send, control, decoded)),
        }
    };
    let (send, control, frame) =
        match tokio::time::timeout(context.settings.hello_timeout, first).await {
            Ok(Some(first)) => first,
            Ok(None) | Err(_) => {
                connection.close(CLOSE_PROTOCOL_ERROR.into(), b"expected Hello");
                return None;
            }
        };
    match frame {
        Ok(EdgeToHub::Hello(hello)) => Some((send, control, hello)),
        Ok(_) | Err(_) => {
            context.stats.links_refused.fetch_add(1, Ordering::Relaxed);
            refuse(connection, send, "the first frame must be a valid Hello").await;
            None
        }
    }
}

/// Checks the link version and the edge's token.
fn admit(context: &LinkContext, hello: &Hello) -> Result<(), LinkError> {
    if hello.version != LINK_VERSION {
        return Err(LinkError::Version(hello.version));
    }
    claims::verify(
        &context.cluster_key,
        &hello.token,
        hello.edge_id,
        UnixTime::from_system(SystemTime::now()).as_secs(),
    )?;
    Ok(())
}

async fn refuse(connection: &Connection, mut send: SendStream, reason: &str) {
    let refusal = HubToEdge::Refused {
        reason: reason.to_string(),
    };
    if send.write_all(&link::encode(&refusal)).await.is_ok() {
        let _ = send.finish();
        // Give the edge the chance to read the reason and close first.
        let _ = tokio::time::timeout(REFUSAL_GRACE, connection.closed()).await;
    }
    connection.close(CLOSE_REFUSED.into(), reason.as_bytes());
}

async fn relay(
    connection: &Connection,
    context: &LinkContext,
    hello: &Hello,
    link_id: LinkId,
    mut control_send: SendStream,
    mut control: Frames,
    shutdown: &CancellationToken,
) -> Result<u32, LinkError> {
    // Watched before the welcome is built, so a change in between is sent too.
    let mut apps = context.apps.changes();
    let welcome = HubToEdge::Welcome(Welcome {
        version: LINK_VERSION,
        hub_id: context.hub_id,
        channel_streams: context.settings.channel_streams,
        cache_ttl_ms: context.cache_ttl.as_millis() as u64,
        apps: context.apps.current().apps().cloned().collect(),
    });
    control_send.write_all(&link::encode(&welcome)).await?;
    let mut queues = Vec::new();
    for _ in 0..context.settings.channel_streams.max(1) {
        let stream = connection.open_uni().await?;
        let (tx, rx) = mpsc::channel(context.settings.stream_queue);
        tokio::spawn(write_stream(stream, rx));
        queues.push(tx);
    }
    let lagging = CancellationToken::new();
    let edge = Arc::new(EdgeLink::new(
        link_id,
        hello.edge_id,
        hello.session,
        queues,
        lagging.clone(),
    ));
    // A link is a standby until its first frame: an edge that relays through this hub reports
    // its connections at once, a standby link sends nothing until the edge fails over to it.
    let mut role = LinkRole::Standby;
    role.count(&context.stats, 1);
    context.console.edge_linked(hello.edge_id);
    tracing::info!(message = "Edge linked.");
    let mut totals = context.connections.totals();
    // The region's current totals go out at once; later ones when they change.
    totals.mark_changed();
    let ended = loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => break Ok(CLOSE_SHUTDOWN),
            Ok(()) = totals.changed() => {
                let frame = HubToEdge::Connections(totals.borrow_and_update().to_vec());
                if let Err(error) = control_send.write_all(&link::encode(&frame)).await {
                    break Err(error.into());
                }
                continue;
            }
            Ok(()) = apps.changed() => {
                let table = apps.borrow_and_update().clone();
                let frame = HubToEdge::Apps(table.apps().cloned().collect());
                if let Err(error) = control_send.write_all(&link::encode(&frame)).await {
                    break Err(error.into());
                }
                continue;
            }
            _ = lagging.cancelled() => {
                context.stats.lagging_edges.fetch_add(1, Ordering::Relaxed);
                break Ok(CLOSE_LAGGING);
            }
            frame = control.next() => frame,
        };
        let Some(frame) = frame else {
            break Err(LinkError::ControlClosed);
        };
        if role == LinkRole::Standby && frame.is_ok() {
            role.count(&context.stats, -1);
            role = LinkRole::Relaying;
            role.count(&context.stats, 1);
        }
        match frame {
            Ok(EdgeToHub::Interest(interest)) => {
                context.console.interest(hello.edge_id, &interest);
                context.registry.interest(edge.clone(), interest).await;
            }
            Ok(EdgeToHub::Backfill { key, after }) => {
                crate::metrics::backfill();
                context.registry.backfill(edge.clone(), key, after).await;
            }
            Ok(EdgeToHub::Replay(request)) => {
                crate::metrics::replay();
                context.registry.replay(edge.clone(), request).await;
            }
            Ok(EdgeToHub::Presence(change)) => {
                context.registry.presence(edge.clone(), change).await;
            }
            Ok(EdgeToHub::ClientEvent(event)) => {
                let allowed = context
                    .apps
                    .by_id(event.key.app.as_str())
                    .is_some_and(|app| app.settings.client_events);
                if allowed {
                    context.stats.client_events.fetch_add(1, Ordering::Relaxed);
                    context.webhooks.client_event(
                        &event.key,
                        &event.name,
                        &event.data,
                        event.socket,
                        event.user_id.as_deref(),
                    );
                    context.console.client_event(&event);
                    let publication = Publication {
                        key: event.key,
                        name: event.name,
                        data: event.data,
                        exclude: Some(event.socket),
                        user_id: event.user_id,
                    };
                    if let Err(error) = context.store.publish(publication).await {
                        tracing::warn!(message = "A client event could not be published.", %error);
                    }
                }
            }
            Ok(EdgeToHub::Watchlist {
                app,
                user_id,
                watchlist,
            }) => {
                context
                    .watchlist
                    .set(link_id, app, user_id, watchlist)
                    .await;
            }
            Ok(EdgeToHub::Connections(counts)) => {
                context
                    .console
                    .edge_connections(hello.edge_id, counts.clone());
                context.connections.report(link_id, hello.edge_id, counts);
            }
            Ok(EdgeToHub::Hello(_)) => break Err(LinkError::SecondHello),
            Err(error) => break Err(error),
        }
    };
    // A hub that stops leaves its edges' presence in place: they re-link to another hub and
    // re-assert it there (or the region reaps it). Only a lost edge is cleaned up here.
    if !matches!(ended, Ok(CLOSE_SHUTDOWN)) {
        context.registry.edge_gone(link_id).await;
        context.watchlist.edge_gone(link_id).await;
    }
    context.connections.gone(link_id);
    role.count(&context.stats, -1);
    context.console.edge_gone(hello.edge_id);
    ended
}

/// What an edge's link is to this hub: counted in `/stats` and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkRole {
    /// Linked, silent: the edge relays through another hub and fails over to this one.
    Standby,
    /// The edge relays through this hub.
    Relaying,
}

impl LinkRole {
    /// Counts a link of this role coming (`1`) or going (`-1`).
    fn count(self, stats: &crate::stats::HubStats, change: i8) {
        let counter = match self {
            Self::Standby => &stats.standby_links,
            Self::Relaying => &stats.edges,
        };
        if change > 0 {
            counter.fetch_add(1, Ordering::Relaxed);
        } else {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
        crate::metrics::edge_linked(self == Self::Standby, f64::from(change));
    }
}

/// Writes one channel stream's queue, in batches, until the queue or the stream closes.
async fn write_stream(mut stream: SendStream, mut queue: mpsc::Receiver<Bytes>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        if stream.write_all_chunks(&mut batch).await.is_err() {
            return;
        }
        batch.clear();
    }
    let _ = stream.finish();
}
