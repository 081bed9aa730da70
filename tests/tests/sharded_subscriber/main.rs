//! The hub's sharded subscriber (`herald_hub::cluster::sharded`) against a real local Redis Cluster: it hears
//! wanted channels on every shard, stops hearing unwanted ones, and follows a slot moved to
//! another primary and a primary SIGKILLed and replaced by its replica — each time reporting the
//! channel live again (so history fills the gap) and leaving channels of other shards alone.

use std::time::{Duration, Instant};

use herald_hub::cluster::sharded::{self, Heard, State, Subscriber};
use herald_tests::redis_cluster::RedisCluster;
use redis::IntoConnectionInfo;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long anything the subscriber should hear may take (a failover takes ~2.5 s).
const HEAR_TIMEOUT: Duration = Duration::from_secs(15);

struct Running {
    cluster: RedisCluster,
    subscriber: Subscriber,
    heard: mpsc::Receiver<Heard>,
    _stop: tokio_util::sync::DropGuard,
}

async fn start(test: &str) -> Running {
    let cluster = RedisCluster::start(test).await;
    let control = redis::cluster::ClusterClient::new(cluster.urls())
        .expect("a cluster client")
        .get_async_connection()
        .await
        .expect("the cluster accepts a connection");
    let template = cluster.url().into_connection_info().expect("a node URL");
    let (heard_tx, heard) = mpsc::channel(1024);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let subscriber = sharded::spawn(control, template, heard_tx, &tracker, shutdown.clone());
    Running {
        cluster,
        subscriber,
        heard,
        _stop: shutdown.drop_guard(),
    }
}

/// A channel name (hash-tagged like Herald's) whose slot is served by `primary`.
fn channel_on(cluster: &RedisCluster, primary: u16, name: &str) -> String {
    (0..)
        .map(|i| format!("herald:ev:{{100001:{name}-{i}}}"))
        .find(|channel| cluster.primary_of(channel) == primary)
        .expect("some name lands on every primary")
}

async fn next(heard: &mut mpsc::Receiver<Heard>, what: &str) -> Heard {
    tokio::time::timeout(HEAR_TIMEOUT, heard.recv())
        .await
        .unwrap_or_else(|_| {
            panic!("heard nothing within {HEAR_TIMEOUT:?} while waiting for {what}")
        })
        .expect("the subscriber runs")
}

/// Waits until the subscriber says every wanted channel is live.
async fn await_settled(subscriber: &Subscriber) {
    let mut state = subscriber.state();
    tokio::time::timeout(HEAR_TIMEOUT, state.wait_for(|state| *state == State::Live))
        .await
        .expect("the subscriber settles")
        .expect("the subscriber runs");
}

/// Waits until every one of `channels` was reported live; nothing else may be heard meanwhile.
async fn await_live(heard: &mut mpsc::Receiver<Heard>, channels: &[&str]) {
    let mut missing: Vec<&str> = channels.to_vec();
    while !missing.is_empty() {
        match next(heard, &format!("{missing:?} to be live")).await {
            Heard::Live { channels } => missing.retain(|c| !channels.iter().any(|l| l == c)),
            other => panic!("expected {missing:?} to become live, heard {other:?}"),
        }
    }
}

fn spublish(cluster: &RedisCluster, channel: &str, payload: &str) -> i64 {
    redis::cmd("SPUBLISH")
        .arg(channel)
        .arg(payload)
        .query(&mut cluster.connection(cluster.primary_of(channel)))
        .expect("SPUBLISH at the channel's owner succeeds")
}

async fn expect_message(heard: &mut mpsc::Receiver<Heard>, channel: &str, payload: &str) {
    let expected = Heard::Message {
        channel: channel.to_owned(),
        payload: payload.as_bytes().to_vec(),
    };
    assert_eq!(next(heard, payload).await, expected);
}

