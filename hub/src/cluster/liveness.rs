//! Heartbeats and the reaping of dead hubs.
//!
//! Every hub refreshes its score in the hubs sorted set (the time its heartbeat expires) five
//! times per TTL. Every hub also watches the earliest expiry in the set and wakes up for it, so a
//! hub that stopped beating is reaped as soon as its TTL has passed since its last heartbeat —
//! not at the next round of a periodic sweep. One hub (whoever takes the reap lock) removes the
//! dead hub's presence sockets that no live hub took over — one script per channel, all in one
//! pipeline, publishing `member_removed` for users left with no socket — and the counts it wrote
//! that no live hub rewrote, takes its signed-in users offline, then forgets the hub. Edges of a
//! dead hub re-link to other hubs within the link timeout and re-assert their sockets and counts
//! there, well inside the TTL, so their users never flap and nothing is counted twice.

use std::time::Duration;

use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::ids::{AppId, HubId};
use redis::{AsyncCommands, FromRedisValue, RedisError, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError, Mark, unix_ms};

/// Beats and reaps until `shutdown`.
pub async fn run(cluster: Cluster, shutdown: CancellationToken) {
    let period = (cluster.hub_ttl() / 5).max(Duration::from_millis(100));
    let mut next_beat = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_beat {
            next_beat = now + period;
            if let Err(error) = beat(&cluster).await {
                tracing::warn!(message = "Cannot send the hub heartbeat to Redis.", %error);
            }
        }
        let next_expiry = match reap(&cluster).await {
            Ok(next_expiry) => next_expiry,
            Err(error) => {
                tracing::warn!(message = "Cannot reap dead hubs.", %error);
                None
            }
        };
        let wake = next_expiry.map_or(next_beat, |expiry| expiry.min(next_beat));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

async fn beat(cluster: &Cluster) -> Result<(), ClusterError> {
    let ttl = cluster.hub_ttl().as_millis() as u64;
    let () = cluster
        .connection()
        .zadd(
            cluster.keys().hubs(),
            cluster.hub_id().to_string(),
            unix_ms() + ttl,
        )
        .await?;
    Ok(())
}

/// Reaps every hub whose heartbeat expired; returns when the next one expires (just after).
async fn reap(cluster: &Cluster) -> Result<Option<Instant>, ClusterError> {
    let keys = cluster.keys();
    let mut redis = cluster.connection();
    let now_ms = unix_ms();
    let dead: Vec<String> = redis.zrangebyscore(keys.hubs(), "-inf", now_ms).await?;
    for hub in dead {
        match hub.parse::<HubId>() {
            Ok(id) => reap_hub(cluster, id).await?,
            Err(_) => {
                let () = redis.zrem(keys.hubs(), &hub).await?;
            }
        }
    }
    let next: Vec<(String, u64)> = redis
        .zrangebyscore_limit_withscores(keys.hubs(), format!("({now_ms}"), "+inf", 0, 1)
        .await?;
    Ok(next.first().map(|(_, expires_ms)| {
        Instant::now() + Duration::from_millis(expires_ms.saturating_sub(unix_ms()) + 1)
    }))
}

async fn reap_hub(cluster: &Cluster, id: HubId) -> Result<(), ClusterError> {
    let keys = cluster.keys();
    let mut redis = cluster.connection();
    let lock: Option<String> = redis::cmd("SET")
        .arg(keys.reap_lock(id))
        .arg(cluster.hub_id().to_string())
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query_async(&mut redis)
        .await?;
    if lock.is_none() {
        return Ok(());
    }
    let hub = id.to_string();
    let channels = |members: Vec<String>| -> Vec<ChannelKey> {
        members
            .iter()
            .filter_map(|member| member.split_once('\n'))
            .filter_map(|(app, name)| {
                let channel = ChannelName::parse(name).ok()?;
                Some(ChannelKey::new(AppId::new(app), channel))
            })
            .collect()
    };
    let presence = channels(redis.smembers(keys.hub_presence(id)).await?);
    let counted = channels(redis.smembers(keys.hub_counts(id)).await?);
    let (maxlen, history_ttl) = cluster.history_args();
    let scripts = cluster.scripts();
    let mut pipe = redis::pipe();
    pipe.load_script(&scripts.reap).ignore();
    pipe.load_script(&scripts.reap_counts).ignore();
    // The scripts record the removals' webhooks with their delay.
    let delay = |key: &ChannelKey| cluster.decisions().removal_delay(key).as_millis() as u64;
    for key in &presence {
        let mut call = cluster.channel_call(&scripts.reap, key);
        call.arg(&hub).arg(maxlen).arg(history_ttl).arg(delay(key));
        pipe.invoke_script(&call);
    }
    for key in &counted {
        let mut call = cluster.channel_call(&scripts.reap_counts, key);
        call.arg(&hub).arg(delay(key));
        pipe.invoke_script(&call);
    }
    // On a Redis Cluster the channels are marked first (see `writer`).
    let mut marks = redis::pipe();
    if cluster.mark_removals(&mut marks, presence.iter().chain(&counted), Mark::Before) {
        let () = marks.query_async(&mut redis).await?;
    }
    let replies: Vec<Value> = pipe.query_async(&mut redis).await?;
    // Only the sockets removed are counted here: the users whose last socket that was, and the
    // channels it vacated, had their webhooks recorded by the scripts.
    let mut sockets = 0i64;
    let mut empty = Vec::new();
    let mut removed = Vec::new();
    for (index, (key, reply)) in presence.iter().chain(&counted).zip(replies).enumerate() {
        let reply = Vec::<Value>::from_redis_value(reply).map_err(RedisError::from)?;
        let mut numbers = reply.into_iter().map(|value| {
            i64::from_redis_value(value)
                .map_err(|error| ClusterError::from(RedisError::from(error)))
        });
        let count = numbers.next().transpose()?.unwrap_or(0);
        if index < presence.len() {
            sockets += count;
            if numbers.next().is_some() {
                // A user whose last socket that was: a member_removed waits.
                removed.push(key);
            }
        } else {
            if numbers.next().transpose()? == Some(1) {
                removed.push(key);
            }
            if numbers.next().transpose()? == Some(1) {
                // A counts reap that left the channel with no count: out of the app's channels.
                empty.push(key);
            }
        }
    }
    // A check that cannot be added leaves the channel's marker to find the removal.
    let mut checks = redis::pipe();
    if cluster.mark_removals(&mut checks, removed, Mark::After)
        && let Err(error) = checks.query_async::<()>(&mut redis).await
    {
        tracing::warn!(message = "Cannot add the delayed webhooks' checks; their markers stand in.", %error);
    }
    cluster.forget_channels(&empty).await?;
    let users = cluster.forget_online_on(id).await?;
    let mut pipe = redis::pipe();
    pipe.del(keys.hub_presence(id)).ignore();
    pipe.del(keys.hub_counts(id)).ignore();
    let () = pipe.query_async(&mut redis).await?;
    // Forgotten last, on its own: these keys may live on different shards, and the hub must
    // stay reapable until its indexes are gone.
    let () = redis.zrem(keys.hubs(), &hub).await?;
    tracing::info!(message = "Reaped a dead hub.", hub = %hub, sockets, channels = presence.len(), counted = counted.len(), users);
    Ok(())
}
