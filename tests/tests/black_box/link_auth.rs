//! The link is authenticated: an edge whose token is signed with another cluster key is refused
//! by the hub, never becomes ready, and the hub keeps serving edges with valid tokens.

use std::time::Duration;

use herald_tests::api::Api;
use herald_tests::client::PusherClient;
use herald_tests::process::HeraldProcess;
use herald_tests::topology::{Edge, Hub};

#[tokio::test]
async fn an_edge_with_a_bad_token_is_refused() {
    let test = "an_edge_with_a_bad_token_is_refused";
    let hub = Hub::start(test, "hub", &[]).await;
    let args = hub.edge_args("a-different-cluster-key-000");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let impostor = HeraldProcess::spawn(test, "impostor", &args, &[]);
    impostor
        .wait_for_log("Hub refused the link", Duration::from_secs(20))
        .await;
    hub.process
        .wait_for_log("Edge refused", Duration::from_secs(5))
        .await;
    assert!(
        impostor.stderr().contains("InvalidSignature"),
        "{}",
        impostor.stderr()
    );

    let stats = Api::new(&hub.http).raw("GET", "/stats", "").await.body;
    assert_eq!(stats["counters"]["edges"], 0, "{stats}");
    assert!(
        stats["counters"]["links_refused"].as_u64() >= Some(1),
        "{stats}"
    );

    // A correctly keyed edge links to the same hub and serves.
    let edge = Edge::start(test, "edge", &hub, &[]).await;
    let mut client = PusherClient::connect(&edge.url()).await;
    client.subscribe("after-impostor").await;
}
