//! Resume (`docs/resume.md`): pusher-js with the add-on of `clients/js` misses nothing across an
//! edge killed under it or a connection cut for seconds; without the add-on, Herald is Pusher
//! (what was sent during the gap is gone) and the frames are byte for byte Pusher's; history
//! that no longer reaches back fails the resume loudly; Laravel Echo's private and presence
//! channels resume.

use std::time::Duration;

use futures_util::StreamExt;
use herald_tests::api::Api;
use herald_tests::client;
use herald_tests::compat::{EchoClient, Kind, Launch, ResumeClients, node_sdk, server};
use herald_tests::eventually::eventually;
use herald_tests::proxy::Proxy;
use herald_tests::topology::{Cluster, Edge, RedisKind, Region, Shape, Topology};
use herald_tests::{on_every_redis, on_every_topology};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Events per second the tests trigger.
const RATE: u64 = 200;

/// Triggers event `n` (data `{"n": n}`) on `channel`; panics unless the API acknowledged it.
async fn trigger(api: &Api, channel: &str, n: u64) {
    let reply = api
        .trigger(json!({"name": "tick", "channel": channel, "data": json!({"n": n}).to_string()}))
        .await;
    assert_eq!(
        reply.status, 200,
        "event {n} on {channel}: {:?}",
        reply.body
    );
}

/// Waits until `edge` holds no client connection (the proxy's cut reached it).
async fn no_connections(edge: &Edge) {
    eventually(
        "the edge to see its client gone",
        Duration::from_secs(10),
        async || edge.stats().await["connections"].as_u64(),
        |connections| *connections == Some(0),
    )
    .await
    .unwrap();
}

