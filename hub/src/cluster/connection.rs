//! The region's command connection: one multiplexed connection to one primary, or a Redis
//! Cluster connection that sends each command to the shard owning its slot.
//!
//! Both are `aio::ConnectionLike`, so the region's code builds commands, scripts and pipelines
//! once. What differs is pipelines: redis-rs sends a cluster pipeline to one node and refuses
//! one whose keys span slots, while the region's pipelines carry many channels (the writer's
//! group commit, the queries over an app's channels). On a cluster, [`RedisConnection`] splits a
//! pipeline by slot and sends the parts at once, each part to its slot's owner:
//! - the commands of one slot keep their order (one part, one pipeline), so a channel's writes
//!   keep the order the writer promises; commands of different slots have no order between
//!   them — a caller that needs one sends two pipelines (the writer does, see
//!   [`RedisConnection::splits_pipelines`]);
//! - a command without a key (`SCRIPT LOAD`, `WAIT`, `PING`) goes into every part at its place,
//!   so each node has the scripts its part runs; its reply is the lowest number among the parts
//!   when all are numbers (`WAIT`: the replicas every part reached), else the first part's;
//! - replies come back in the pipeline's order; a failed part fails the whole pipeline (as a
//!   dropped connection would; every caller retries);
//! - a transaction (`MULTI`/`EXEC`) is passed through: it must stay in one slot.

use std::collections::HashMap;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection to the region's Redis, whichever way it runs; cheap to clone.
#[derive(Clone)]
pub enum RedisConnection {
    /// One primary (reconnecting by itself).
    Standalone(ConnectionManager),
    /// A Redis Cluster: commands routed by slot, following `MOVED`/`ASK` and failovers.
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Whether pipelines are split by slot (a cluster): commands of different slots in one
    /// pipeline then run in no particular order.
    pub fn splits_pipelines(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => {
                if pipeline.is_transaction() || offset != 0 || count != pipeline.len() {
                    return connection.req_packed_commands(pipeline, offset, count);
                }
                let connection = connection.clone();
                Box::pin(split(connection, pipeline))
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

/// The key a command is routed by: the first key of a script call, else its first argument;
/// `None` for commands without a key.
fn routing_key(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let name = args.next()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let _script = args.next()?;
            let keys: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
            if keys == 0 { None } else { args.next() }
        }
        b"SCRIPT" | b"WAIT" | b"PING" | b"INFO" | b"FUNCTION" | b"CLUSTER" => None,
        _ => args.next(),
    }
}

/// Which part each command of a pipeline goes to: `Some(part)` for a keyed command, `None` for
/// one that goes to every part; and how many parts there are.
fn plan(pipeline: &Pipeline) -> (Vec<Option<usize>>, usize) {
    let mut parts: HashMap<Slot, usize> = HashMap::new();
    let placed = pipeline
        .cmd_iter()
        .map(|cmd| {
            routing_key(cmd).map(|key| {
                let next = parts.len();
                *parts.entry(Slot::for_key(key)).or_insert(next)
            })
        })
        .collect();
    (placed, parts.len())
}

/// Sends a pipeline as one pipeline per slot, at once; the replies in the pipeline's order.
async fn split(
    connection: ClusterConnection,
    pipeline: &Pipeline,
) -> redis::RedisResult<Vec<Value>> {
    let (placed, count) = plan(pipeline);
    if count <= 1 {
        let mut connection = connection;
        return connection
            .req_packed_commands(pipeline, 0, pipeline.len())
            .await;
    }
    let mut parts: Vec<Pipeline> = (0..count).map(|_| redis::pipe()).collect();
    // Where each command's reply is in each part: (part, index) for keyed commands; the index
    // in every part for keyless ones.
    let mut places: Vec<Result<(usize, usize), Vec<usize>>> = Vec::with_capacity(placed.len());
    for (cmd, part) in pipeline.cmd_iter().zip(&placed) {
        match part {
            Some(part) => {
                places.push(Ok((*part, parts[*part].len())));
                parts[*part].add_command(cmd.clone());
            }
            None => {
                places.push(Err(parts.iter().map(Pipeline::len).collect()));
                for part in &mut parts {
                    part.add_command(cmd.clone());
                }
            }
        }
    }
    let replies = try_join_all(parts.iter().map(|part| {
        let mut connection = connection.clone();
        async move { connection.req_packed_commands(part, 0, part.len()).await }
    }))
    .await?;
    Ok(places
        .into_iter()
        .map(|place| match place {
            Ok((part, index)) => replies[part].get(index).cloned().unwrap_or(Value::Nil),
            Err(indexes) => keyless_reply(
                indexes
                    .iter()
                    .zip(&replies)
                    .filter_map(|(index, part)| part.get(*index)),
            ),
        })
        .collect())
}

/// The reply of a command sent to every part: the lowest number when all are numbers, else the
/// first.
fn keyless_reply<'a>(mut replies: impl Iterator<Item = &'a Value> + Clone) -> Value {
    let numbers: Option<Vec<i64>> = replies
        .clone()
        .map(|reply| match reply {
            Value::Int(n) => Some(*n),
            _ => None,
        })
        .collect();
    match numbers.and_then(|numbers| numbers.into_iter().min()) {
        Some(lowest) => Value::Int(lowest),
        None => replies.next().cloned().unwrap_or(Value::Nil),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_are_planned_by_slot_with_keyless_commands_everywhere() {
        let script = redis::Script::new("return 1");
        let mut pipe = redis::pipe();
        pipe.load_script(&script).ignore();
        pipe.sadd("p:hc:1", "x").ignore();
        let mut a = script.prepare_invoke();
        a.key("p:seq:{a:one}").key("p:hist:{a:one}");
        pipe.invoke_script(&a);
        let mut b = script.prepare_invoke();
        b.key("p:seq:{a:two}");
        pipe.invoke_script(&b);
        pipe.get("p:cache:{a:one}");
        pipe.cmd("WAIT").arg(1).arg(100);
        let (placed, parts) = plan(&pipe);
        assert_eq!(parts, 3);
        assert_eq!(placed, vec![None, Some(0), Some(1), Some(2), Some(1), None]);
    }

    #[test]
    fn a_script_without_keys_has_no_routing_key() {
        let script = redis::Script::new("return 1");
        let mut pipe = redis::pipe();
        pipe.invoke_script(&script.prepare_invoke());
        let (placed, parts) = plan(&pipe);
        assert_eq!((placed, parts), (vec![None], 0));
    }

    #[test]
    fn a_keyless_reply_is_the_lowest_number_or_the_first() {
        let ints = [Value::Int(2), Value::Int(1), Value::Int(3)];
        assert_eq!(keyless_reply(ints.iter()), Value::Int(1));
        let okays = [Value::Okay, Value::Int(1)];
        assert_eq!(keyless_reply(okays.iter()), Value::Okay);
    }
}
