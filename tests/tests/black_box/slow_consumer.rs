//! One slow client never blocks the others: its bounded outbox overflows, it is closed with
//! 4200 (pusher-js reconnects at once), and every other subscriber receives every event.

use herald_tests::api::Api;
use herald_tests::client::{Frame, PusherClient, next_frame};
use herald_tests::topology::Cluster;
use serde_json::{Value, json};

/// Events sent; at 10 KB each they exceed the slow socket's kernel buffers several times over.
const EVENTS: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_and_the_others_get_everything() {
    let env = [("HERALD_EDGE__OUTBOX_FRAMES", "256")];
    let cluster = Cluster::start(
        "a_slow_consumer_is_closed_and_the_others_get_everything",
        1,
        &env,
    )
    .await;
    let edge = &cluster.edges[0];
    let mut slow = PusherClient::connect(&edge.url()).await;
    let mut fast = PusherClient::connect(&edge.url()).await;
    slow.subscribe("firehose").await;
    fast.subscribe("firehose").await;

    let reader = tokio::spawn(async move {
        for expected in 0..EVENTS {
            let frame = fast.next_event().await;
            let data = frame["data"].as_str().unwrap_or_default();
            assert!(
                data.starts_with(&format!("{expected:05}")),
                "event {expected} out of order"
            );
            assert_eq!(data.len(), 10_005);
        }
    });
    let api = cluster.api();
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(10) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"name": "e", "channel": "firehose", "data": format!("{i:05}{}", "x".repeat(10_000))}))
            .collect();
        let reply = api
            .signed(
                "POST",
                "batch_events",
                &[],
                &json!({"batch": batch}).to_string(),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    reader
        .await
        .expect("the fast subscriber received every event in order");

    // Only now does the slow client read: some events, then the 4200 error and close.
    let mut received = 0;
    let close = loop {
        match next_frame(&mut slow.ws).await {
            Frame::Json(frame) if frame["event"] == "e" => received += 1,
            Frame::Json(frame) => {
                assert_eq!(frame["event"], "pusher:error", "{frame}");
                assert_eq!(frame["data"]["code"], 4200, "{frame}");
            }
            Frame::Closed(code, _) => break code,
            Frame::Pong => {}
        }
    };
    assert_eq!(close, Some(4200));
    assert!(
        received < EVENTS,
        "the slow client was cut off ({received} events)"
    );

    let stats = Api::new(&edge.admin).raw("GET", "/stats", "").await.body;
    assert_eq!(stats["counters"]["slow_consumer_closes"], 1, "{stats}");
}
