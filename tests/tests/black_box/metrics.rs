//! `GET /metrics` on the edge's admin port and the hub's HTTP port, after a scripted scenario:
//! the counters move by exactly what happened (N sockets → connections N; M triggers to S
//! subscribers → M × S messages sent), and no label carries a channel, socket or user. In a
//! region, delivery latency is measured from the accepting hub's stamp.

use std::time::{Duration, Instant};

use herald_tests::api::Api;
use herald_tests::client::PusherClient;
use herald_tests::compat::WebhookReceiver;
use herald_tests::dev::Dev;
use herald_tests::eventually::eventually;
use herald_tests::metrics::{scrape, scrape_until};
use herald_tests::on_every_redis;
use herald_tests::topology::{APP_ID, Cluster, RedisKind, Region};
use serde_json::json;

const APP: (&str, &str) = ("app_id", "100001");
const WAIT: Duration = Duration::from_secs(10);
/// The delivery-latency histogram.
const DELIVERY: &str = "herald_edge_delivery_seconds";
/// How long a hub stands still in the region scenario (under the edges' silence deadline).
const STALL: Duration = Duration::from_millis(300);

#[tokio::test]
async fn metrics_count_a_scripted_scenario_exactly() {
    let dev = Dev::start("metrics_count_a_scripted_scenario_exactly").await;
    let admin = dev.process.ready_field("admin");
    let url = format!(
        "ws://{}/app/herald-dev-key?protocol=7&client=metrics-test&version=1",
        dev.websocket
    );
    let api = Api::for_app(&dev.http, "100001", "herald-dev-key", "herald-dev-secret");

    // N sockets, S of them subscribed to one channel, M triggers on it.
    let (sockets, subscribers, triggers) = (5, 3, 4);
    let mut clients = Vec::new();
    for _ in 0..sockets {
        clients.push(PusherClient::connect(&url).await);
    }
    for client in clients.iter_mut().take(subscribers) {
        client.subscribe("metrics-room").await;
    }
    let mut frame_bytes = 0;
    for index in 0..triggers {
        let reply = api
            .trigger(
                json!({"name": "tick", "channel": "metrics-room", "data": format!("n{index}")}),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        for client in clients.iter_mut().take(subscribers) {
            let event = client.next_event().await;
            assert_eq!(event["data"], format!("n{index}"), "{event}");
            // The frame as written: the same keys and values, so the same length.
            frame_bytes += serde_json::to_string(&event).expect("JSON").len();
        }
    }

    let expected_sent = (triggers * subscribers) as f64;
    let edge = scrape_until(&admin, WAIT, |m| {
        m.value("herald_edge_messages_sent_total", &[]) >= expected_sent
            && m.value("herald_edge_delivery_seconds", &[]) >= triggers as f64
    })
    .await;
    assert_eq!(
        edge.value("herald_edge_connections", &[APP]),
        sockets as f64
    );
    assert_eq!(
        edge.value("herald_edge_connections_opened_total", &[APP]),
        sockets as f64
    );
    assert_eq!(
        edge.value("herald_edge_subscriptions", &[APP]),
        subscribers as f64
    );
    assert_eq!(
        edge.value(
            "herald_edge_messages_received_total",
            &[("kind", "subscribe")]
        ),
        subscribers as f64
    );
    assert_eq!(
        edge.value("herald_edge_messages_sent_total", &[]),
        expected_sent
    );
    assert_eq!(
        edge.value("herald_edge_bytes_sent_total", &[]),
        frame_bytes as f64
    );
    // One socket per event and index shard is timed: one channel lives in one shard.
    assert_eq!(
        edge.value("herald_edge_delivery_seconds", &[]),
        triggers as f64
    );
    assert_eq!(edge.value("herald_edge_link_up", &[]), 1.0);
    assert_eq!(edge.value("herald_edge_link_failovers_total", &[]), 0.0);

    let hub = scrape(&dev.http).await;
    assert_eq!(
        hub.value("herald_hub_events_published_total", &[APP]),
        triggers as f64
    );
    assert_eq!(
        hub.value(
            "herald_hub_http_requests_total",
            &[("route", "/apps/{app_id}/events"), ("status", "200")]
        ),
        triggers as f64
    );
    assert_eq!(
        hub.value(
            "herald_hub_http_request_seconds",
            &[("route", "/apps/{app_id}/events")]
        ),
        triggers as f64
    );
    assert_eq!(hub.value("herald_hub_edges", &[]), 1.0);
    assert_eq!(hub.value("herald_hub_channels", &[APP]), 1.0);
    assert_eq!(hub.value("herald_build_info", &[]), 1.0);
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(hub.has(process), "{process} missing:\n{}", hub.text);
    }

    // Two clients leave, one of them a subscriber: the gauges fall, the reason is the client.
    for mut client in clients.drain(subscribers - 1..subscribers + 1) {
        client
            .ws
            .close(None)
            .await
            .expect("a close frame can be sent");
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut client.ws).await {}
    }
    let edge = scrape_until(&admin, WAIT, |m| {
        m.value("herald_edge_connections", &[APP]) == (sockets - 2) as f64
            && m.value("herald_edge_subscriptions", &[APP]) == (subscribers - 1) as f64
    })
    .await;
    assert_eq!(
        edge.value(
            "herald_edge_connections_closed_total",
            &[APP, ("reason", "client")]
        ),
        2.0
    );

    // Bounded labels: nothing names the channel or a socket.
    for text in [&edge.text, &hub.text] {
        assert!(
            !text.contains("metrics-room"),
            "a channel became a label:\n{text}"
        );
        assert!(
            !text.contains("socket_id"),
            "a socket became a label:\n{text}"
        );
    }
    std::fs::write(
        herald_tests::binary::target_dir().join("metrics-sample.txt"),
        format!(
            "# edge admin /metrics\n{}\n# hub /metrics\n{}",
            edge.text, hub.text
        ),
    )
    .expect("the sample can be saved");
}

