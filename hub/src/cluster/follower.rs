//! Following channels for the registry: subscribing (through the [`super::bus`]), reading a
//! channel's sequence, history and cache, and letting go.
//!
//! The registry's requests wait on the [`Pending`] board, coalesced per channel, so a burst — a
//! reconnect that has every channel catch up at once — is bounded by the channels the hub holds.
//! Each attach or fetch runs as a task on the hub's tracker, at most [`CONCURRENCY`] at a time;
//! the rest wait on the board until a slot frees.

use std::sync::Arc;

use herald_shared::channel::ChannelKey;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Cluster, ClusterError};
use crate::region::{Follow, Heard, Inboxes, Pending};

/// Attaches and fetches in flight at once.
pub const CONCURRENCY: usize = 32;

/// Serves the registry's following requests until `shutdown`.
pub async fn run(
    cluster: Cluster,
    pending: Arc<Pending>,
    inboxes: Inboxes,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = pending.follows_changed() => {}
        }
        for (key, follow) in pending.take_follows() {
            let after = match follow {
                Follow::Detach => {
                    cluster.bus().unwant(key);
                    continue;
                }
                Follow::Attach { after } | Follow::Fetch { after } => after,
            };
            let attach = matches!(follow, Follow::Attach { .. });
            // Asked before the wait for a slot, so the bus subscribes in the order requested.
            let subscribed = attach.then(|| cluster.bus().want(key.clone()));
            let slot = tokio::select! {
                _ = shutdown.cancelled() => return,
                slot = slots.clone().acquire_owned() => slot,
            };
            let Ok(slot) = slot else { return };
            let (cluster, inboxes) = (cluster.clone(), inboxes.clone());
            tracker.spawn(async move {
                let result = fetch(&cluster, &key, after, subscribed).await;
                let fetched = Heard::Fetched {
                    key,
                    after,
                    attached: attach,
                    result: result.map_err(Into::into),
                };
                inboxes.shard(fetched).await;
                drop(slot);
            });
        }
    }
}

async fn fetch(
    cluster: &Cluster,
    key: &ChannelKey,
    after: Option<u64>,
    subscribed: Option<tokio::sync::oneshot::Receiver<Result<(), super::bus::BusDown>>>,
) -> Result<crate::region::Fetched, ClusterError> {
    if let Some(subscribed) = subscribed {
        subscribed.await.map_err(|_| super::bus::BusDown)??;
    }
    cluster.fetch(key, after).await
}