on_every_redis!(
    an_edge_killed_and_a_connection_cut_lose_nothing_with_the_add_on,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn an_edge_killed_and_a_connection_cut_lose_nothing_with_the_add_on(redis: RedisKind) {
    let test = "an_edge_killed_and_a_connection_cut_lose_nothing_with_the_add_on";
    let mut region = Region::start_over(redis, test, 2, 3, &[], &[]).await;
    let test = region.name.clone();
    let test = test.as_str();
    let upstreams: Vec<String> = region.edges.iter().map(|e| e.websocket.clone()).collect();
    let mut proxies = Vec::new();
    for index in 0..60 {
        proxies.push(Proxy::start(upstreams.clone(), index % upstreams.len()).await);
    }
    let ports: Vec<u16> = proxies.iter().map(Proxy::port).collect();
    let channels = ["feed", "private-feed", "presence-feed", "cache-feed"];
    let user = json!({"id": "7", "info": {"name": "Ada"}});
    let mut clients = ResumeClients::start(
        test,
        "clients",
        &region.edges[0],
        &ports,
        &channels,
        true,
        &user,
    )
    .await;

    // 200 events a second for 8 s: 50 a second on each channel, each channel through its own
    // task (events of one channel acknowledged in order), alternating hubs. After 1 s edge 2 (a
    // third of the clients) is SIGKILLed; after 2 s client 0's connection is cut for 5 s.
    let per_channel = 8 * RATE / channels.len() as u64;
    let (progress, mut heard) = tokio::sync::watch::channel(0u64);
    let mut triggers = tokio::task::JoinSet::new();
    let started = std::time::Instant::now();
    for (index, channel) in channels.into_iter().enumerate() {
        let apis: Vec<Api> = region.hubs.iter().map(|hub| hub.api()).collect();
        let progress = (index == 0).then(|| progress.clone());
        triggers.spawn(async move {
            let period = Duration::from_millis(1000 * channels.len() as u64 / RATE);
            let mut ticks = tokio::time::interval(period);
            for n in 1..=per_channel {
                ticks.tick().await;
                trigger(&apis[(n % 2) as usize], channel, n).await;
                if let Some(progress) = &progress {
                    progress.send_replace(n);
                }
            }
        });
    }
    drop(progress);
    let second = RATE / channels.len() as u64;
    heard
        .wait_for(|n| *n >= second)
        .await
        .expect("the triggers run");
    region.edges[2].process.kill().await;
    heard
        .wait_for(|n| *n >= 2 * second)
        .await
        .expect("the triggers run");
    proxies[0].cut(Duration::from_secs(5));
    while let Some(done) = triggers.join_next().await {
        done.expect("every event is acknowledged");
    }
    let total = per_channel * channels.len() as u64;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let last: Vec<(&str, u64)> = channels.iter().map(|c| (*c, per_channel)).collect();
    let report = clients.report_after(&last).await;
    for index in 0..ports.len() {
        for channel in channels {
            let tally = report.tally(index, channel);
            assert!(
                tally.count == per_channel
                    && tally.in_order
                    && tally.duplicates == 0
                    && tally.missing == 0,
                "client {index} on {channel}: {tally:?} of {per_channel}: {}",
                report.clients[index]
            );
        }
    }
    let client_0 = &report.clients[0];
    eprintln!(
        "resume: {total} events at {rate:.0}/s on 4 channels (public, private, presence, cache) to 60 clients \
         on 3 edges; edge 2 SIGKILLed, client 0 cut for 5 s: {} resumes, {} replayed events in all, \
         client 0 replayed {} ({} connections); no loss, no duplicate, in order",
        report.total("resumed"),
        report.total("replayed"),
        client_0["replayed"],
        client_0["connections"],
    );
    assert_eq!(report.total("failed"), 0, "no resume failed");
    assert!(
        report.total("resumed") >= 4 * 20,
        "every client of the killed edge resumed every channel"
    );
    // How many events fall in the 5 s cut depends on the trigger rate this machine reaches
    // (measured from 90/s to 200/s); that some were replayed, and none missed above, is the point.
    assert!(
        client_0["replayed"].as_u64().unwrap_or(0) > 0,
        "client 0 got the events of its outage replayed: {client_0}"
    );
    clients.close().await;
}

#[tokio::test]
async fn history_that_no_longer_reaches_back_fails_the_resume_loudly() {
    let test = "history_that_no_longer_reaches_back_fails_the_resume_loudly";
    let cluster =
        Cluster::start_with(test, 1, &[("HERALD_HUB__HISTORY_MAX_EVENTS", "10")], &[]).await;
    let edge = &cluster.edges[0];
    let proxy = Proxy::start(vec![edge.websocket.clone()], 0).await;
    let mut clients = ResumeClients::start(
        test,
        "client",
        edge,
        &[proxy.port()],
        &["feed"],
        true,
        &Value::Null,
    )
    .await;
    let api = cluster.api();
    for n in 1..=5 {
        trigger(&api, "feed", n).await;
    }
    clients.report_after(&[("feed", 5)]).await;
    // Cut for longer than the history window: 30 events while history holds 10.
    proxy.cut(Duration::from_secs(1));
    no_connections(edge).await;
    for n in 6..=35 {
        trigger(&api, "feed", n).await;
    }
    let report = clients.report_after(&[("feed", 35)]).await;
    let client = &report.clients[0];
    let tally = report.tally(0, "feed");
    eprintln!(
        "resume beyond history: {} replayed, {} lost, resume_failed = {}",
        client["replayed"], tally.missing, client["failures"]
    );
    assert_eq!(report.total("failed"), 1, "{client}");
    let failure = &client["failures"][0];
    assert_eq!(failure["reason"], "history_exceeded", "{client}");
    let position = |field: &str| failure[field].as_str().and_then(|p| p.parse::<u64>().ok());
    assert!(
        position("after") < position("lost_through"),
        "a position and the last one lost: {client}"
    );
    assert!(tally.in_order && tally.duplicates == 0, "{tally:?}");
    assert!(
        tally.missing > 0 && tally.missing <= 30 - 10,
        "the lost events are what history no longer held: {tally:?}"
    );
    clients.close().await;
}

on_every_topology!(the_first_event_of_a_channel_published_while_a_client_was_away_is_replayed);

/// A client subscribed with the add-on to a channel no event was ever published on, cut while
/// the channel's first event is published (the channel vacated meanwhile, so a hub alone could
/// forget it): its resume replays that event, and does not fail.
async fn the_first_event_of_a_channel_published_while_a_client_was_away_is_replayed(shape: Shape) {
    let topology = Topology::start(
        shape,
        "the_first_event_of_a_channel_published_while_a_client_was_away_is_replayed",
    )
    .await;
    let edge = &topology.edges()[0];
    let proxy = Proxy::start(vec![edge.websocket.clone()], 0).await;
    let mut clients = ResumeClients::start(
        topology.name(),
        "client",
        edge,
        &[proxy.port()],
        &["fresh"],
        true,
        &Value::Null,
    )
    .await;
    // Cut until the event is published: pusher-js retries meanwhile and is refused.
    proxy.cut(Duration::from_secs(600));
    no_connections(edge).await;
    let api = topology.api_for_other_hub(0).await;
    eventually(
        "the channel to be vacated",
        Duration::from_secs(10),
        async || api.get("channels/fresh", &[]).await.body["occupied"].as_bool(),
        |occupied| *occupied == Some(false),
    )
    .await
    .unwrap();
    trigger(&api, "fresh", 1).await;
    proxy.cut(Duration::ZERO);
    let report = clients.report_after(&[("fresh", 1)]).await;
    let client = &report.clients[0];
    let tally = report.tally(0, "fresh");
    assert_eq!(report.total("failed"), 0, "no resume failed: {client}");
    assert!(
        tally.count == 1 && tally.missing == 0 && tally.duplicates == 0,
        "{tally:?}: {client}"
    );
    assert_eq!(
        client["replayed"].as_u64(),
        Some(1),
        "the event came by the replay: {client}"
    );
    clients.close().await;
}

#[tokio::test]
async fn without_the_add_on_the_gap_is_lost_as_with_pusher_and_frames_are_unchanged() {
    let test = "without_the_add_on_the_gap_is_lost_as_with_pusher_and_frames_are_unchanged";
    let cluster = Cluster::start(test, 1, &[]).await;
    let edge = &cluster.edges[0];
    let proxy = Proxy::start(vec![edge.websocket.clone()], 0).await;
    let mut clients = ResumeClients::start(
        test,
        "client",
        edge,
        &[proxy.port()],
        &["feed"],
        false,
        &Value::Null,
    )
    .await;
    // Two raw sockets: one as every Pusher client subscribes, one opting in.
    let mut plain = client::open(&edge.url()).await;
    client::next_json(&mut plain).await;
    client::send_json(
        &mut plain,
        json!({"event": "pusher:subscribe", "data": {"channel": "feed"}}),
    )
    .await;
    client::next_json(&mut plain).await;
    let mut positioned = client::open(&edge.url()).await;
    client::next_json(&mut positioned).await;
    client::send_json(
        &mut positioned,
        json!({"event": "pusher:subscribe", "data": {"channel": "feed", "herald": {}}}),
    )
    .await;
    client::next_json(&mut positioned).await;
    // A position Herald never handed out is refused, and the socket stays usable.
    client::send_json(
        &mut positioned,
        json!({"event": "pusher:subscribe", "data": {"channel": "other", "herald": {"after": "soon"}}}),
    )
    .await;
    let refusal = client::next_json(&mut positioned).await;
    assert_eq!(refusal["event"], "pusher:error", "{refusal}");
    assert!(
        refusal["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Invalid resume data") && m.contains("\"soon\"")),
        "{refusal}"
    );

    let api = cluster.api();
    trigger(&api, "feed", 1).await;
    clients.report_after(&[("feed", 1)]).await;
    let expected = r#"{"event":"tick","channel":"feed","data":"{\"n\":1}"}"#;
    assert_eq!(text(&mut plain).await, expected);
    let extended = text(&mut positioned).await;
    let body = extended
        .strip_prefix(&expected[..expected.len() - 1])
        .unwrap_or_else(|| panic!("the positioned frame extends the Pusher frame: {extended}"));
    assert!(
        body.starts_with(r#","herald_seq":""#) && body.ends_with(r#""}"#),
        "{extended}"
    );

    proxy.cut(Duration::from_secs(1));
    no_connections_but(edge, 2).await;
    for n in 2..=11 {
        trigger(&api, "feed", n).await;
    }
    // The client is back (pusher-js reconnected and subscribed) before the fence is sent.
    clients.subscribed_times(2).await;
    trigger(&api, "feed", 12).await;
    let report = clients.report_after(&[("feed", 12)]).await;
    let tally = report.tally(0, "feed");
    assert!(
        tally.missing >= 10 && tally.in_order && tally.duplicates == 0,
        "the events of the outage are gone, as with Pusher: {tally:?}"
    );
    assert_eq!(report.total("resumed") + report.total("failed"), 0);
    clients.close().await;
}

/// Waits until `edge` holds exactly `count` connections.
async fn no_connections_but(edge: &Edge, count: u64) {
    eventually(
        "the edge to see the cut client gone",
        Duration::from_secs(10),
        async || edge.stats().await["connections"].as_u64(),
        |connections| *connections == Some(count),
    )
    .await
    .unwrap();
}

/// The next text frame's bytes, as sent.
async fn text(ws: &mut client::Socket) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        if let Message::Text(text) = message {
            return text.to_string();
        }
    }
}

