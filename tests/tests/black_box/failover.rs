//! A hub is lost under load — SIGKILLed, or its host vanishes without a trace — and its edges
//! keep every client socket, re-link to the other hub as soon as the dead hub's closed port or
//! the link's silence deadline tells them, resume from history, and every client sees every event exactly once, in order, with
//! no close and a bounded pause (issue 9) — over one redis-server and over a Redis Cluster
//! (`on_every_redis!`). A hub that merely stalls keeps its edges. A Redis primary is lost under
//! load, on a primary + replica failed over by hand and on a Redis Cluster (issue 13).
//!
//! Each test prints what it measured; `cargo test --test black_box failover:: -- --nocapture`
//! shows the figures docs/cluster.md quotes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_tests::api::Api;
use herald_tests::client::{Frame, PusherClient, next_frame};
use herald_tests::eventually::eventually;
use herald_tests::forwarder::Forwarder;
use herald_tests::netns::Netns;
use herald_tests::on_every_redis;
use herald_tests::redis_cluster::RedisPrimaryReplica;
use herald_tests::topology::{
    APP_ID, Edge, Hub, RedisKind, Region, RegionRedis, start_edges, start_hubs,
};
use serde_json::json;
use tokio::task::JoinHandle;

/// Triggers per second.
const RATE: u64 = 200;
/// Subscribers per edge (three edges: 60 clients).
const PER_EDGE: usize = 20;
/// The longest delivery pause allowed when a hub process dies.
const KILLED_BOUND: Duration = Duration::from_millis(1_000);
/// The longest delivery pause allowed when a hub's host vanishes silently.
const VANISHED_BOUND: Duration = Duration::from_millis(1_500);
/// The longest delivery pause allowed while a Redis primary is replaced by its replica.
const REDIS_FAILOVER_BOUND: Duration = Duration::from_millis(3_000);
/// The longest delivery pause allowed while a Redis Cluster promotes a replica of a killed
/// primary. Not yet the 3 s target: the promotion alone takes 2.3–2.8 s here
/// (`cluster-node-timeout` 1000), and the longest pauses measured were 0.8–1.1 s longer (not
/// yet taken apart: a publish waiting for the promotion retries up to 500 ms apart, and its
/// first try after it may meet `MOVED` and wait once more).
const CLUSTER_FAILOVER_BOUND: Duration = Duration::from_millis(5_000);
/// How long a killed Redis primary stays unreplaced.
const UNDETECTED: Duration = Duration::from_millis(500);
/// How long a stalled hub stands still.
const STALL: Duration = Duration::from_millis(300);

/// What one subscriber saw.
#[derive(Debug)]
struct Seen {
    numbers: Vec<u64>,
    longest_pause: Duration,
    closed: bool,
}

async fn watch(mut client: PusherClient) -> Seen {
    let mut seen = Seen {
        numbers: Vec::new(),
        longest_pause: Duration::ZERO,
        closed: false,
    };
    let mut last = Instant::now();
    loop {
        match next_frame(&mut client.ws).await {
            Frame::Json(frame) if frame["event"] == "n" => {
                let now = Instant::now();
                if !seen.numbers.is_empty() {
                    seen.longest_pause = seen.longest_pause.max(now - last);
                }
                last = now;
                let number: u64 = frame["data"]
                    .as_str()
                    .and_then(|d| d.parse().ok())
                    .expect("numbered data");
                seen.numbers.push(number);
            }
            Frame::Json(frame) if frame["event"] == "end" => return seen,
            Frame::Json(_) | Frame::Pong => {}
            Frame::Closed(..) => {
                seen.closed = true;
                return seen;
            }
        }
    }
}

async fn wait_for(what: &str, condition: impl AsyncFnMut() -> bool) {
    eventually(what, Duration::from_secs(20), condition, |met| *met)
        .await
        .unwrap();
}

/// Asserts which hub each edge is linked to: `(edge, hub)` pairs.
async fn assert_linked(region: &Region, links: &[(usize, usize)]) {
    for &(edge, hub) in links {
        assert_eq!(
            region.edges[edge].linked_hub().await.as_deref(),
            Some(region.hubs[hub].hub_id.as_str()),
            "edge {edge} is linked to hub {hub}"
        );
    }
}

/// Waits until each `(edge, hub)` pair is linked.
async fn wait_linked(region: &Region, links: &[(usize, usize)]) {
    for &(edge, hub) in links {
        let (edge, hub) = (&region.edges[edge], &region.hubs[hub].hub_id);
        wait_for("the edge to re-link", async || {
            edge.linked_hub().await.as_deref() == Some(hub.as_str())
        })
        .await;
    }
}

