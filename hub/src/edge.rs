//! The hub's handle to one linked edge: the queues of its channel streams. The link session
//! creates it; registry shards hold it to queue frames. It sits below both, so the registry
//! never imports the link.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use herald_shared::channel::ChannelKey;
use herald_shared::ids::EdgeId;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

/// Identifies one accepted link (an edge that reconnects gets a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

impl LinkId {
    /// A fresh id, unique within this process.
    pub fn next() -> Self {
        Self(NEXT_LINK.fetch_add(1, Ordering::Relaxed))
    }
}

/// A linked edge, as registry shards see it. Sending never waits: when a stream's queue is full
/// the edge is lagging, and the link is closed so the edge reconnects and resumes from history
/// (a decision, counted and logged, never a silent drop).
#[derive(Debug)]
pub struct EdgeLink {
    /// This link.
    pub link_id: LinkId,
    /// The edge's own id.
    pub edge_id: EdgeId,
    /// The edge's link session: grows with each session of the edge, whichever hub it links to,
    /// so the region can tell a later session's counts from an earlier one's.
    pub session: u64,
    streams: Vec<mpsc::Sender<Bytes>>,
    lagging: CancellationToken,
}

impl EdgeLink {
    /// A handle over the given stream queues.
    pub fn new(
        link_id: LinkId,
        edge_id: EdgeId,
        session: u64,
        streams: Vec<mpsc::Sender<Bytes>>,
        lagging: CancellationToken,
    ) -> Self {
        Self {
            link_id,
            edge_id,
            session,
            streams,
            lagging,
        }
    }

    /// Queues an encoded frame about `key` on the channel's stream.
    pub fn send(&self, key: &ChannelKey, frame: Bytes) {
        self.send_hashed(key.stable_hash(), frame);
    }

    /// [`EdgeLink::send`] with the channel's [`ChannelKey::stable_hash`] already computed.
    pub fn send_hashed(&self, hash: u64, frame: Bytes) {
        let Some(stream) = self
            .streams
            .get((hash % self.streams.len().max(1) as u64) as usize)
        else {
            return;
        };
        match stream.try_send(frame) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                if !self.lagging.is_cancelled() {
                    tracing::warn!(message = "Edge is lagging; closing its link so it resumes from history.", edge_id = %self.edge_id);
                    self.lagging.cancel();
                }
            }
        }
    }
}
