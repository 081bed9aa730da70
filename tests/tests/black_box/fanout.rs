//! Public channels end to end: hub + two edges as separate processes, real QUIC link, signed
//! HTTP triggers, wire-level WebSocket clients. Channel queries and counts run against one hub
//! and against a region of two, over one Redis and over a Redis Cluster (`on_every_topology!`).

use herald_tests::client::PusherClient;
use herald_tests::on_every_topology;
use herald_tests::topology::{Cluster, Shape, Topology};
use serde_json::json;

#[tokio::test]
async fn a_trigger_reaches_subscribers_on_both_edges_exactly() {
    let cluster = Cluster::start(
        "a_trigger_reaches_subscribers_on_both_edges_exactly",
        2,
        &[],
    )
    .await;
    let mut first = PusherClient::connect(&cluster.edges[0].url()).await;
    let mut second = PusherClient::connect(&cluster.edges[1].url()).await;
    assert_ne!(
        first.socket_id, second.socket_id,
        "socket ids are unique across edges"
    );
    first.subscribe("orders").await;
    second.subscribe("orders").await;

    let data = "{\"id\":42,\"note\":\"ünïcode \\\"quoted\\\"\"}";
    let reply = cluster
        .api()
        .trigger(json!({"name": "order.created", "channels": ["orders"], "data": data}))
        .await;
    assert_eq!((reply.status, reply.body), (200, json!({})));

    let expected = json!({"event": "order.created", "channel": "orders", "data": data});
    assert_eq!(first.next_event().await, expected);
    assert_eq!(second.next_event().await, expected);
}