#[tokio::test]
async fn hears_wanted_channels_on_every_shard_and_stops_when_unwanted() {
    let Running {
        cluster,
        subscriber,
        mut heard,
        _stop,
    } = start("sharded_subscriber/every_shard").await;
    let channels: Vec<String> = cluster
        .primaries()
        .into_iter()
        .map(|primary| channel_on(&cluster, primary, "chat"))
        .collect();
    for channel in &channels {
        subscriber.want(channel.clone()).await;
    }
    let names: Vec<&str> = channels.iter().map(String::as_str).collect();
    await_live(&mut heard, &names).await;
    await_settled(&subscriber).await;
    for channel in &channels {
        assert_eq!(spublish(&cluster, channel, "hello"), 1, "one subscriber");
        expect_message(&mut heard, channel, "hello").await;
    }

    subscriber.unwant(channels[0].clone()).await;
    // The fence: a message on a still wanted channel, published after the unwanted one.
    let deadline = Instant::now() + HEAR_TIMEOUT;
    while spublish(&cluster, &channels[0], "unwanted") != 0 {
        assert!(
            Instant::now() < deadline,
            "the subscription was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    spublish(&cluster, &channels[1], "fence");
    expect_message(&mut heard, &channels[1], "fence").await;
}

#[tokio::test]
async fn follows_a_slot_moved_to_another_primary() {
    let Running {
        cluster,
        subscriber,
        mut heard,
        _stop,
    } = start("sharded_subscriber/moved").await;
    let primaries = cluster.primaries();
    let (from, to) = (primaries[0], primaries[1]);
    let moving = channel_on(&cluster, from, "moving");
    let staying = channel_on(&cluster, primaries[2], "staying");
    subscriber.want(moving.clone()).await;
    subscriber.want(staying.clone()).await;
    await_live(&mut heard, &[&moving, &staying]).await;

    let slot = cluster.slot(&moving);
    let id = |port: u16| -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut cluster.connection(port))
            .expect("CLUSTER MYID answers")
    };
    let (from_id, to_id) = (id(from), id(to));
    let setslot = |port: u16, args: &[&str]| {
        let () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(args)
            .query(&mut cluster.connection(port))
            .expect("CLUSTER SETSLOT succeeds");
    };
    setslot(to, &["IMPORTING", &from_id]);
    setslot(from, &["MIGRATING", &to_id]);
    setslot(to, &["NODE", &to_id]);
    setslot(from, &["NODE", &to_id]);
    let started = Instant::now();
    await_live(&mut heard, &[&moving]).await;
    eprintln!("re-homed {:?} after the slot moved", started.elapsed());
    assert_eq!(cluster.primary_of(&moving), to);
    assert_eq!(spublish(&cluster, &moving, "after the move"), 1);
    expect_message(&mut heard, &moving, "after the move").await;
    // The other shard's channel was never re-subscribed: its next event is its message.
    spublish(&cluster, &staying, "fence");
    expect_message(&mut heard, &staying, "fence").await;
}

#[tokio::test]
async fn follows_a_killed_primary_to_its_promoted_replica() {
    let Running {
        mut cluster,
        subscriber,
        mut heard,
        _stop,
    } = start("sharded_subscriber/failover").await;
    let primaries = cluster.primaries();
    let doomed = channel_on(&cluster, primaries[0], "doomed");
    let staying = channel_on(&cluster, primaries[1], "staying");
    subscriber.want(doomed.clone()).await;
    subscriber.want(staying.clone()).await;
    await_live(&mut heard, &[&doomed, &staying]).await;

    let killed_at = Instant::now();
    let promotion = cluster.fail_over(cluster.slot(&doomed)).await;
    await_live(&mut heard, &[&doomed]).await;
    await_settled(&subscriber).await;
    eprintln!(
        "promotion after {:?}; the channel was live again {:?} after the kill",
        promotion.took,
        killed_at.elapsed()
    );
    assert_eq!(cluster.primary_of(&doomed), promotion.promoted);
    assert_eq!(spublish(&cluster, &doomed, "after the failover"), 1);
    expect_message(&mut heard, &doomed, "after the failover").await;
    spublish(&cluster, &staying, "fence");
    expect_message(&mut heard, &staying, "fence").await;
}