/// Whether a trigger may be refused (503) during the test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusals {
    /// Every trigger must be acknowledged (a hub failover never refuses one).
    Never,
    /// A trigger may be refused while Redis fails over; a refused event is not acknowledged,
    /// so it may be missing, but must not arrive twice.
    WhileRedisFailsOver,
}

/// Numbered events at [`RATE`] per second on one channel, triggered on one hub, watched by
/// [`PER_EDGE`] subscribers on every edge.
struct Load {
    watchers: Vec<JoinHandle<Seen>>,
    sent: Arc<AtomicU64>,
    /// The numbers whose trigger was refused (503).
    refused: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicU64>,
    publisher: JoinHandle<()>,
    api: Api,
}

/// What the subscribers saw, all together.
#[derive(Debug)]
struct Outcome {
    sent: u64,
    refused: u64,
    lost: u64,
    duplicated: u64,
    closes: u64,
    longest_pause: Duration,
}

impl Load {
    /// Subscribes everyone, then starts triggering on `hub`.
    async fn start(region: &Region, hub: usize) -> Self {
        Self::start_on(&region.edges, &region.hubs[hub], Refusals::Never).await
    }

    /// Subscribes [`PER_EDGE`] clients on each of `edges`, then starts triggering on `hub`.
    async fn start_on(edges: &[Edge], hub: &Hub, refusals: Refusals) -> Self {
        let mut watchers = Vec::new();
        for edge in edges {
            for _ in 0..PER_EDGE {
                let mut client = PusherClient::connect(&edge.url()).await;
                client.subscribe("orders").await;
                watchers.push(tokio::spawn(watch(client)));
            }
        }
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let api = hub.api();
        let publisher = {
            let api = hub.api();
            let (sent, stop, refused) = (sent.clone(), stop.clone(), refused.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
                let mut number = 0u64;
                while stop.load(Ordering::Relaxed) == 0 {
                    tick.tick().await;
                    let reply = api
                        .trigger(
                            json!({"name": "n", "channel": "orders", "data": number.to_string()}),
                        )
                        .await;
                    let may_refuse = refusals == Refusals::WhileRedisFailsOver;
                    match reply.status {
                        200 => {}
                        503 if may_refuse => refused.lock().expect("lock").push(number),
                        status => panic!("trigger {number} failed ({status}): {:?}", reply.body),
                    }
                    number += 1;
                    sent.store(number, Ordering::Relaxed);
                }
            })
        };
        Self {
            watchers,
            sent,
            refused,
            stop,
            publisher,
            api,
        }
    }

    /// Waits until `events` more events were triggered.
    async fn run_for(&self, events: u64) {
        let until = self.sent.load(Ordering::Relaxed) + events;
        wait_for("the load to go on", async || {
            self.sent.load(Ordering::Relaxed) >= until
        })
        .await;
    }

    /// Stops triggering, fences every subscriber with an `end` event, and adds up what they saw;
    /// asserts that each saw every acknowledged event once, in order (and a refused one at most
    /// once, in its place).
    async fn finish(self) -> Outcome {
        self.stop.store(1, Ordering::Relaxed);
        self.publisher.await.expect("the publisher never failed");
        let sent = self.sent.load(Ordering::Relaxed);
        let refused = std::mem::take(&mut *self.refused.lock().expect("lock"));
        let end = json!({"name": "end", "channel": "orders", "data": "end"});
        assert_eq!(self.api.trigger(end).await.status, 200);
        let mut outcome = Outcome {
            sent,
            refused: refused.len() as u64,
            lost: 0,
            duplicated: 0,
            closes: 0,
            longest_pause: Duration::ZERO,
        };
        let acknowledged: Vec<u64> = (0..sent).filter(|n| !refused.contains(n)).collect();
        for watcher in self.watchers {
            let seen = watcher.await.expect("a watcher finished");
            outcome.closes += u64::from(seen.closed);
            let mut distinct = seen.numbers.clone();
            distinct.sort_unstable();
            distinct.dedup();
            outcome.duplicated += (seen.numbers.len() - distinct.len()) as u64;
            let missing = acknowledged
                .iter()
                .filter(|n| distinct.binary_search(n).is_err())
                .count();
            outcome.lost += missing as u64;
            outcome.longest_pause = outcome.longest_pause.max(seen.longest_pause);
            let delivered: Vec<u64> = seen
                .numbers
                .iter()
                .copied()
                .filter(|n| !refused.contains(n))
                .collect();
            assert_eq!(
                delivered, acknowledged,
                "every acknowledged event once, in order"
            );
            assert!(
                seen.numbers.windows(2).all(|pair| pair[0] < pair[1]),
                "no event twice, none out of order: {:?}",
                seen.numbers
            );
        }
        outcome
    }
}

