//! Publishes that wait for replicas (`redis.min_replicas_acked`), group-committed.
//!
//! A `WAIT` holds up every command behind it on its connection, so these publishes have a
//! connection of their own, and one task sends them: everything queued while the previous batch
//! was in flight goes out as one pipeline — the scripts, then a single `WAIT` covering all of
//! them (it waits for every write made on its connection before it). No timer: idle, a publish
//! goes out at once and costs one replication round trip; under load, one round trip serves the
//! whole batch. Each publish is answered with its sequence once enough replicas acknowledged,
//! or with [`ClusterError::NotReplicated`] (the trigger is answered 503, never a false 200).

use std::time::Duration;

use super::connection::RedisConnection;
use redis::{FromRedisValue, RedisResult, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::ClusterError;
use crate::metrics::TimedRedis;

/// Publishes waiting for the task.
const QUEUE: usize = 4096;
/// The most publishes one pipeline carries.
const BATCH: usize = 512;

/// One publish: its script call (a pipeline of one `EVALSHA`) and who waits for its sequence.
struct Request {
    call: redis::Pipeline,
    answer: oneshot::Sender<Result<String, ClusterError>>,
}

/// A handle to the task.
#[derive(Clone)]
pub struct Replicated {
    queue: mpsc::Sender<Request>,
}

/// What the task needs.
pub struct Settings {
    /// The task's own connection.
    pub connection: RedisConnection,
    /// Loads the publish script (`SCRIPT LOAD`): a Redis that restarted forgot it.
    pub load: redis::Cmd,
    /// Replicas that must acknowledge.
    pub wanted: u32,
    /// How long `WAIT` waits for them.
    pub timeout: Duration,
}

/// The task stopped (the hub is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the replicated publisher stopped")]
pub struct Stopped;

impl Replicated {
    /// Creates the handle and the task, to be spawned by the caller until `shutdown`.
    pub fn new(
        settings: Settings,
        shutdown: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (queue, requests) = mpsc::channel(QUEUE);
        (Self { queue }, run(settings, requests, shutdown))
    }

    /// Publishes with `call` (a pipeline of one script call); answers its reply once the
    /// replicas acknowledged it.
    pub async fn publish(&self, call: redis::Pipeline) -> Result<String, ClusterError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Request { call, answer })
            .await
            .map_err(|_| Stopped)?;
        answered.await.map_err(|_| Stopped)?
    }
}

async fn run(
    settings: Settings,
    mut requests: mpsc::Receiver<Request>,
    shutdown: CancellationToken,
) {
    let mut connection = TimedRedis(settings.connection.clone());
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            request = requests.recv() => match request {
                Some(request) => request,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.add_command(settings.load.clone());
        for request in &batch {
            for command in request.call.cmd_iter() {
                pipe.add_command(command.clone());
            }
        }
        pipe.cmd("WAIT")
            .arg(settings.wanted)
            .arg(settings.timeout.as_millis().max(1) as u64);
        let replied: RedisResult<Vec<RedisResult<Value>>> = pipe.query_async(&mut connection).await;
        answer(batch, replied, &settings);
    }
}

/// Answers each publish of a batch from the pipeline's replies: `[load, script…, WAIT]`.
fn answer(batch: Vec<Request>, replied: RedisResult<Vec<RedisResult<Value>>>, settings: &Settings) {
    let replies = match replied {
        Ok(replies) if replies.len() == batch.len() + 2 => replies,
        Ok(_) => {
            for request in batch {
                let missing = super::UnexpectedReply("a pipeline with a reply missing");
                let _ = request.answer.send(Err(missing.into()));
            }
            return;
        }
        Err(error) => {
            for request in batch {
                let _ = request.answer.send(Err(error.clone().into()));
            }
            return;
        }
    };
    let mut replies = replies.into_iter().skip(1);
    let scripts: Vec<RedisResult<Value>> = replies.by_ref().take(batch.len()).collect();
    let acked = replies
        .next()
        .and_then(|wait| wait.ok())
        .and_then(|wait| i64::from_redis_value(wait).ok());
    for (request, reply) in batch.into_iter().zip(scripts) {
        let outcome = match (reply, acked) {
            (Err(error), _) => Err(error.into()),
            (Ok(_), acked) if acked.unwrap_or(0) < i64::from(settings.wanted) => {
                Err(ClusterError::NotReplicated {
                    acked: acked.unwrap_or(0),
                    wanted: settings.wanted,
                    timeout: settings.timeout,
                })
            }
            (Ok(seq), _) => {
                String::from_redis_value(seq).map_err(|e| redis::RedisError::from(e).into())
            }
        };
        let _ = request.answer.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(wanted: u32) -> Settings {
        let client = redis::Client::open("redis://127.0.0.1:1/").expect("a URL");
        let config = redis::aio::ConnectionManagerConfig::new();
        Settings {
            connection: RedisConnection::Standalone(
                redis::aio::ConnectionManager::new_lazy_with_config(client, config)
                    .expect("a lazy connection"),
            ),
            load: redis::cmd("SCRIPT"),
            wanted,
            timeout: Duration::from_millis(300),
        }
    }

    fn request() -> (Request, oneshot::Receiver<Result<String, ClusterError>>) {
        let (answer, answered) = oneshot::channel();
        let call = redis::pipe();
        (Request { call, answer }, answered)
    }

    fn bulk(text: &str) -> RedisResult<Value> {
        Ok(Value::BulkString(text.as_bytes().to_vec()))
    }

    #[tokio::test]
    async fn one_wait_answers_a_whole_batch() {
        let (first, first_answer) = request();
        let (second, second_answer) = request();
        let (third, third_answer) = request();
        let failed = redis::RedisError::from((redis::ErrorKind::Io, "script failed"));
        let replies = vec![
            bulk("sha"),
            bulk("41"),
            Err(failed),
            bulk("43"),
            Ok(Value::Int(1)),
        ];
        answer(vec![first, second, third], Ok(replies), &settings(1));
        assert_eq!(first_answer.await.unwrap().unwrap(), "41");
        assert!(second_answer.await.unwrap().is_err());
        assert_eq!(third_answer.await.unwrap().unwrap(), "43");
    }

    #[tokio::test]
    async fn too_few_replicas_fail_every_publish_of_the_batch() {
        let (first, first_answer) = request();
        let (second, second_answer) = request();
        let replies = vec![bulk("sha"), bulk("41"), bulk("42"), Ok(Value::Int(1))];
        answer(vec![first, second], Ok(replies), &settings(2));
        for answered in [first_answer, second_answer] {
            let error = answered.await.unwrap().unwrap_err();
            assert!(
                matches!(
                    error,
                    ClusterError::NotReplicated {
                        acked: 1,
                        wanted: 2,
                        ..
                    }
                ),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn a_reply_missing_fails_the_batch() {
        let (only, answered) = request();
        answer(vec![only], Ok(vec![bulk("sha")]), &settings(1));
        assert!(answered.await.unwrap().is_err());
    }
}
