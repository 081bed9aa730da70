//! The group commit of what registry shards decided: counts, presence joins and leaves,
//! re-assertions and subscription-count announcements.
//!
//! One pipeline is in flight at a time, carrying every write recorded on the [`Pending`] board
//! since the previous one — no timer: under load the batches grow, idle a write goes out at once,
//! so a write costs about one Redis round trip (two when it just missed a pipeline). Within a
//! channel the writes keep the order the shard decided them, each one a script (atomic), so no
//! reader ever sees a member whose subscription is not counted yet, or a count that fell before
//! its member left. Once the pipeline is answered, each write is acknowledged to its shard:
//! counts as durable, joins with their outcome, announcements made or deferred.
//!
//! Scripts touch only their channel's keys (one hash slot on a Redis Cluster), so the indexes
//! around them are kept here: before a script, the channel is added to this hub's presence or
//! counted channels and to the app's channels; after it, the app's channels gain what a count
//! occupied (again, after any other hub's removal) and lose what it vacated
//! ([`Cluster::forget_channels`]), and this hub's counted channels lose those where it has no
//! entry left. The live hubs an announcement counts over are read just before the pipeline.
//!
//! When Redis fails, counts, leaves and re-assertions go back on the board in front of newer
//! writes and are retried after a back-off; joins are answered with the error (the client is
//! told, as it would be for any failed subscription); announcements are retried later.

use std::sync::Arc;
use std::time::Duration;

use herald_shared::backoff::backoff;
use herald_shared::channel::ChannelKey;
use redis::{FromRedisValue, RedisError, Value};
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError, Mark, UnexpectedReply};
use crate::region::{Heard, Inboxes, Op, Pending, RegionError, Taken};