/// The hub's webhook metrics after a batch that fails for its whole retry window, then one that
/// is delivered: every counter moves by exactly what the endpoint saw.
#[tokio::test]
async fn webhook_metrics_count_what_the_endpoint_saw() {
    let test = "webhook_metrics_count_what_the_endpoint_saw";
    let mut receiver = WebhookReceiver::start(test, "receiver").await;
    let hooks = json!([{"url": receiver.url(), "event_types": ["channel_occupied"]}]).to_string();
    let cluster = Cluster::start_with(
        test,
        1,
        &[
            ("HERALD_APP__WEBHOOKS", &hooks),
            ("HERALD_WEBHOOKS__RETRY_FOR_SECS", "3"),
            ("HERALD_WEBHOOKS__BACKOFF_MIN_MS", "100"),
            ("HERALD_WEBHOOKS__BACKOFF_MAX_MS", "200"),
        ],
        &[],
    )
    .await;
    let app = ("app_id", APP_ID);
    let http = &cluster.hub.http;
    // Registered at zero before anything happened, so alerts see them.
    let before = scrape(http).await;
    for name in [
        "herald_hub_webhooks_sent_total",
        "herald_hub_webhooks_retried_total",
        "herald_hub_webhooks_failed_total",
        "herald_hub_webhooks_dropped_total",
        "herald_hub_webhooks_pending",
    ] {
        assert!(before.has(name), "{name} missing:\n{}", before.text);
        assert_eq!(before.value(name, &[app]), 0.0, "{name}");
    }

    // The endpoint fails everything: the one event waits, is retried, then given up on.
    receiver.mode("fail").await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe("metered").await;
    scrape_until(http, WAIT, |m| {
        m.value("herald_hub_webhooks_pending", &[app]) == 1.0
    })
    .await;
    let failed = scrape_until(http, WAIT, |m| {
        m.value("herald_hub_webhooks_failed_total", &[app]) >= 1.0
    })
    .await;

    // Then it accepts: the next event is delivered, and every attempt before it was the first.
    receiver.mode("ok").await;
    client.subscribe("fence").await;
    let mut attempts = 0;
    loop {
        let request = receiver.next_request(WAIT).await;
        if request["status"] == 200 {
            assert_eq!(
                request["events"],
                json!([{"name": "channel_occupied", "channel": "fence"}])
            );
            break;
        }
        assert_eq!(
            request["events"],
            json!([{"name": "channel_occupied", "channel": "metered"}])
        );
        attempts += 1;
    }
    // A 3 s window with waits of 50–200 ms holds at least two retries, even when each failing
    // answer takes a second on a loaded machine (a 1 s window once held only two attempts).
    assert!(attempts >= 3, "{attempts} attempts");
    let after = scrape_until(http, WAIT, |m| {
        m.value("herald_hub_webhooks_sent_total", &[app]) >= 1.0
    })
    .await;
    for metrics in [&failed, &after] {
        assert_eq!(
            metrics.value("herald_hub_webhooks_failed_total", &[app]),
            1.0
        );
        assert_eq!(
            metrics.value("herald_hub_webhooks_retried_total", &[app]),
            (attempts - 1) as f64
        );
        assert_eq!(
            metrics.value("herald_hub_webhooks_dropped_total", &[app]),
            0.0
        );
    }
    assert_eq!(failed.value("herald_hub_webhooks_sent_total", &[app]), 0.0);
    assert_eq!(after.value("herald_hub_webhooks_sent_total", &[app]), 1.0);
    assert_eq!(after.value("herald_hub_webhooks_pending", &[app]), 0.0);
    // /stats counts the same.
    let stats = herald_tests::api::Api::new(http)
        .raw("GET", "/stats", "")
        .await
        .body["counters"]["webhooks"]
        .clone();
    assert_eq!(stats["failed"], 1, "{stats}");
    assert_eq!(stats["retried"], attempts - 1, "{stats}");
    assert_eq!(stats["sent"], 1, "{stats}");
}

