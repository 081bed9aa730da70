//! SIGTERM drains an edge, as README.md and docs/protocol-errors.md say: `/up` turns 503 at once
//! and new WebSocket upgrades get an HTTP 503, each client gets Pusher's 4200 ("reconnect now") and a 4200
//! close at a random moment within the drain window (the first 80 % of
//! `edge.drain_timeout_secs`), and the process exits as soon as its last client is gone.

use std::time::{Duration, Instant};

use herald_tests::api::Api;
use herald_tests::client::{Frame, PusherClient, next_frame_within};
use herald_tests::eventually::eventually;
use herald_tests::topology::{Cluster, Edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// "At once": how long `/up` may take to turn 503 after the signal is sent.
const AT_ONCE: Duration = Duration::from_secs(1);
/// Slack for a loaded machine on top of a bound the edge promises.
const SLACK: Duration = Duration::from_secs(1);

/// Waits until the edge's `/up` answers 503, at most [`AT_ONCE`] after `signalled`.
async fn up_turns_503(edge: &Edge, signalled: Instant) {
    let admin = Api::new(&edge.admin);
    eventually(
        "/up to answer 503 after SIGTERM",
        AT_ONCE.saturating_sub(signalled.elapsed()),
        async || admin.raw("GET", "/up", "").await,
        |reply| reply.status == 503,
    )
    .await
    .unwrap();
}

/// A WebSocket upgrade request for the test app, as a client sends it.
const UPGRADE: &str = "GET /app/test-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Reads the edge's whole answer on `stream` (it answers and closes).
async fn answer(mut stream: TcpStream) -> String {
    let mut response = String::new();
    tokio::time::timeout(
        herald_tests::client::FRAME_TIMEOUT,
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the edge answers and closes")
    .expect("the answer is readable");
    response
}

/// What a new WebSocket upgrade gets from the edge.
async fn upgrade(edge: &Edge) -> String {
    let mut fresh = TcpStream::connect(&edge.websocket)
        .await
        .expect("a draining edge still accepts connections");
    fresh
        .write_all(UPGRADE.as_bytes())
        .await
        .expect("the head can be sent");
    answer(fresh).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_spreads_4200_over_the_drain_window_then_exits() {
    const CLIENTS: usize = 20;
    // A 5 s drain: the window is its first 4 s.
    let window = Duration::from_secs(4);
    let env = [("HERALD_EDGE__DRAIN_TIMEOUT_SECS", "5")];
    let mut cluster = Cluster::start(
        "sigterm_spreads_4200_over_the_drain_window_then_exits",
        1,
        &env,
    )
    .await;
    let edge = &mut cluster.edges[0];
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = PusherClient::connect(&edge.url()).await;
        client.subscribe("draining").await;
        clients.push(client);
    }
    let admin = Api::new(&edge.admin);
    assert_eq!(admin.raw("GET", "/up", "").await.status, 200);

    edge.process.terminate();
    // Timed from the moment `kill` has sent the signal: starting `kill` is no part of the edge's
    // "at once", and takes a while on a loaded machine.
    let signalled = Instant::now();
    // Each client reads on its own, so its 4200 is timed when it comes.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let bound = window + SLACK;
                let error = match next_frame_within(&mut client.ws, bound).await {
                    Frame::Json(frame) => frame,
                    other => panic!("expected pusher:error 4200, got {other:?}"),
                };
                let at = signalled.elapsed();
                assert_eq!(
                    (&error["event"], &error["data"]["code"]),
                    (&serde_json::json!("pusher:error"), &serde_json::json!(4200)),
                    "{error}"
                );
                let close = next_frame_within(&mut client.ws, SLACK).await;
                assert!(matches!(close, Frame::Closed(Some(4200), _)), "{close:?}");
                at
            })
        })
        .collect();
    up_turns_503(edge, signalled).await;
    let refused = upgrade(edge).await;
    assert!(
        refused.starts_with("HTTP/1.1 503 "),
        "a new client is turned away while draining: {refused}"
    );

    let mut moments = Vec::new();
    for reader in readers {
        moments.push(reader.await.expect("every client got 4200 then close 4200"));
    }
    moments.sort();
    let (first, last) = (moments[0], moments[CLIENTS - 1]);
    eprintln!("drain: 4200 to {CLIENTS} clients from {first:?} to {last:?} after SIGTERM");
    assert!(
        last <= window + SLACK,
        "the last 4200 came {last:?} after SIGTERM, past the {window:?} window"
    );
    // 20 moments uniform over 4 s span less than 1 s with probability below 1e-10: a spread
    // that narrow is a storm, not a drain.
    assert!(
        last - first >= window / 4,
        "4200s not spread over the window: {moments:?}"
    );
    assert_eq!(edge.process.exit_code(SLACK).await, Some(0));
}

