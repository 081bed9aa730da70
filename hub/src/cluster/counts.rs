//! Writing this hub's subscription counts to Redis, and announcing counts to subscribers.
//!
//! Shards record a channel's hub-local count on the [`CountBoard`] whenever it changes; the
//! writer takes the changes every [`FLUSH_INTERVAL`] and writes them in one pipeline to this
//! hub's count hash of each app (which expires with the hub's heartbeat). For apps with
//! subscription-count events, the writer then announces the region's count on each changed
//! channel — at most once per interval per channel for the whole region, thanks to a short
//! Redis lock; a change that finds the lock taken is announced at the next interval.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_shared::app::AppTable;
use herald_shared::channel::ChannelKey;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use crate::registry::{Publication, announces_counts};

/// How often changed counts are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Counts waiting to be written: the latest value per channel.
#[derive(Debug, Default)]
pub struct CountBoard {
    changed: Mutex<HashMap<ChannelKey, u64>>,
}

impl CountBoard {
    /// Records a channel's hub-local count.
    pub fn set(&self, key: ChannelKey, count: u64) {
        self.changed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, count);
    }

    fn take(&self) -> HashMap<ChannelKey, u64> {
        std::mem::take(&mut *self.changed.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Writes counts (and announces them) until `shutdown`.
pub async fn run(
    cluster: Cluster,
    apps: Arc<AppTable>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let board = cluster.count_board();
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    let mut to_announce: HashSet<ChannelKey> = HashSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let changed = board.take();
        if !changed.is_empty() {
            if let Err(error) = write(&cluster, &changed).await {
                tracing::warn!(message = "Cannot write subscription counts to Redis.", %error);
                // Keep them for the next round.
                for (key, count) in changed {
                    board.set(key, count);
                }
                continue;
            }
            to_announce.extend(
                changed
                    .into_keys()
                    .filter(|key| announces_counts(&apps, key)),
            );
        }
        let mut retry = HashSet::new();
        for key in to_announce.drain() {
            match announce(&cluster, &key, interval).await {
                Ok(true) => {}
                Ok(false) => {
                    retry.insert(key);
                }
                Err(error) => {
                    tracing::warn!(message = "Cannot announce a subscription count.", %error);
                    retry.insert(key);
                }
            }
        }
        to_announce = retry;
    }
}

async fn write(
    cluster: &Cluster,
    changed: &HashMap<ChannelKey, u64>,
) -> Result<(), super::ClusterError> {
    let keys = cluster.keys();
    let hub = cluster.hub_id();
    let ttl = cluster.hub_ttl().as_millis() as u64;
    let mut pipe = redis::pipe();
    let mut apps = HashSet::new();
    for (key, count) in changed {
        let hash = keys.counts(hub, &key.app);
        if *count == 0 {
            pipe.hdel(&hash, key.channel.as_str()).ignore();
        } else {
            pipe.hset(&hash, key.channel.as_str(), *count).ignore();
        }
        apps.insert(&key.app);
    }
    for app in apps {
        pipe.pexpire(keys.counts(hub, app), ttl as i64).ignore();
        pipe.sadd(keys.count_apps(hub), app.as_str()).ignore();
    }
    pipe.pexpire(keys.count_apps(hub), ttl as i64).ignore();
    let () = pipe.query_async(&mut cluster.connection()).await?;
    Ok(())
}

/// Publishes the region's count if no hub announced this channel within `interval`; returns
/// whether it did.
async fn announce(
    cluster: &Cluster,
    key: &ChannelKey,
    interval: Duration,
) -> Result<bool, super::ClusterError> {
    let mut redis = cluster.connection();
    let locked: Option<String> = redis::cmd("SET")
        .arg(cluster.keys().count_announcement(key))
        .arg(cluster.hub_id().to_string())
        .arg("NX")
        .arg("PX")
        .arg(interval.as_millis() as u64)
        .query_async(&mut redis)
        .await?;
    if locked.is_none() {
        return Ok(false);
    }
    let count = cluster.subscription_count(key).await?;
    let publication = Publication::subscription_count(key.clone(), count);
    cluster.publish(&publication).await?;
    Ok(true)
}
