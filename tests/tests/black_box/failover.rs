//! A hub dies under load: its edges keep every client socket, re-link to the other hub, resume
//! from history, and every client sees every event exactly once, in order, with no close.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use herald_tests::client::{Frame, PusherClient, next_frame};
use herald_tests::eventually::eventually;
use herald_tests::topology::Region;
use serde_json::json;

/// Triggers per second.
const RATE: u64 = 200;
/// Subscribers per edge.
const PER_EDGE: usize = 2;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_hub_under_load_loses_nothing_and_disconnects_nobody() {
    let test = "killing_a_hub_under_load_loses_nothing_and_disconnects_nobody";
    let mut region = Region::start(test, 2, 3, &[], &[]).await;
    // Edges 0 and 2 prefer hub 0, which dies; edge 1 is on hub 1, which publishes.
    for (edge, hub) in [(0, 0), (1, 1), (2, 0)] {
        assert_eq!(
            region.edges[edge].linked_hub().await.as_deref(),
            Some(region.hubs[hub].hub_id.as_str())
        );
    }
    let mut watchers = Vec::new();
    for edge in &region.edges {
        for _ in 0..PER_EDGE {
            let mut client = PusherClient::connect(&edge.url()).await;
            client.subscribe("orders").await;
            watchers.push(tokio::spawn(watch(client)));
        }
    }

    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicU64::new(0));
    let publisher = {
        let api = region.hubs[1].api();
        let (sent, stop) = (sent.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
            let mut number = 0u64;
            while stop.load(Ordering::Relaxed) == 0 {
                tick.tick().await;
                let reply = api
                    .trigger(json!({"name": "n", "channel": "orders", "data": number.to_string()}))
                    .await;
                assert_eq!(
                    reply.status, 200,
                    "trigger {number} failed: {:?}",
                    reply.body
                );
                number += 1;
                sent.store(number, Ordering::Relaxed);
            }
        })
    };

    wait_for("a second of load", async || {
        sent.load(Ordering::Relaxed) >= RATE
    })
    .await;
    let killed_at = Instant::now();
    region.hubs[0].process.kill().await;
    let survivor = region.hubs[1].hub_id.clone();
    for edge in [0, 2] {
        let edge = &region.edges[edge];
        wait_for("the edge to re-link", async || {
            edge.linked_hub().await.as_deref() == Some(survivor.as_str())
        })
        .await;
    }
    let relinked_after = killed_at.elapsed();
    let before = sent.load(Ordering::Relaxed);
    wait_for("another second of load", async || {
        sent.load(Ordering::Relaxed) >= before + RATE
    })
    .await;
    stop.store(1, Ordering::Relaxed);
    publisher.await.expect("the publisher never failed");
    let total = sent.load(Ordering::Relaxed);
    let api = region.hubs[1].api();
    assert_eq!(
        api.trigger(json!({"name": "end", "channel": "orders", "data": "end"}))
            .await
            .status,
        200
    );

    let (mut lost, mut duplicated, mut closes) = (0u64, 0u64, 0u64);
    let mut longest = Duration::ZERO;
    for watcher in watchers {
        let seen = watcher.await.expect("a watcher finished");
        closes += u64::from(seen.closed);
        let mut distinct = seen.numbers.clone();
        distinct.sort_unstable();
        distinct.dedup();
        duplicated += (seen.numbers.len() - distinct.len()) as u64;
        lost += total - distinct.len() as u64;
        longest = longest.max(seen.longest_pause);
        assert_eq!(
            seen.numbers,
            (0..total).collect::<Vec<_>>(),
            "every event once, in order"
        );
    }
    eprintln!(
        "failover: sent {total} events to {} subscribers; received {} deliveries; lost {lost}; duplicated {duplicated}; client disconnects {closes}; edges re-linked after {relinked_after:?}; longest delivery pause {longest:?}",
        3 * PER_EDGE,
        total * 3 * PER_EDGE as u64 - lost
    );
    assert_eq!((lost, duplicated, closes), (0, 0, 0));
}