/// Writes the registry's decisions until `shutdown`.
pub async fn run(
    cluster: Cluster,
    pending: Arc<Pending>,
    inboxes: Inboxes,
    max_backoff: Duration,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = pending.ops_changed() => {}
        }
        let taken = pending.take_ops();
        if taken.is_empty() {
            continue;
        }
        match write(&cluster, &taken).await {
            Ok(replies) => {
                failures = 0;
                if let Err(error) = index(&cluster, &taken, &replies).await {
                    // The scripts were applied; an index missed now is mended by the next write
                    // of the channel (a count adds it again).
                    tracing::warn!(message = "Cannot update the channel indexes in Redis.", %error);
                }
                report(&cluster, &taken, replies, &inboxes).await;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(message = "Cannot record counts and presence in Redis; retrying.", %error, attempt = failures);
                let pause = backoff(failures, max_backoff, fastrand::f64());
                let retried = fail(taken, Arc::new(error), pause, &inboxes).await;
                pending.requeue(retried);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Sends every write in one pipeline; returns one reply per write, in order.
async fn write(cluster: &Cluster, taken: &Taken) -> Result<Vec<Value>, ClusterError> {
    let scripts = cluster.scripts();
    let hub = cluster.hub_id().to_string();
    let keys = cluster.keys();
    let (maxlen, history_ttl) = cluster.history_args();
    let announces = taken
        .iter()
        .any(|(_, ops)| ops.iter().any(|op| matches!(op, Op::Announce { .. })));
    let live = if announces {
        cluster.live_hubs().await?
    } else {
        String::new()
    };
    // The indexes gain a channel before the script that needs it. One Redis runs the pipeline
    // in order; a cluster splits it by slot, so there the indexes go first, on their own.
    let mut connection = cluster.connection();
    let apart = connection.0.splits_pipelines();
    let mut indexes = redis::pipe();
    let mut pipe = redis::pipe();
    // EVALSHA needs the scripts loaded: a Redis that restarted has forgotten them.
    for script in [
        &scripts.count,
        &scripts.join,
        &scripts.leave,
        &scripts.announce,
    ] {
        pipe.load_script(script).ignore();
    }
    for (key, ops) in taken {
        // The scripts record the channel's removal webhooks with their delay.
        let delay = cluster.decisions().removal_delay(key).as_millis() as u64;
        let member = format!("{}\n{}", key.app, key.channel);
        for op in ops {
            match op {
                Op::Count { count, .. } if *count > 0 => {
                    let index = if apart { &mut indexes } else { &mut pipe };
                    index
                        .sadd(keys.hub_counts(cluster.hub_id()), &member)
                        .ignore();
                    index
                        .sadd(keys.app_channels(&key.app), key.channel.as_str())
                        .ignore();
                }
                Op::Join { .. } | Op::Reassert { .. } => {
                    let index = if apart { &mut indexes } else { &mut pipe };
                    index
                        .sadd(keys.hub_presence(cluster.hub_id()), &member)
                        .ignore();
                }
                Op::Count { .. } | Op::Leave { .. } | Op::Announce { .. } => {}
            }
            match op {
                Op::Count { counter, count, .. } => {
                    let mut call = cluster.channel_call(&scripts.count, key);
                    call.arg(&hub)
                        .arg(counter.edge.0)
                        .arg(counter.session)
                        .arg(*count)
                        .arg(delay);
                    pipe.invoke_script(&call);
                }
                Op::Join {
                    socket,
                    member,
                    limit,
                    ..
                } => {
                    let call = cluster.join_call(key, *socket, member, *limit, true, delay);
                    pipe.invoke_script(&call);
                }
                Op::Reassert { socket, member } => {
                    let call = cluster.join_call(key, *socket, member, usize::MAX, false, delay);
                    pipe.invoke_script(&call);
                }
                Op::Leave { socket } => {
                    let mut call = cluster.channel_call(&scripts.leave, key);
                    call.arg(&hub)
                        .arg(socket.to_string())
                        .arg(maxlen)
                        .arg(history_ttl)
                        .arg(delay);
                    pipe.invoke_script(&call);
                }
                Op::Announce { interval } => {
                    let mut call = cluster.channel_call(&scripts.announce, key);
                    call.arg(&hub)
                        .arg(interval.as_millis() as u64)
                        .arg(&live)
                        .arg(maxlen)
                        .arg(history_ttl);
                    pipe.invoke_script(&call);
                }
            }
        }
    }
    // On a Redis Cluster the delayed webhooks are kept around the scripts too: a channel whose
    // script may decide a removal is marked first, so that the removal is found even if this
    // hub dies before it adds the channel's check (`index`).
    if apart {
        let marked = taken.iter().filter_map(|(key, ops)| {
            ops.iter()
                .any(|op| {
                    matches!(
                        op,
                        Op::Count { count: 0, .. }
                            | Op::Leave { .. }
                            | Op::Join { .. }
                            | Op::Reassert { .. }
                    )
                })
                .then_some(key)
        });
        cluster.mark_removals(&mut indexes, marked, Mark::Before);
    }
    if !indexes.is_empty() {
        let () = indexes.query_async(&mut connection).await?;
    }
    let replies: Vec<Value> = pipe.query_async(&mut connection).await?;
    let expected: usize = taken.iter().map(|(_, ops)| ops.len()).sum();
    if replies.len() != expected {
        return Err(UnexpectedReply("a pipeline with a reply missing").into());
    }
    Ok(replies)
}

/// Keeps the indexes around applied counts: per channel, the last count decides whether the
/// app's channels gain it (occupied) or lose it (vacated), and whether this hub's counted
/// channels keep it.
async fn index(cluster: &Cluster, taken: &Taken, replies: &[Value]) -> Result<(), ClusterError> {
    let keys = cluster.keys();
    let mut replies = replies.iter();
    let mut occupied = redis::pipe();
    let mut any = false;
    let mut vacated = Vec::new();
    let mut left = Vec::new();
    let mut removed = Vec::new();
    for (key, ops) in taken {
        let mut last = None;
        for op in ops {
            let Some(reply) = replies.next() else { break };
            if let Op::Count { count, .. } = op
                && let Ok((outcome, mine)) = <(i64, i64)>::from_redis_value_ref(reply)
                && outcome != 0
            {
                last = Some((*count, outcome, mine));
                if outcome == 3 {
                    removed.push(key);
                }
            }
            if let Op::Leave { .. } = op
                && let Ok(user) = String::from_redis_value_ref(reply)
                && !user.is_empty()
            {
                removed.push(key);
            }
        }
        let Some((count, outcome, mine)) = last else {
            continue;
        };
        if count > 0 {
            occupied
                .sadd(keys.app_channels(&key.app), key.channel.as_str())
                .ignore();
            any = true;
        } else if outcome == 3 {
            vacated.push(key);
        }
        if mine == 0 {
            left.push(format!("{}\n{}", key.app, key.channel));
        }
    }
    // On a Redis Cluster, the channels' checks of the removals their scripts decided.
    // A check that cannot be added leaves the channel's marker to find the removal.
    let mut checks = redis::pipe();
    removed.dedup();
    if cluster.mark_removals(&mut checks, removed, Mark::After)
        && let Err(error) = checks.query_async::<()>(&mut cluster.connection()).await
    {
        tracing::warn!(message = "Cannot add the delayed webhooks' checks; their markers stand in.", %error);
    }
    if !left.is_empty() {
        occupied
            .srem(keys.hub_counts(cluster.hub_id()), left)
            .ignore();
        any = true;
    }
    if any {
        let () = occupied.query_async(&mut cluster.connection()).await?;
    }
    cluster.forget_channels(&vacated).await
}

/// Acknowledges each write to the shard owning its channel.
async fn report(cluster: &Cluster, taken: &Taken, replies: Vec<Value>, inboxes: &Inboxes) {
    let mut replies = replies.into_iter();
    for (key, ops) in taken {
        for op in ops {
            let Some(reply) = replies.next() else { return };
            decided(cluster, key, op, &reply);
            if let Some(heard) = answer(key, op, reply) {
                inboxes.shard(heard).await;
            }
        }
    }
}

/// Tells the region's decisions a write made (see the scripts' replies) to whoever listens.
/// Removals are not told: the scripts recorded them with their delay (and an arrival that
/// undid one is not told either: count 4, join `returned`).
fn decided(cluster: &Cluster, key: &ChannelKey, op: &Op, reply: &Value) {
    let decisions = cluster.decisions();
    match op {
        Op::Count { .. } => {
            if let Ok((2, _)) = <(i64, i64)>::from_redis_value_ref(reply) {
                decisions.occupied(key);
            }
        }
        Op::Join { member, .. } => {
            if let Ok((outcome, _, _)) = <(String, Value, Value)>::from_redis_value_ref(reply)
                && outcome == "added"
            {
                decisions.member_added(key, &member.user_id);
            }
        }
        Op::Announce { .. } => {
            if let Ok((1, count)) = <(u8, u64)>::from_redis_value_ref(reply) {
                decisions.counted(key, count);
            }
        }
        Op::Reassert { .. } | Op::Leave { .. } => {}
    }
}

fn answer(key: &ChannelKey, op: &Op, reply: Value) -> Option<Heard> {
    match op {
        Op::Count {
            counter,
            generation,
            version,
            ..
        } => Some(Heard::Counted {
            key: key.clone(),
            counter: *counter,
            generation: *generation,
            version: *version,
        }),
        Op::Join {
            socket, join_id, ..
        } => {
            let outcome = <(String, String, Vec<String>)>::from_redis_value(reply)
                .map_err(|error| ClusterError::from(RedisError::from(error)))
                .and_then(Cluster::join_outcome)
                .map_err(RegionError::from);
            Some(Heard::Joined {
                key: key.clone(),
                socket: *socket,
                join_id: *join_id,
                outcome,
            })
        }
        Op::Announce { .. } => {
            let retry_after = match <(u8, u64)>::from_redis_value(reply) {
                Ok((1, _)) => None,
                Ok((_, lock_ms)) => Some(Duration::from_millis(lock_ms)),
                Err(error) => {
                    tracing::warn!(message = "Unexpected answer to a count announcement.", %error);
                    None
                }
            };
            Some(Heard::Announced {
                key: key.clone(),
                retry_after,
            })
        }
        Op::Reassert { .. } | Op::Leave { .. } => None,
    }
}

/// The pipeline failed: answers the joins with the error and defers the announcements; returns
/// the writes to retry (counts, leaves, re-assertions), in order.
async fn fail(taken: Taken, error: Arc<ClusterError>, pause: Duration, inboxes: &Inboxes) -> Taken {
    let mut retried = Vec::new();
    for (key, ops) in taken {
        let mut kept = Vec::new();
        for op in ops {
            match op {
                Op::Join {
                    socket, join_id, ..
                } => {
                    let joined = Heard::Joined {
                        key: key.clone(),
                        socket,
                        join_id,
                        outcome: Err(RegionError::Store(Box::new(error.clone()))),
                    };
                    inboxes.shard(joined).await;
                }
                Op::Announce { .. } => {
                    let announced = Heard::Announced {
                        key: key.clone(),
                        retry_after: Some(pause),
                    };
                    inboxes.shard(announced).await;
                }
                Op::Count { .. } | Op::Leave { .. } | Op::Reassert { .. } => kept.push(op),
            }
        }
        if !kept.is_empty() {
            retried.push((key, kept));
        }
    }
    retried
}