/// In a region of 2 hubs and 3 edges each edge relays through one hub and keeps a standby link
/// to the other: the hubs count 3 edges between them, and 3 standby links apart.
#[tokio::test]
async fn a_region_counts_each_edge_once_and_standby_links_apart() {
    let test = "a_region_counts_each_edge_once_and_standby_links_apart";
    let region = Region::start(test, 2, 3, &[], &[]).await;
    let counted = eventually(
        "every edge's standby link",
        WAIT,
        async || {
            let mut sums = [0.0; 4];
            for hub in &region.hubs {
                let metrics = scrape(&hub.http).await;
                let stats = Api::new(&hub.http).raw("GET", "/stats", "").await.body;
                sums[0] += metrics.value("herald_hub_edges", &[]);
                sums[1] += metrics.value("herald_hub_standby_links", &[]);
                sums[2] += stats["counters"]["edges"].as_f64().unwrap_or(-1.0);
                sums[3] += stats["counters"]["standby_links"].as_f64().unwrap_or(-1.0);
            }
            sums
        },
        // The metric and /stats are two reads: wait until both have seen every link settle.
        |sums| *sums == [3.0; 4],
    )
    .await;
    let counted =
        counted.unwrap_or_else(|unmet| panic!("waited {:?} for {}", unmet.waited, unmet.what));
    assert_eq!(counted, [3.0, 3.0, 3.0, 3.0]);
}

on_every_redis!(delivery_latency_in_a_region_is_measured_from_the_triggering_hub);
/// In a region the hub that accepts an event stamps it and the stamp travels through Redis (the
/// publish script's message — on a cluster, `SPUBLISH` — history and cache), so
/// `herald_edge_delivery_seconds` measures from the trigger on every edge: each edge's histogram
/// counts exactly its deliveries, and the edge behind a hub that stood still while an event was
/// triggered shows that wait.
async fn delivery_latency_in_a_region_is_measured_from_the_triggering_hub(redis: RedisKind) {
    delivery_latency_in_a_region(
        redis,
        "delivery_latency_in_a_region_is_measured_from_the_triggering_hub",
        false,
    )
    .await;
}

/// The stall half of [`delivery_latency_in_a_region_is_measured_from_the_triggering_hub`].
#[tokio::test]
async fn delivery_latency_behind_a_stalled_hub_includes_the_stall() {
    delivery_latency_in_a_region(
        RedisKind::Standalone,
        "delivery_latency_behind_a_stalled_hub_includes_the_stall",
        true,
    )
    .await;
}

