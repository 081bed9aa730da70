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
