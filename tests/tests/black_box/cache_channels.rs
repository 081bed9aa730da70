//! Cache channels: a new subscriber gets the last event right after its subscription succeeds,
//! or `pusher:cache_miss` when there is none — on one hub and in a region, over one Redis and
//! over a Redis Cluster (`on_every_topology!`).

use herald_tests::client::PusherClient;
use herald_tests::on_every_topology;
use herald_tests::topology::{Shape, Topology};
use serde_json::json;

on_every_topology!(new_subscribers_get_the_last_event_or_a_cache_miss);
async fn new_subscribers_get_the_last_event_or_a_cache_miss(shape: Shape) {
    let topology =
        Topology::start(shape, "new_subscribers_get_the_last_event_or_a_cache_miss").await;
    let channel = "cache-prices";
    let mut first = topology.connect(0).await;
    first.subscribe(channel).await;
    assert_eq!(
        first.next_event().await,
        json!({"event": "pusher:cache_miss", "channel": channel, "data": "{}"})
    );

    // In a region, from the hub the first subscriber's edge is not linked to.
    let api = topology.api_for_other_hub(0).await;
    for price in ["1", "2"] {
        let sent = api
            .trigger(json!({"name": "price", "channel": channel, "data": price}))
            .await;
        assert_eq!(sent.status, 200);
        assert_eq!(first.next_event().await["data"], price);
    }
    // Same edge (cache held locally) and the other edges (cache from their hub; in a region,
    // edge 1 is linked to the other hub).
    for edge in topology.edges() {
        let mut late = PusherClient::connect(&edge.url()).await;
        late.subscribe(channel).await;
        assert_eq!(
            late.next_event().await,
            json!({"event": "price", "channel": channel, "data": "2"})
        );
    }
    // Private cache channels too.
    let mut private = topology.connect(1).await;
    assert_eq!(
        private.subscribe_private("private-cache-p").await["event"],
        "pusher_internal:subscription_succeeded"
    );
    assert_eq!(private.next_event().await["event"], "pusher:cache_miss");
}