#[tokio::test]
async fn laravel_echo_private_encrypted_and_join_resume_with_the_add_on() {
    let test = "laravel_echo_private_encrypted_and_join_resume_with_the_add_on";
    let cluster = Cluster::start(test, 1, &[]).await;
    let edge = &cluster.edges[0];
    let proxy = Proxy::start(vec![edge.websocket.clone()], 0).await;
    let launch = Launch {
        pusher: json!({"wsPort": proxy.port()}),
        script: json!({"resume": true}),
        ..Launch::default()
    };
    let user = json!({"id": "7", "info": {"name": "Ada"}});
    let mut echo = EchoClient::connect_with(test, "echo", edge, &user, &launch).await;
    echo.subscribe(Kind::Private, "orders", &[".shipped"], &[])
        .await;
    echo.subscribe(Kind::Presence, "room", &[".said"], &[])
        .await;
    echo.subscribe(Kind::EncryptedPrivate, "secret", &[".msg"], &[])
        .await;
    let api = cluster.api();
    let send = async |channel: &str, event: &str, n: u64| {
        let body = json!({"name": event, "channel": channel, "data": json!({"n": n}).to_string()});
        assert_eq!(api.trigger(body).await.status, 200);
    };
    send("private-orders", "shipped", 1).await;
    assert_eq!(echo.expect("event").await["data"]["n"], 1);
    // Each channel has carried an event before the cut (see "Bounds" in docs/resume.md for a
    // channel that never carried one).
    let first = json!([{"op": "trigger", "channels": "private-encrypted-secret", "event": "msg",
                        "data": {"n": 1}}]);
    node_sdk(test, &server(&cluster), first).await;
    assert_eq!(echo.expect("event").await["data"]["n"], 1);

    proxy.cut(Duration::from_secs(1));
    no_connections(edge).await;
    for n in 2..=4 {
        send("private-orders", "shipped", n).await;
        send("presence-room", "said", n).await;
    }
    // Encrypted with the app's master key by the npm SDK, as Laravel would.
    let encrypted: Vec<Value> = (2..=4)
        .map(|n| {
            json!({"op": "trigger", "channels": "private-encrypted-secret", "event": "msg",
                   "data": {"n": n}})
        })
        .collect();
    for result in node_sdk(test, &server(&cluster), Value::Array(encrypted)).await {
        assert_eq!(result["status"], 200, "{result}");
    }
    // Back: the presence channel is re-synchronised (`here`), the private one confirmed, and
    // what each missed follows, in order, once.
    let mut orders = Vec::new();
    let mut room = Vec::new();
    let mut secret = Vec::new();
    let mut here = false;
    while orders.len() < 3 || room.len() < 3 || secret.len() < 3 || !here {
        let report = echo.next_report().await;
        match (report["type"].as_str(), report["channel"].as_str()) {
            (Some("event"), Some("private-orders")) => orders.push(report["data"]["n"].clone()),
            (Some("event"), Some("presence-room")) => room.push(report["data"]["n"].clone()),
            (Some("event"), Some("private-encrypted-secret")) => {
                secret.push(report["data"]["n"].clone());
            }
            (Some("here"), _) => {
                assert_eq!(report["users"], json!([{"name": "Ada"}]), "{report}");
                here = true;
            }
            (Some("subscribed" | "connected" | "resumed" | "error"), _) => {}
            _ => panic!("unexpected report {report}"),
        }
    }
    assert_eq!(orders, vec![json!(2), json!(3), json!(4)]);
    assert_eq!(room, vec![json!(2), json!(3), json!(4)]);
    assert_eq!(
        secret,
        vec![json!(2), json!(3), json!(4)],
        "decrypted, in order"
    );
    echo.close().await;
}

#[tokio::test]
async fn the_add_on_unit_tests_pass() {
    let root = herald_tests::binary::workspace_root();
    let output = tokio::process::Command::new("node")
        .args(["--test", "test/"])
        .current_dir(root.join("clients/js"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (is it on PATH?)");
    assert!(
        output.status.success(),
        "node --test in clients/js failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
