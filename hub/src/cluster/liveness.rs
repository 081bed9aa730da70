//! Heartbeats and the reaping of dead hubs.
//!
//! Every hub refreshes its score in the hubs sorted set (the time its heartbeat expires) and the
//! expiry of its per-hub keys several times per TTL. Every hub also looks for hubs whose score
//! has passed: one of them (whoever takes the reap lock) removes the dead hub's presence sockets
//! that no live hub took over — one script per channel, all in one pipeline, publishing
//! `member_removed` for users left with no socket — and takes its signed-in users offline there,
//! then forgets the hub. Edges of a dead hub re-link to other hubs within a few seconds and
//! re-assert their sockets there, well inside the TTL, so their users never flap.

use std::time::Duration;

use herald_shared::ids::{AppId, HubId};
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError, unix_ms};

/// Beats and reaps until `shutdown`.
pub async fn run(cluster: Cluster, shutdown: CancellationToken) {
    let period = cluster.hub_ttl() / 5;
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = beat(&cluster).await {
            tracing::warn!(message = "Cannot send the hub heartbeat to Redis.", %error);
            continue;
        }
        if let Err(error) = reap(&cluster).await {
            tracing::warn!(message = "Cannot reap dead hubs.", %error);
        }
    }
}

async fn beat(cluster: &Cluster) -> Result<(), ClusterError> {
    let keys = cluster.keys();
    let hub = cluster.hub_id();
    let ttl = cluster.hub_ttl().as_millis() as i64;
    let mut redis = cluster.connection();
    let apps: Vec<String> = redis.smembers(keys.count_apps(hub)).await?;
    let mut pipe = redis::pipe();
    pipe.zadd(keys.hubs(), hub.to_string(), unix_ms() + ttl as u64)
        .ignore();
    pipe.pexpire(keys.count_apps(hub), ttl).ignore();
    for app in apps {
        pipe.pexpire(keys.counts(hub, &AppId::new(app)), ttl)
            .ignore();
    }
    let () = pipe.query_async(&mut redis).await?;
    Ok(())
}

async fn reap(cluster: &Cluster) -> Result<(), ClusterError> {
    let keys = cluster.keys();
    let mut redis = cluster.connection();
    let dead: Vec<String> = redis.zrangebyscore(keys.hubs(), "-inf", unix_ms()).await?;
    for hub in dead {
        let Ok(id) = hub.parse::<HubId>() else {
            let _: () = redis.zrem(keys.hubs(), &hub).await?;
            continue;
        };
        let lock: Option<String> = redis::cmd("SET")
            .arg(keys.reap_lock(id))
            .arg(cluster.hub_id().to_string())
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut redis)
            .await?;
        if lock.is_none() {
            continue;
        }
        let channels: Vec<String> = redis.smembers(keys.hub_presence(id)).await?;
        let (maxlen, history_ttl) = cluster.history_args();
        let script = &cluster.scripts().reap;
        let mut pipe = redis::pipe();
        pipe.load_script(script).ignore();
        for (app, name) in channels.iter().filter_map(|c| c.split_once('\n')) {
            pipe.invoke_script(
                script
                    .arg(keys.prefix())
                    .arg(app)
                    .arg(name)
                    .arg(&hub)
                    .arg(maxlen)
                    .arg(history_ttl),
            );
        }
        let removed: Vec<i64> = pipe.query_async(&mut redis).await?;
        let removed: i64 = removed.iter().sum();
        let users = cluster.forget_online_on(id).await?;
        let mut pipe = redis::pipe();
        pipe.del(keys.hub_presence(id)).ignore();
        pipe.zrem(keys.hubs(), &hub).ignore();
        let () = pipe.query_async(&mut redis).await?;
        tracing::info!(message = "Reaped a dead hub.", hub = %hub, sockets = removed, channels = channels.len(), users = users);
    }
    Ok(())
}