impl Outcome {
    /// Prints the figures and asserts nothing acknowledged was lost, nothing duplicated and no
    /// client disconnected.
    fn report(&self, case: &str) {
        eprintln!(
            "failover ({case}): sent {} events to {} subscribers, {} refused (503, not acknowledged); acknowledged events lost {}; duplicated {}; client disconnects {}; longest delivery pause {} ms",
            self.sent,
            3 * PER_EDGE,
            self.refused,
            self.lost,
            self.duplicated,
            self.closes,
            self.longest_pause.as_millis()
        );
        assert_eq!((self.lost, self.duplicated, self.closes), (0, 0, 0));
    }
}

/// Loses hub 0 (with `lose`) after a second of load, while edges 0 and 2 are linked to it and
/// edge 1 to hub 1, which receives the triggers; returns what the subscribers saw.
async fn lose_hub_0(region: &mut Region, lose: impl AsyncFnOnce(&mut Hub)) -> Outcome {
    assert_linked(region, &[(0, 0), (1, 1), (2, 0)]).await;
    let load = Load::start(region, 1).await;
    load.run_for(RATE).await;
    let lost_at = Instant::now();
    lose(&mut region.hubs[0]).await;
    wait_linked(region, &[(0, 1), (2, 1)]).await;
    eprintln!(
        "edges re-linked {:?} after the hub was lost",
        lost_at.elapsed()
    );
    load.run_for(RATE).await;
    load.finish().await
}

