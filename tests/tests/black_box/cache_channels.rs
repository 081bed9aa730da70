//! Cache channels: a new subscriber gets the last event right after its subscription succeeds,
//! or `pusher:cache_miss` when there is none.

use herald_tests::client::PusherClient;
use herald_tests::topology::Cluster;
use serde_json::json;

#[tokio::test]
async fn new_subscribers_get_the_last_event_or_a_cache_miss() {
    let cluster =
        Cluster::start("new_subscribers_get_the_last_event_or_a_cache_miss", 2, &[]).await;
    let channel = "cache-prices";
    let mut first = PusherClient::connect(&cluster.edges[0].url()).await;
    first.subscribe(channel).await;
    assert_eq!(
        first.next_event().await,
        json!({"event": "pusher:cache_miss", "channel": channel, "data": "{}"})
    );

    let api = cluster.api();
    for price in ["1", "2"] {
        let sent = api
            .trigger(json!({"name": "price", "channel": channel, "data": price}))
            .await;
        assert_eq!(sent.status, 200);
        assert_eq!(first.next_event().await["data"], price);
    }
    // Same edge (cache held locally) and the other edge (cache from the hub).
    for edge in &cluster.edges {
        let mut late = PusherClient::connect(&edge.url()).await;
        late.subscribe(channel).await;
        assert_eq!(
            late.next_event().await,
            json!({"event": "price", "channel": channel, "data": "2"})
        );
    }
    // Private cache channels too.
    let mut private = PusherClient::connect(&cluster.edges[1].url()).await;
    assert_eq!(
        private.subscribe_private("private-cache-p").await["event"],
        "pusher_internal:subscription_succeeded"
    );
    assert_eq!(private.next_event().await["event"], "pusher:cache_miss");
}