/// Triggers on the first hub of a region over `redis` and checks every edge's delivery
/// histogram; with `stall`, also that an edge whose hub stood still while the event was accepted
/// shows the wait.
async fn delivery_latency_in_a_region(redis: RedisKind, test: &str, stall: bool) {
    // With `stall`, no timer may move an edge off the stopped hub: an edge that failed over to
    // the other hub (after 800 ms of silence by default, which a loaded machine can stretch a
    // 300 ms stall into) would be served by a hub that never stood still.
    let (hub_env, edge_env): (&[_], &[_]) = if stall {
        (
            &[("HERALD_HUB__LINK_IDLE_TIMEOUT_SECS", "60")],
            &[
                ("HERALD_EDGE__LINK_SILENCE_MS", "60000"),
                ("HERALD_EDGE__LINK_IDLE_TIMEOUT_SECS", "60"),
            ],
        )
    } else {
        (&[], &[])
    };
    let region = Region::start_over(redis, test, 2, 3, hub_env, edge_env).await;
    let stalled = &region.hubs[1];
    let behind_stalled = eventually(
        "an edge linked to the second hub",
        WAIT,
        async || {
            let mut linked = Vec::new();
            for (index, edge) in region.edges.iter().enumerate() {
                if edge.linked_hub().await.as_deref() == Some(stalled.hub_id.as_str()) {
                    linked.push(index);
                }
            }
            linked
        },
        |linked| !linked.is_empty(),
    )
    .await
    .unwrap_or_else(|unmet| panic!("waited {:?} for {}", unmet.waited, unmet.what))[0];
    let mut clients = region.subscribers("latency-room").await;
    let api = region.hubs[0].api();
    let scrape_all = async || {
        futures_util::future::join_all(region.edges.iter().map(|edge| scrape(&edge.admin))).await
    };

    // M events, each received by every client before the next: every edge times each one.
    let triggers = 3;
    let before = scrape_all().await;
    for index in 0..triggers {
        let data = format!("n{index}");
        let reply = api
            .trigger(json!({"name": "tick", "channel": "latency-room", "data": data}))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        for client in &mut clients {
            assert_eq!(client.next_event().await["data"], data);
        }
    }
    for (index, edge) in region.edges.iter().enumerate() {
        let old = before[index].value(DELIVERY, &[]);
        let now = scrape_until(&edge.admin, WAIT, |m| {
            m.value(DELIVERY, &[]) >= old + triggers as f64
        })
        .await;
        assert_eq!(
            now.value(DELIVERY, &[]) - old,
            triggers as f64,
            "edge {index} timed each delivery once"
        );
    }

    if !stall {
        return;
    }
    // The hub of one edge stands still (every thread stopped) while the other hub accepts an
    // event.
    let before = scrape_all().await;
    let edge = &region.edges[behind_stalled];
    let failovers = async || edge.stats().await["counters"]["link_failovers"].clone();
    let failovers_before = failovers().await;
    stalled.process.pause().await;
    let reply = api
        .trigger(json!({"name": "tick", "channel": "latency-room", "data": "late"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let accepted = Instant::now();
    // The stall itself: how long the hub stands still after the accept, not a wait for
    // anything.
    tokio::time::sleep(STALL).await;
    // The accept came before the answer, the delivery after SIGCONT: at least this far apart.
    let stalled_for = accepted.elapsed();
    stalled.process.resume();
    for client in &mut clients {
        assert_eq!(client.next_event().await["data"], "late");
    }
    let old = &before[behind_stalled];
    let now = scrape_until(&region.edges[behind_stalled].admin, WAIT, |m| {
        m.value(DELIVERY, &[]) > old.value(DELIVERY, &[])
    })
    .await;
    assert_eq!(now.value(DELIVERY, &[]) - old.value(DELIVERY, &[]), 1.0);
    assert_eq!(
        failovers().await,
        failovers_before,
        "the edge never left its hub"
    );
    assert_eq!(
        edge.linked_hub().await.as_deref(),
        Some(stalled.hub_id.as_str())
    );
    // It waited out the stall, measured from its accept on the other hub (with the stamp taken
    // when the stalled hub heard the event, it would be a few milliseconds).
    let fast = &[("le", "0.25")];
    let bucket = format!("{DELIVERY}_bucket");
    assert_eq!(
        now.value(&bucket, fast),
        old.value(&bucket, fast),
        "the delivery behind the stalled hub was timed from that hub's hearing:\n{}",
        now.text
    );
    let sum = format!("{DELIVERY}_sum");
    let waited = now.value(&sum, &[]) - old.value(&sum, &[]);
    // A millisecond for the rounding of two clocks (the stamp's and the edge's, in whole
    // microseconds) and of the histogram's float sum.
    assert!(
        waited + 0.001 >= stalled_for.as_secs_f64(),
        "the delivery behind the stalled hub took {waited} s, the stall {stalled_for:?}"
    );
}