on_every_redis!(
    a_killed_hub_pauses_delivery_under_a_second_and_loses_nothing,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn a_killed_hub_pauses_delivery_under_a_second_and_loses_nothing(redis: RedisKind) {
    let test = "a_killed_hub_pauses_delivery_under_a_second_and_loses_nothing";
    let mut region = Region::start_over(redis, test, 2, 3, &[], &[]).await;
    let outcome = lose_hub_0(&mut region, async |hub| hub.process.kill().await).await;
    outcome.report("hub SIGKILLed");
    assert!(
        outcome.longest_pause <= KILLED_BOUND,
        "longest delivery pause {:?} exceeds {KILLED_BOUND:?}",
        outcome.longest_pause
    );
}

on_every_redis!(
    a_vanished_hub_host_pauses_delivery_under_1500_ms_and_loses_nothing,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn a_vanished_hub_host_pauses_delivery_under_1500_ms_and_loses_nothing(redis: RedisKind) {
    let test = redis.name("a_vanished_hub_host_pauses_delivery_under_1500_ms_and_loses_nothing");
    let test = test.as_str();
    // Hub 0 runs on its own "host" (a network namespace); Redis listens (and a cluster's nodes
    // announce themselves) there too.
    let netns = Netns::create();
    let redis = RegionRedis::start_on(redis, test, netns.outer_ip()).await;
    let from_netns = redis.url_at(netns.outer_ip());
    let local = redis.url();
    let hubs = vec![
        Hub::start_in_netns(test, "hub-0", &[("HERALD_REDIS__URL", &from_netns)], &netns).await,
        Hub::start(test, "hub-1", &[("HERALD_REDIS__URL", &local)]).await,
    ];
    let mut region = Region::with_edges(test, redis, hubs, 3, &[]).await;
    let outcome = lose_hub_0(&mut region, async |_| netns.vanish()).await;
    outcome.report("hub host vanished");
    assert!(
        outcome.longest_pause <= VANISHED_BOUND,
        "longest delivery pause {:?} exceeds {VANISHED_BOUND:?}",
        outcome.longest_pause
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hub_stalled_for_300_ms_keeps_its_edges() {
    let test = "a_hub_stalled_for_300_ms_keeps_its_edges";
    let region = Region::start(test, 2, 3, &[], &[]).await;
    assert_linked(&region, &[(0, 0), (1, 1), (2, 0)]).await;
    let load = Load::start(&region, 1).await;
    load.run_for(RATE / 2).await;
    for _ in 0..3 {
        region.hubs[0].process.pause().await;
        // The stall itself: how long the hub stands still, not a wait for anything.
        tokio::time::sleep(STALL).await;
        region.hubs[0].process.resume();
        load.run_for(RATE / 2).await;
    }
    let outcome = load.finish().await;
    outcome.report("hub stalled 3 × 300 ms");
    assert!(
        outcome.longest_pause >= STALL / 2,
        "the stall was felt (longest pause {:?})",
        outcome.longest_pause
    );
    assert_linked(&region, &[(0, 0), (1, 1), (2, 0)]).await;
    for edge in &region.edges {
        let counters = edge.stats().await["counters"].clone();
        assert_eq!(
            (&counters["link_sessions"], &counters["link_failovers"]),
            (&json!(1), &json!(0)),
            "no edge left its hub: {counters}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_primary_replaced_by_hand_loses_no_acknowledged_event() {
    let test = "a_redis_primary_replaced_by_hand_loses_no_acknowledged_event";
    // ElastiCache with cluster mode disabled: hubs know the primary endpoint, a name that
    // follows the primary (here a forwarder), and triggers wait for one replica.
    let mut pair = RedisPrimaryReplica::start(test).await;
    let endpoint = Forwarder::start(format!("127.0.0.1:{}", pair.primary_port())).await;
    let url = format!("redis://{}/0", endpoint.address);
    let env = [
        ("HERALD_REDIS__URL", url.as_str()),
        ("HERALD_REDIS__MIN_REPLICAS_ACKED", "1"),
    ];
    let hubs = start_hubs(test, 2, &env).await;
    let edges = start_edges(test, &hubs, 3, &[]).await;
    let load = Load::start_on(&edges, &hubs[1], Refusals::WhileRedisFailsOver).await;
    load.run_for(RATE).await;

    let killed_at = Instant::now();
    pair.kill_primary().await;
    // The primary stays dead a while before it is replaced, as while a failover is detected
    // (not a wait for anything): publishes retry, and triggers may be refused.
    tokio::time::sleep(UNDETECTED).await;
    let promoted = pair.promote_replica().await;
    endpoint.point_to(format!("127.0.0.1:{promoted}"));
    let pointed = killed_at.elapsed();
    pair.add_replica().await;
    eprintln!(
        "the endpoint pointed at the promoted replica {pointed:?} after the primary was killed; its new replica was in sync after {:?}",
        killed_at.elapsed()
    );
    load.run_for(RATE).await;

    let outcome = load.finish().await;
    outcome.report("Redis primary SIGKILLed, replica promoted by hand, endpoint re-pointed");
    assert!(
        outcome.longest_pause <= REDIS_FAILOVER_BOUND,
        "longest delivery pause {:?} exceeds {REDIS_FAILOVER_BOUND:?}",
        outcome.longest_pause
    );
    for edge in &edges {
        let counters = edge.stats().await["counters"].clone();
        assert_eq!(
            counters["link_failovers"],
            json!(0),
            "no edge left its hub: {counters}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_cluster_primary_killed_loses_no_acknowledged_event() {
    let test = "a_redis_cluster_primary_killed_loses_no_acknowledged_event";
    let mut region = Region::start_over(
        RedisKind::Cluster,
        test,
        2,
        3,
        &[("HERALD_REDIS__MIN_REPLICAS_ACKED", "1")],
        &[],
    )
    .await;
    let load = Load::start_on(
        &region.edges,
        &region.hubs[1],
        Refusals::WhileRedisFailsOver,
    )
    .await;
    load.run_for(RATE).await;

    // SIGKILL the primary that owns the channel's slot; the cluster promotes its replica
    // (cluster-node-timeout 1000), and the killed node comes back as the new primary's replica,
    // as a managed cluster replaces a failed node (until then nothing can acknowledge).
    let cluster = region.redis.cluster_mut();
    let slot = cluster.slot(&format!("herald:ev:{{{APP_ID}:orders}}"));
    let promotion = cluster.fail_over(slot).await;
    cluster.restart(promotion.killed).await;
    eprintln!(
        "the cluster promoted {} in place of {} after {:?}",
        promotion.promoted, promotion.killed, promotion.took
    );
    load.run_for(RATE).await;

    let outcome = load.finish().await;
    outcome.report("Redis Cluster primary SIGKILLed, replica promoted by the cluster");
    assert!(
        outcome.longest_pause <= CLUSTER_FAILOVER_BOUND,
        "longest delivery pause {:?} exceeds {CLUSTER_FAILOVER_BOUND:?}",
        outcome.longest_pause
    );
    for edge in &region.edges {
        let counters = edge.stats().await["counters"].clone();
        assert_eq!(
            counters["link_failovers"],
            json!(0),
            "no edge left its hub: {counters}"
        );
    }
}