#[tokio::test]
async fn the_singular_channel_field_and_several_channels_are_accepted() {
    let cluster = Cluster::start(
        "the_singular_channel_field_and_several_channels_are_accepted",
        1,
        &[],
    )
    .await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe("a").await;
    client.subscribe("b").await;
    let api = cluster.api();
    let reply = api
        .trigger(json!({"name": "one", "channel": "a", "data": "1"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        client.next_event().await,
        json!({"event": "one", "channel": "a", "data": "1"})
    );
    let reply = api
        .trigger(json!({"name": "two", "channels": ["a", "b", "unwatched"], "data": "2"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let mut got = vec![client.next_event().await, client.next_event().await];
    got.sort_by_key(|frame| frame["channel"].as_str().unwrap_or_default().to_string());
    assert_eq!(
        got,
        vec![
            json!({"event": "two", "channel": "a", "data": "2"}),
            json!({"event": "two", "channel": "b", "data": "2"}),
        ]
    );
}

#[tokio::test]
async fn socket_id_excludes_only_that_socket() {
    let cluster = Cluster::start("socket_id_excludes_only_that_socket", 2, &[]).await;
    let mut sender = PusherClient::connect(&cluster.edges[0].url()).await;
    let mut same_edge = PusherClient::connect(&cluster.edges[0].url()).await;
    let mut other_edge = PusherClient::connect(&cluster.edges[1].url()).await;
    for client in [&mut sender, &mut same_edge, &mut other_edge] {
        client.subscribe("chat").await;
    }
    let api = cluster.api();
    let excluded = json!({"name": "message", "channel": "chat", "data": "hidden", "socket_id": sender.socket_id});
    assert_eq!(api.trigger(excluded).await.status, 200);
    // The fence: it must be the first thing the excluded socket receives.
    let fence = json!({"name": "fence", "channel": "chat", "data": "after"});
    assert_eq!(api.trigger(fence).await.status, 200);

    let hidden = json!({"event": "message", "channel": "chat", "data": "hidden"});
    let after = json!({"event": "fence", "channel": "chat", "data": "after"});
    assert_eq!(sender.next_event().await, after);
    for client in [&mut same_edge, &mut other_edge] {
        assert_eq!(client.next_event().await, hidden);
        assert_eq!(client.next_event().await, after);
    }
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let cluster = Cluster::start("unsubscribe_stops_delivery", 1, &[]).await;
    let mut leaver = PusherClient::connect(&cluster.edges[0].url()).await;
    let mut stayer = PusherClient::connect(&cluster.edges[0].url()).await;
    leaver.subscribe("news").await;
    stayer.subscribe("news").await;
    leaver.unsubscribe("news").await;
    // pusher:unsubscribe has no reply; a ping round trip proves the edge has processed it.
    leaver.sync().await;

    let api = cluster.api();
    let missed = json!({"name": "n", "channel": "news", "data": "missed"});
    assert_eq!(api.trigger(missed).await.status, 200);
    // The stayer, on the same edge, has it: the edge has handed it to every subscriber.
    assert_eq!(
        stayer.next_event().await,
        json!({"event": "n", "channel": "news", "data": "missed"})
    );
    // The leaver joins again and a fence follows on the same channel: had the event reached
    // the leaver, it would come before the confirmation.
    leaver.subscribe("news").await;
    let fence = json!({"name": "f", "channel": "news", "data": "fence"});
    assert_eq!(api.trigger(fence).await.status, 200);
    assert_eq!(
        leaver.next_event().await,
        json!({"event": "f", "channel": "news", "data": "fence"})
    );
}

#[tokio::test]
async fn resubscribing_after_the_last_subscriber_left_gets_only_new_events() {
    let cluster = Cluster::start(
        "resubscribing_after_the_last_subscriber_left_gets_only_new_events",
        1,
        &[],
    )
    .await;
    let api = cluster.api();
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe("room").await;
    assert_eq!(
        api.trigger(json!({"name": "e", "channel": "room", "data": "1"}))
            .await
            .status,
        200
    );
    assert_eq!(client.next_event().await["data"], "1");
    client.unsubscribe("room").await;
    // pusher:unsubscribe has no reply: without this round trip the trigger below could reach
    // the edge before the unsubscribe does, and "missed" would rightly be delivered.
    client.sync().await;
    assert_eq!(
        api.trigger(json!({"name": "e", "channel": "room", "data": "missed"}))
            .await
            .status,
        200
    );
    client.subscribe("room").await;
    assert_eq!(
        api.trigger(json!({"name": "e", "channel": "room", "data": "3"}))
            .await
            .status,
        200
    );
    assert_eq!(
        client.next_event().await["data"],
        "3",
        "history is never replayed to a new subscription"
    );
}

on_every_topology!(channel_queries_report_occupied_channels_as_objects);
async fn channel_queries_report_occupied_channels_as_objects(shape: Shape) {
    let topology =
        Topology::start(shape, "channel_queries_report_occupied_channels_as_objects").await;
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    a.subscribe("lobby").await;
    b.subscribe("lobby").await;
    a.subscribe("other").await;

    // Once a subscription is confirmed, every hub counts it: ask the hub that is not `a`'s, then
    // the one that is not `b`'s (in a region, each learnt of one socket only through Redis).
    for edge in [0, 1] {
        let api = topology.api_for_other_hub(edge).await;
        let counts = api
            .get("channels/lobby", &[("info", "subscription_count")])
            .await
            .body;
        assert_eq!(counts, json!({"occupied": true, "subscription_count": 2}));

        let list = api.get("channels", &[]).await;
        assert_eq!(
            (list.status, list.body),
            (200, json!({"channels": {"lobby": {}, "other": {}}}))
        );
        let filtered = api.get("channels", &[("filter_by_prefix", "lob")]).await;
        assert_eq!(filtered.body, json!({"channels": {"lobby": {}}}));
        let empty = api.get("channels/nobody-here", &[]).await;
        assert_eq!(
            (empty.status, empty.body),
            (200, json!({"occupied": false}))
        );

        let reply = api
            .trigger(
                json!({"name": "e", "channel": "lobby", "data": "x", "info": "subscription_count"}),
            )
            .await;
        assert_eq!(
            reply.body,
            json!({"channels": {"lobby": {"subscription_count": 2}}})
        );
    }
}

on_every_topology!(subscription_counts_are_announced_when_the_app_asks);
async fn subscription_counts_are_announced_when_the_app_asks(shape: Shape) {
    let hub_env = [
        ("HERALD_APP__SUBSCRIPTION_COUNT_EVENTS", "true"),
        ("HERALD_HUB__SUBSCRIPTION_COUNT_INTERVAL_MS", "100"),
    ];
    let topology = Topology::start_with(
        shape,
        "subscription_counts_are_announced_when_the_app_asks",
        &hub_env,
        &[],
    )
    .await;
    let mut first = topology.connect(0).await;
    first.subscribe("counted").await;
    let mut second = topology.connect(1).await;
    second.subscribe("counted").await;
    // The count may be announced at 1 first, coalesced per interval; it settles at 2.
    loop {
        let frame = first.next_event().await;
        assert_eq!(
            frame["event"], "pusher_internal:subscription_count",
            "{frame}"
        );
        assert_eq!(frame["channel"], "counted");
        let data: serde_json::Value =
            serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
        if data == json!({"subscription_count": 2}) {
            break;
        }
        assert_eq!(data, json!({"subscription_count": 1}));
    }
}