#[tokio::test]
async fn a_draining_edge_exits_as_soon_as_its_last_client_leaves() {
    // A 60 s drain: its clients would get their 4200 any time in the next 48 s.
    let env = [("HERALD_EDGE__DRAIN_TIMEOUT_SECS", "60")];
    let mut cluster = Cluster::start(
        "a_draining_edge_exits_as_soon_as_its_last_client_leaves",
        1,
        &env,
    )
    .await;
    let edge = &mut cluster.edges[0];
    let mut first = PusherClient::connect(&edge.url()).await;
    let second = PusherClient::connect(&edge.url()).await;
    first.subscribe("leaving").await;

    edge.process.terminate();
    // Timed from the moment `kill` has sent the signal: starting `kill` is no part of the edge's
    // "at once", and takes a while on a loaded machine.
    let signalled = Instant::now();
    up_turns_503(edge, signalled).await;
    // Both clients leave on their own: one with a close handshake, one by dropping the TCP.
    first
        .ws
        .close(None)
        .await
        .expect("the close frame can be sent");
    drop(second);
    let left = Instant::now();
    assert_eq!(
        edge.process.exit_code(Duration::from_secs(5)).await,
        Some(0),
        "the edge exits once empty, not at the end of its 60 s drain"
    );
    eprintln!(
        "drain: exited {:?} after the last client left",
        left.elapsed()
    );
}

#[tokio::test]
async fn a_hub_stops_on_sigterm() {
    let mut cluster = Cluster::start("a_hub_stops_on_sigterm", 1, &[]).await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe("anything").await;
    cluster.hub.process.terminate();
    assert_eq!(
        cluster.hub.process.exit_code(Duration::from_secs(10)).await,
        Some(0)
    );
}

/// What docs/protocol-errors.md promises: while an edge drains, a new WebSocket upgrade gets an
/// HTTP 503 (the client, or the load balancer, goes elsewhere) rather than a closed port.
#[tokio::test]
async fn a_draining_edge_answers_new_upgrades_with_503() {
    let env = [("HERALD_EDGE__DRAIN_TIMEOUT_SECS", "30")];
    let mut cluster =
        Cluster::start("a_draining_edge_answers_new_upgrades_with_503", 1, &env).await;
    let edge = &mut cluster.edges[0];
    // A connection whose request head is still incomplete keeps the edge draining (it waits for
    // its open connections) until this test has asked what it wants to ask.
    let mut pending = TcpStream::connect(&edge.websocket)
        .await
        .expect("the edge accepts");
    pending
        .write_all(&UPGRADE.as_bytes()[..20])
        .await
        .expect("a partial head can be sent");
    let admin = Api::new(&edge.admin);
    assert_eq!(admin.raw("GET", "/up", "").await.status, 200);

    edge.process.terminate();
    // Timed from the moment `kill` has sent the signal: starting `kill` is no part of the edge's
    // "at once", and takes a while on a loaded machine.
    let signalled = Instant::now();
    up_turns_503(edge, signalled).await;

    let response = upgrade(edge).await;
    assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
    assert!(response.contains("draining"), "{response}");

    pending
        .write_all(&UPGRADE.as_bytes()[20..])
        .await
        .expect("the rest of the head can be sent");
    let response = answer(pending).await;
    assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
    assert_eq!(
        edge.process.exit_code(Duration::from_secs(10)).await,
        Some(0)
    );
}
