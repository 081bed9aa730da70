//! SIGTERM drains an edge: `/up` turns 503 at once, clients get Pusher's 4200 ("reconnect now"),
//! and the process exits cleanly.

use std::time::Duration;

use herald_tests::api::Api;
use herald_tests::client::{Frame, PusherClient, next_frame};
use herald_tests::topology::Cluster;

#[tokio::test]
async fn sigterm_drains_clients_with_4200_and_exits() {
    let env = [("HERALD_EDGE__DRAIN_TIMEOUT_SECS", "3")];
    let mut cluster = Cluster::start("sigterm_drains_clients_with_4200_and_exits", 1, &env).await;
    let edge = &mut cluster.edges[0];
    let mut client = PusherClient::connect(&edge.url()).await;
    client.subscribe("draining").await;
    let admin = Api::new(&edge.admin);
    assert_eq!(admin.raw("GET", "/up", "").await.status, 200);

    edge.process.terminate();
    // /up flips as soon as the signal is handled; poll for that state change.
    let mut status = 200;
    for _ in 0..100 {
        status = admin.raw("GET", "/up", "").await.status;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503, "/up must report draining");

    match next_frame(&mut client.ws).await {
        Frame::Json(frame) => {
            assert_eq!(frame["event"], "pusher:error", "{frame}");
            assert_eq!(frame["data"]["code"], 4200, "{frame}");
        }
        other => panic!("expected pusher:error 4200, got {other:?}"),
    }
    assert!(matches!(
        next_frame(&mut client.ws).await,
        Frame::Closed(Some(4200), _)
    ));
    assert_eq!(
        edge.process.exit_code(Duration::from_secs(10)).await,
        Some(0)
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let env = [("HERALD_EDGE__DRAIN_TIMEOUT_SECS", "30")];
    let mut cluster =
        Cluster::start("a_draining_edge_answers_new_upgrades_with_503", 1, &env).await;
    let edge = &mut cluster.edges[0];
    let head = "GET /app/test-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    // A connection whose request head is still incomplete keeps the edge draining (it waits for
    // its open connections) until this test has asked what it wants to ask.
    let mut pending = tokio::net::TcpStream::connect(&edge.websocket)
        .await
        .expect("the edge accepts");
    pending
        .write_all(&head.as_bytes()[..20])
        .await
        .expect("a partial head can be sent");
    let admin = Api::new(&edge.admin);
    assert_eq!(admin.raw("GET", "/up", "").await.status, 200);

    edge.process.terminate();
    let mut status = 200;
    for _ in 0..100 {
        status = admin.raw("GET", "/up", "").await.status;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503, "/up must report draining");

    let answer = |mut stream: tokio::net::TcpStream| async move {
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .expect("the edge answers within 10 s")
        .expect("the answer is readable");
        response
    };
    let mut fresh = tokio::net::TcpStream::connect(&edge.websocket)
        .await
        .expect("a draining edge still accepts connections");
    fresh
        .write_all(head.as_bytes())
        .await
        .expect("the head can be sent");
    let response = answer(fresh).await;
    assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
    assert!(response.contains("draining"), "{response}");

    pending
        .write_all(&head.as_bytes()[20..])
        .await
        .expect("the rest of the head can be sent");
    let response = answer(pending).await;
    assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
    assert_eq!(
        edge.process.exit_code(Duration::from_secs(10)).await,
        Some(0)
    );
}
