//! Real Pusher software against real `herald` processes: pusher-js 8 (Node build) as the client,
//! the official `pusher` server SDKs from npm and PyPI as the trigger side. The scripts live in
//! `tests/compat/`; their dependencies install on first use (see `herald_tests::compat`).
//!
//! What pusher-js hands the app is compared exactly: pusher-js parses a JSON `data` string into a
//! value, and the script prints that value back.

use std::collections::BTreeMap;

use herald_tests::compat::{JsClient, node_sdk, python_sdk, server, server_on};
use herald_tests::on_every_topology;
use herald_tests::topology::{Cluster, Shape, Topology};
use serde_json::{Value, json};

/// A payload that exercises JSON encoding on the way through: non-ASCII text (the Python SDK
/// sends it as `\u` escapes, surrogate pairs included), quotes, HTML, numbers, null, nesting.
fn payload() -> Value {
    json!({
        "id": 42,
        "note": "ünïcode \"quoted\" </script> ✓ 🦀",
        "nested": {"list": [1, 2.5, null, true, "x"], "empty": {}},
    })
}

on_every_topology!(pusher_js_on_two_edges_receives_what_the_npm_sdk_triggers);
async fn pusher_js_on_two_edges_receives_what_the_npm_sdk_triggers(shape: Shape) {
    let topology = Topology::start(
        shape,
        "pusher_js_on_two_edges_receives_what_the_npm_sdk_triggers",
    )
    .await;
    let test = topology.name();
    let mut first = JsClient::connect(test, "pusher-js-0", &topology.edges()[0]).await;
    let mut second = JsClient::connect(test, "pusher-js-1", &topology.edges()[1]).await;
    assert_ne!(first.socket_id, second.socket_id);
    first.subscribe("orders").await;
    second.subscribe("orders").await;

    let results = node_sdk(
        test,
        &server_on(topology.other_hub(0).await),
        json!([
            {"op": "trigger", "channels": "orders", "event": "order.created", "data": payload(),
             "params": {"info": "subscription_count"}},
            {"op": "trigger", "channels": "orders", "event": "order.note", "data": "plain text, not JSON"},
        ]),
    )
    .await;
    // Both subscriptions were confirmed, so the hub that is not the first one's counts both.
    assert_eq!(
        results,
        vec![
            json!({"op": "trigger", "status": 200,
                   "body": {"channels": {"orders": {"subscription_count": 2}}}}),
            json!({"op": "trigger", "status": 200, "body": {}}),
        ]
    );

    for client in [&mut first, &mut second] {
        assert_eq!(
            client.next_event().await,
            json!({"channel": "orders", "event": "order.created", "data": payload()})
        );
        assert_eq!(
            client.next_event().await,
            json!({"channel": "orders", "event": "order.note", "data": "plain text, not JSON"})
        );
    }
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn pusher_js_on_two_edges_receives_what_the_python_sdk_triggers() {
    const TEST: &str = "pusher_js_on_two_edges_receives_what_the_python_sdk_triggers";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let mut first = JsClient::connect(TEST, "pusher-js-0", &cluster.edges[0]).await;
    let mut second = JsClient::connect(TEST, "pusher-js-1", &cluster.edges[1]).await;
    first.subscribe("orders").await;
    second.subscribe("orders").await;

    let results = python_sdk(
        TEST,
        &server(&cluster),
        json!([
            {"op": "trigger", "channels": "orders", "event": "order.created", "data": payload()},
            {"op": "trigger_batch", "batch": [
                {"channel": "orders", "name": "order.shipped", "data": {"id": 42, "by": "ünïcode"}},
                {"channel": "orders", "name": "fence", "data": "end"},
            ]},
        ]),
    )
    .await;
    assert_eq!(
        results,
        vec![
            json!({"op": "trigger", "result": {}}),
            json!({"op": "trigger_batch", "result": {}}),
        ]
    );

    for client in [&mut first, &mut second] {
        assert_eq!(
            client.next_event().await,
            json!({"channel": "orders", "event": "order.created", "data": payload()})
        );
        assert_eq!(
            client.next_event().await,
            json!({"channel": "orders", "event": "order.shipped", "data": {"id": 42, "by": "ünïcode"}})
        );
        assert_eq!(
            client.next_event().await,
            json!({"channel": "orders", "event": "fence", "data": "end"})
        );
    }
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn npm_sdk_multi_channel_batch_and_socket_id_exclusion_reach_pusher_js() {
    const TEST: &str = "npm_sdk_multi_channel_batch_and_socket_id_exclusion_reach_pusher_js";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let mut near = JsClient::connect(TEST, "pusher-js-near", &cluster.edges[0]).await;
    let mut far = JsClient::connect(TEST, "pusher-js-far", &cluster.edges[1]).await;
    // The socket that "sent" the events: the SDKs pass its socket_id so it does not get them.
    let mut sender = JsClient::connect(TEST, "pusher-js-sender", &cluster.edges[0]).await;
    for client in [&mut near, &mut far] {
        client.subscribe("ch-a").await;
        client.subscribe("ch-b").await;
    }
    sender.subscribe("ch-a").await;
    let excluded = sender.socket_id.clone();

    let results = node_sdk(
        TEST,
        &server(&cluster),
        json!([
            {"op": "trigger", "channels": ["ch-a", "ch-b"], "event": "multi", "data": {"n": 1}},
            {"op": "triggerBatch", "batch": [
                {"channel": "ch-a", "name": "batch-a", "data": {"n": 2}},
                {"channel": "ch-b", "name": "batch-b", "data": "two"},
                {"channel": "ch-a", "name": "batch-hidden", "data": {"n": 3}, "socket_id": excluded},
            ]},
            {"op": "trigger", "channels": "ch-a", "event": "hidden", "data": {"n": 4},
             "params": {"socket_id": excluded}},
            {"op": "trigger", "channels": ["ch-a", "ch-b"], "event": "fence", "data": {"n": 5}},
        ]),
    )
    .await;
    let trigger_ok = json!({"op": "trigger", "status": 200, "body": {}});
    assert_eq!(
        results,
        vec![
            trigger_ok.clone(),
            json!({"op": "triggerBatch", "status": 200, "body": {}}),
            trigger_ok.clone(),
            trigger_ok,
        ]
    );

    let everything = BTreeMap::from([
        (
            "ch-a".to_string(),
            vec![
                json!({"event": "multi", "data": {"n": 1}}),
                json!({"event": "batch-a", "data": {"n": 2}}),
                json!({"event": "batch-hidden", "data": {"n": 3}}),
                json!({"event": "hidden", "data": {"n": 4}}),
                json!({"event": "fence", "data": {"n": 5}}),
            ],
        ),
        (
            "ch-b".to_string(),
            vec![
                json!({"event": "multi", "data": {"n": 1}}),
                json!({"event": "batch-b", "data": "two"}),
                json!({"event": "fence", "data": {"n": 5}}),
            ],
        ),
    ]);
    assert_eq!(
        near.events_until_fences(&["ch-a", "ch-b"]).await,
        everything
    );
    assert_eq!(far.events_until_fences(&["ch-a", "ch-b"]).await, everything);
    // The fence proves the excluded events were not merely late.
    assert_eq!(
        sender.events_until_fences(&["ch-a"]).await,
        BTreeMap::from([(
            "ch-a".to_string(),
            vec![
                json!({"event": "multi", "data": {"n": 1}}),
                json!({"event": "batch-a", "data": {"n": 2}}),
                json!({"event": "fence", "data": {"n": 5}}),
            ],
        )])
    );
    for client in [near, far, sender] {
        client.close().await;
    }
}

on_every_topology!(python_sdk_channel_queries_match_pusher_js_subscribers);
async fn python_sdk_channel_queries_match_pusher_js_subscribers(shape: Shape) {
    // Every punctuation mark Pusher allows in a channel name. The Python SDK puts names into the
    // request path and the prefix filter into the query string without percent-encoding them,
    // and signs them that way.
    const ODD: &str = "room-a=b@c,d.e;f_g";
    let topology = Topology::start(
        shape,
        "python_sdk_channel_queries_match_pusher_js_subscribers",
    )
    .await;
    let test = topology.name();
    let mut first = JsClient::connect(test, "pusher-js-0", &topology.edges()[0]).await;
    let mut second = JsClient::connect(test, "pusher-js-1", &topology.edges()[1]).await;
    first.subscribe("room-1").await;
    second.subscribe("room-1").await;
    first.subscribe("room-2").await;
    second.subscribe("lobby").await;
    second.subscribe(ODD).await;

    let listed = |names: &[&str]| {
        let channels: serde_json::Map<String, Value> = names
            .iter()
            .map(|name| (name.to_string(), json!({})))
            .collect();
        json!({"op": "channels_info", "result": {"channels": channels}})
    };
    let info = |result: Value| json!({"op": "channel_info", "result": result});
    // Every subscription is confirmed: the hub that is not the first client's answers, then the
    // one that is not the second's, and both count everything at once.
    for edge in [0, 1] {
        let results = python_sdk(
            test,
            &server_on(topology.other_hub(edge).await),
            json!([
                {"op": "channels_info", "prefix_filter": "room-"},
                {"op": "channels_info"},
                {"op": "channels_info", "prefix_filter": "room-a=b@c,d.e;"},
                {"op": "channel_info", "channel": "room-1", "attributes": ["subscription_count"]},
                {"op": "channel_info", "channel": "room-2", "attributes": ["subscription_count"]},
                {"op": "channel_info", "channel": ODD, "attributes": ["subscription_count"]},
                {"op": "channel_info", "channel": "room-1"},
                {"op": "channel_info", "channel": "nobody-here"},
            ]),
        )
        .await;
        assert_eq!(
            results,
            vec![
                listed(&["room-1", "room-2", ODD]),
                listed(&["room-1", "room-2", "lobby", ODD]),
                listed(&[ODD]),
                info(json!({"occupied": true, "subscription_count": 2})),
                info(json!({"occupied": true, "subscription_count": 1})),
                info(json!({"occupied": true, "subscription_count": 1})),
                info(json!({"occupied": true})),
                info(json!({"occupied": false})),
            ]
        );
    }
    let results = python_sdk(
        test,
        &server_on(topology.other_hub(1).await),
        json!([{"op": "trigger", "channels": ODD, "event": "odd", "data": {"ok": true}}]),
    )
    .await;
    assert_eq!(results, vec![json!({"op": "trigger", "result": {}})]);
    assert_eq!(
        second.next_event().await,
        json!({"channel": ODD, "event": "odd", "data": {"ok": true}})
    );
    first.close().await;
    second.close().await;
}
