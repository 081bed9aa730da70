//! pusher-js 8 and the official server SDKs against a real cluster of one hub and two edges, for
//! the Pusher features beyond public channels: presence members, user sign-in and server-to-user
//! events, cache channels, encrypted channels, the Python SDK's user and presence queries and
//! `terminate_user_connections`, and subscription-count events.
//!
//! Each pusher-js client signs its own subscriptions and sign-ins with the npm `pusher` SDK, as
//! the app's auth endpoints would (see `herald_tests::compat`).

use std::collections::BTreeMap;

use herald_tests::client::PusherClient;
use herald_tests::compat::{JsClient, Server, node_sdk, python_sdk, server, server_on};
use herald_tests::on_every_topology;
use herald_tests::topology::{Cluster, Shape, Topology};
use serde_json::{Value, json};

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "info": {"name": name}})
}

/// A payload with non-ASCII text, quotes and nesting.
fn payload() -> Value {
    json!({"id": 42, "note": "ünïcode \"quoted\" </script> ✓ 🦀", "list": [1, 2.5, null, true]})
}

/// Triggers `fence` on `channel` with the npm SDK through `server`.
async fn fence(test: &str, server: &Server, channel: &str, data: &str) {
    let results = node_sdk(
        test,
        server,
        json!([{"op": "trigger", "channels": channel, "event": "fence", "data": data}]),
    )
    .await;
    assert_eq!(
        results,
        vec![json!({"op": "trigger", "status": 200, "body": {}})]
    );
}

/// Reads a terminated client's lines up to its state change; asserts what pusher-js reports when
/// Herald terminates a user's connection: the `pusher:error` 4009, then the close 4009, which
/// pusher-js treats as "refused" (4000-4099): its connection manager reports the close once more
/// as a WebSocketError, disconnects, and does not reconnect.
async fn assert_terminated(client: &mut JsClient) {
    let mut seen = Vec::new();
    loop {
        let line = client.next_line().await;
        let last = line["type"] == "state";
        seen.push(line);
        if last {
            break;
        }
    }
    let close = json!({"code": 4009, "message": "connection terminated"});
    assert_eq!(
        seen,
        [
            json!({"type": "error", "error": {"type": "PusherError",
                   "data": {"code": 4009, "message": "The server terminated this user's connections"}}}),
            json!({"type": "error", "error": {"type": "PusherError", "data": close}}),
            json!({"type": "error", "error": {"type": "WebSocketError",
                   "error": {"type": "PusherError", "data": close}}}),
            json!({"type": "state", "previous": "connected", "current": "disconnected"}),
        ]
    );
}

on_every_topology!(pusher_js_presence_members_follow_users_across_edges);
async fn pusher_js_presence_members_follow_users_across_edges(shape: Shape) {
    const TEST: &str = "pusher_js_presence_members_follow_users_across_edges";
    const ROOM: &str = "presence-room";
    let topology = Topology::start(shape, TEST).await;
    let test = topology.name();
    let (ada, bob) = (user("ada", "Ada"), user("bob", "Bob"));
    let ada_member = json!({"id": "ada", "info": ada["info"]});
    let bob_member = json!({"id": "bob", "info": bob["info"]});

    let mut watcher = JsClient::connect_as(test, "ada", &topology.edges()[0], &ada).await;
    assert_eq!(
        watcher.subscribe(ROOM).await,
        json!({"channel": ROOM, "count": 1, "me": ada_member,
               "members": {"ada": ada["info"]}})
    );
    let both = json!({"ada": ada["info"], "bob": bob["info"]});
    let mut bob_1 = JsClient::connect_as(test, "bob-1", &topology.edges()[1], &bob).await;
    assert_eq!(
        bob_1.subscribe(ROOM).await,
        json!({"channel": ROOM, "count": 2, "me": bob_member, "members": both})
    );
    assert_eq!(
        watcher.expect("member_added").await,
        json!({"channel": ROOM, "member": bob_member, "count": 2})
    );

    // Bob's second socket, on the other edge: Bob is in its roster, nobody hears of it. Then Bob's
    // first socket leaves and joins again: Bob never left. Everything on one channel is ordered,
    // so the fence, triggered after both were confirmed, is the watcher's next report.
    let mut bob_2 = JsClient::connect_as(test, "bob-2", &topology.edges()[0], &bob).await;
    assert_eq!(
        bob_2.subscribe(ROOM).await,
        json!({"channel": ROOM, "count": 2, "me": bob_member, "members": both})
    );
    bob_1.unsubscribe(ROOM).await;
    assert_eq!(bob_1.subscribe(ROOM).await["count"], 2);
    fence(test, &server_on(topology.other_hub(0).await), ROOM, "1").await;
    assert_eq!(
        watcher.next_report().await,
        json!({"type": "event", "channel": ROOM, "event": "fence", "data": 1})
    );

    // Bob's last socket goes: one member_removed.
    bob_1.close().await;
    bob_2.close().await;
    assert_eq!(
        watcher.expect("member_removed").await,
        json!({"channel": ROOM, "member": bob_member, "count": 1})
    );
    fence(test, &server_on(topology.other_hub(0).await), ROOM, "2").await;
    assert_eq!(
        watcher.next_report().await,
        json!({"type": "event", "channel": ROOM, "event": "fence", "data": 2})
    );
    watcher.close().await;
}

#[tokio::test]
async fn pusher_js_signin_receives_npm_sdk_send_to_user_on_every_socket() {
    const TEST: &str = "pusher_js_signin_receives_npm_sdk_send_to_user_on_every_socket";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let ada = user("ada", "Ada");
    let events = ["notice", "fence"];
    let mut laptop = JsClient::connect_as(TEST, "ada-laptop", &cluster.edges[0], &ada).await;
    let mut phone = JsClient::connect_as(TEST, "ada-phone", &cluster.edges[1], &ada).await;
    // Bob on both edges, so each edge's handling of his termination is seen below.
    let bob_user = user("bob", "Bob");
    let mut bob = JsClient::connect_as(TEST, "bob", &cluster.edges[1], &bob_user).await;
    let mut bob_near = JsClient::connect_as(TEST, "bob-near", &cluster.edges[0], &bob_user).await;
    for client in [&mut laptop, &mut phone] {
        assert_eq!(
            client.signin(&events).await,
            json!({"id": "ada", "user_info": {"name": "Ada"}})
        );
    }
    for client in [&mut bob, &mut bob_near] {
        assert_eq!(client.signin(&events).await["id"], "bob");
    }

    let results = node_sdk(
        TEST,
        &server(&cluster),
        json!([
            {"op": "sendToUser", "user": "ada", "event": "notice", "data": payload()},
            {"op": "sendToUser", "user": "ada", "event": "fence", "data": "ada"},
            {"op": "sendToUser", "user": "bob", "event": "fence", "data": "bob"},
        ]),
    )
    .await;
    let ok = json!({"op": "sendToUser", "status": 200, "body": {}});
    assert_eq!(results, vec![ok.clone(), ok.clone(), ok]);

    for client in [&mut laptop, &mut phone] {
        assert_eq!(
            client.next_report().await,
            json!({"type": "user_event", "event": "notice", "data": payload()})
        );
        assert_eq!(
            client.next_report().await,
            json!({"type": "user_event", "event": "fence", "data": "ada"})
        );
    }
    for client in [&mut bob, &mut bob_near] {
        assert_eq!(
            client.next_report().await,
            json!({"type": "user_event", "event": "fence", "data": "bob"})
        );
    }

    // The npm SDK's terminateUserConnections (under /apps/{id}) closes Bob only. Once both
    // edges have closed Bob's sockets, Ada's sockets, one beside each of Bob's, print nothing
    // (no error, no state change) before her next event.
    let results = node_sdk(
        TEST,
        &server(&cluster),
        json!([
            {"op": "terminateUserConnections", "user": "bob"},
            {"op": "sendToUser", "user": "ada", "event": "fence", "data": "after"},
        ]),
    )
    .await;
    assert_eq!(
        results,
        vec![
            json!({"op": "terminateUserConnections", "status": 200, "body": {}}),
            json!({"op": "sendToUser", "status": 200, "body": {}}),
        ]
    );
    assert_terminated(&mut bob).await;
    assert_terminated(&mut bob_near).await;
    for client in [&mut laptop, &mut phone] {
        assert_eq!(
            client.next_line().await,
            json!({"type": "user_event", "event": "fence", "data": "after"})
        );
    }
    for client in [laptop, phone, bob, bob_near] {
        client.close().await;
    }
}

#[tokio::test]
async fn pusher_js_cache_channels_report_a_miss_then_replay_the_last_event() {
    const TEST: &str = "pusher_js_cache_channels_report_a_miss_then_replay_the_last_event";
    const PRICES: &str = "cache-prices";
    const PRIVATE: &str = "private-cache-orders";
    // The npm SDK encrypts, the late subscriber decrypts the replayed ciphertext.
    const ENCRYPTED: &str = "private-encrypted-cache-vault";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let mut first = JsClient::connect(TEST, "first", &cluster.edges[0]).await;
    for channel in [PRICES, PRIVATE, ENCRYPTED] {
        assert_eq!(
            first.subscribe(channel).await,
            json!({"channel": channel, "data": {}})
        );
        assert_eq!(
            first.expect("cache_miss").await,
            json!({"channel": channel, "data": {}})
        );
    }

    let results = node_sdk(
        TEST,
        &server(&cluster),
        json!([
            {"op": "trigger", "channels": PRICES, "event": "price", "data": {"v": 1}},
            {"op": "trigger", "channels": PRICES, "event": "price", "data": {"v": 2}},
            {"op": "trigger", "channels": PRIVATE, "event": "order", "data": payload()},
            {"op": "trigger", "channels": ENCRYPTED, "event": "sealed", "data": payload()},
        ]),
    )
    .await;
    let ok = json!({"op": "trigger", "status": 200, "body": {}});
    assert_eq!(results, vec![ok.clone(), ok.clone(), ok.clone(), ok]);
    // Each channel's events in trigger order; the three channels in any order.
    assert_eq!(
        first.events_per_channel(4).await,
        BTreeMap::from([
            (
                PRICES.to_string(),
                vec![
                    json!({"event": "price", "data": {"v": 1}}),
                    json!({"event": "price", "data": {"v": 2}}),
                ]
            ),
            (
                PRIVATE.to_string(),
                vec![json!({"event": "order", "data": payload()})]
            ),
            (
                ENCRYPTED.to_string(),
                vec![json!({"event": "sealed", "data": payload()})]
            ),
        ])
    );

    // Later subscribers, on the same edge and on the other: the last event, no miss.
    for (index, edge) in cluster.edges.iter().enumerate() {
        let mut late = JsClient::connect(TEST, &format!("late-{index}"), edge).await;
        late.subscribe(PRICES).await;
        assert_eq!(
            late.next_report().await,
            json!({"type": "event", "channel": PRICES, "event": "price", "data": {"v": 2}})
        );
        late.subscribe(PRIVATE).await;
        assert_eq!(
            late.next_report().await,
            json!({"type": "event", "channel": PRIVATE, "event": "order", "data": payload()})
        );
        late.subscribe(ENCRYPTED).await;
        assert_eq!(
            late.next_report().await,
            json!({"type": "event", "channel": ENCRYPTED, "event": "sealed", "data": payload()})
        );
        late.close().await;
    }
    first.close().await;
}

#[tokio::test]
async fn pusher_js_decrypts_what_the_npm_sdk_encrypts() {
    const TEST: &str = "pusher_js_decrypts_what_the_npm_sdk_encrypts";
    const VAULT: &str = "private-encrypted-vault";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let mut reader = JsClient::connect(TEST, "reader", &cluster.edges[1]).await;
    assert_eq!(
        reader.subscribe(VAULT).await,
        json!({"channel": VAULT, "data": {}})
    );
    // A wire-level subscriber on the other edge sees what Herald relays: ciphertext only.
    let mut wire = PusherClient::connect(&cluster.edges[0].url()).await;
    assert_eq!(
        wire.subscribe_private(VAULT).await["event"],
        "pusher_internal:subscription_succeeded"
    );

    let results = node_sdk(
        TEST,
        &server(&cluster),
        json!([{"op": "trigger", "channels": VAULT, "event": "secret", "data": payload()}]),
    )
    .await;
    assert_eq!(
        results,
        vec![json!({"op": "trigger", "status": 200, "body": {}})]
    );
    assert_eq!(
        reader.next_event().await,
        json!({"channel": VAULT, "event": "secret", "data": payload()})
    );
    let relayed = wire.next_event().await;
    assert_eq!(
        (&relayed["event"], &relayed["channel"]),
        (&json!("secret"), &json!(VAULT))
    );
    let sealed: Value = serde_json::from_str(
        relayed["data"]
            .as_str()
            .unwrap_or_else(|| panic!("encrypted data is a JSON string: {relayed}")),
    )
    .expect("the relayed data is the SDK's JSON");
    let mut fields: Vec<&String> = sealed
        .as_object()
        .expect("the sealed data is an object")
        .keys()
        .collect();
    fields.sort();
    assert_eq!(fields, ["ciphertext", "nonce"], "{sealed}");
    reader.close().await;
}

on_every_topology!(python_sdk_reads_presence_sends_to_one_user_and_terminates_another);
async fn python_sdk_reads_presence_sends_to_one_user_and_terminates_another(shape: Shape) {
    const TEST: &str = "python_sdk_reads_presence_sends_to_one_user_and_terminates_another";
    const LOBBY: &str = "presence-lobby";
    let topology = Topology::start(shape, TEST).await;
    let test = topology.name();
    let mut banned =
        JsClient::connect_as(test, "banned", &topology.edges()[0], &user("1", "One")).await;
    let mut bystander =
        JsClient::connect_as(test, "bystander", &topology.edges()[1], &user("2", "Two")).await;
    for client in [&mut banned, &mut bystander] {
        client.signin(&["notice"]).await;
        client.subscribe(LOBBY).await;
    }
    assert_eq!(
        banned.expect("member_added").await,
        json!({"channel": LOBBY, "member": {"id": "2", "info": {"name": "Two"}}, "count": 2})
    );

    // Both joins were confirmed: the hub that is not the bystander's answers, then the one that
    // is not the banned user's.
    for edge in [1, 0] {
        let results = python_sdk(
            test,
            &server_on(topology.other_hub(edge).await),
            json!([
                {"op": "channels_info", "prefix_filter": "presence-", "attributes": ["user_count"]},
                {"op": "channel_info", "channel": LOBBY, "attributes": ["user_count"]},
                {"op": "users_info", "channel": LOBBY},
            ]),
        )
        .await;
        let mut users = results[2].clone();
        if let Some(list) = users["result"]["users"].as_array_mut() {
            // Pusher documents no order.
            list.sort_by_key(|user| user["id"].to_string());
        }
        assert_eq!(
            [&results[0], &results[1], &users],
            [
                &json!({"op": "channels_info", "result": {"channels": {LOBBY: {"user_count": 2}}}}),
                &json!({"op": "channel_info", "result": {"occupied": true, "user_count": 2}}),
                &json!({"op": "users_info", "result": {"users": [{"id": "1"}, {"id": "2"}]}}),
            ]
        );
    }
    let results = python_sdk(
        test,
        &server_on(topology.other_hub(0).await),
        json!([{"op": "terminate_user_connections", "user_id": "1"}]),
    )
    .await;
    assert_eq!(
        results,
        vec![json!({"op": "terminate_user_connections", "result": {}})]
    );

    assert_terminated(&mut banned).await;

    // The other user stays connected (no state change, no error) and sees user 1 leave.
    assert_eq!(
        bystander.next_line().await,
        json!({"type": "member_removed", "channel": LOBBY,
               "member": {"id": "1", "info": {"name": "One"}}, "count": 1})
    );
    let results = python_sdk(
        test,
        &server_on(topology.other_hub(0).await),
        json!([
            {"op": "send_to_user", "user_id": "2", "event": "notice", "data": {"from": "python"}},
            {"op": "trigger", "channels": LOBBY, "event": "fence", "data": "end"},
        ]),
    )
    .await;
    assert_eq!(
        results,
        vec![
            json!({"op": "send_to_user", "result": {}}),
            json!({"op": "trigger", "result": {}}),
        ]
    );
    // Two channels (#server-to-user-2 and the lobby): no order between them.
    let mut last = vec![bystander.next_line().await, bystander.next_line().await];
    last.sort_by_key(|line| line["type"].to_string());
    assert_eq!(
        last,
        [
            json!({"type": "event", "channel": LOBBY, "event": "fence", "data": "end"}),
            json!({"type": "user_event", "event": "notice", "data": {"from": "python"}}),
        ]
    );
    bystander.close().await;
}

on_every_topology!(pusher_js_hears_subscription_counts_when_the_app_asks);
async fn pusher_js_hears_subscription_counts_when_the_app_asks(shape: Shape) {
    const TEST: &str = "pusher_js_hears_subscription_counts_when_the_app_asks";
    const COUNTED: &str = "counted";
    let hub_env = [
        ("HERALD_APP__SUBSCRIPTION_COUNT_EVENTS", "true"),
        ("HERALD_HUB__SUBSCRIPTION_COUNT_INTERVAL_MS", "100"),
    ];
    let topology = Topology::start_with(shape, TEST, &hub_env, &[]).await;
    let test = topology.name();
    let mut first = JsClient::connect(test, "first", &topology.edges()[0]).await;
    let mut second = JsClient::connect(test, "second", &topology.edges()[1]).await;
    first.subscribe(COUNTED).await;
    second.subscribe(COUNTED).await;

    let count = |n: u64| json!({"channel": COUNTED, "data": {"subscription_count": n}, "count": n});
    // Counts are coalesced per interval: the first subscriber may hear 1 before 2; both settle
    // at 2, and pusher-js keeps it in `channel.subscriptionCount`.
    for client in [&mut first, &mut second] {
        loop {
            let report = client.expect("subscription_count").await;
            if report == count(2) {
                break;
            }
            assert_eq!(report, count(1));
        }
    }
    // In a region each hub announces the changes it wrote (at most once an interval each), so
    // the 2 may come again before the 1: counts are state, not a sequence of changes.
    second.unsubscribe(COUNTED).await;
    loop {
        let report = first.expect("subscription_count").await;
        if report == count(1) {
            break;
        }
        assert_eq!(report, count(2));
    }
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn pusher_js_watchlist_follows_a_friend_signing_in_on_another_edge() {
    const TEST: &str = "pusher_js_watchlist_follows_a_friend_signing_in_on_another_edge";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let watching =
        json!({"id": "watcher", "info": {"name": "W"}, "watchlist": ["friend", "other"]});
    let mut watcher = JsClient::connect_as(TEST, "watcher", &cluster.edges[0], &watching).await;
    watcher.command(json!({"op": "signin", "events": []})).await;
    // The initial statuses may come before or after pusher-js's #server-to-user subscription.
    let mut first = vec![watcher.next_report().await, watcher.next_report().await];
    first.sort_by_key(|report| report["type"].to_string());
    assert_eq!(
        first,
        [
            json!({"type": "signed_in", "user_data":
                   {"id": "watcher", "user_info": {"name": "W"}, "watchlist": ["friend", "other"]}}),
            json!({"type": "watchlist", "event": {"name": "offline", "user_ids": ["friend", "other"]}}),
        ]
    );

    let mut friend =
        JsClient::connect_as(TEST, "friend", &cluster.edges[1], &user("friend", "F")).await;
    friend.signin(&[]).await;
    assert_eq!(
        watcher.next_report().await,
        json!({"type": "watchlist", "event": {"name": "online", "user_ids": ["friend"]}})
    );
    friend.close().await;
    assert_eq!(
        watcher.next_report().await,
        json!({"type": "watchlist", "event": {"name": "offline", "user_ids": ["friend"]}})
    );
    watcher.close().await;
}

on_every_topology!(pusher_js_joins_presence_as_its_signed_in_user_without_channel_data);
async fn pusher_js_joins_presence_as_its_signed_in_user_without_channel_data(shape: Shape) {
    // pusher-js ≥ 7.4 (pusher/pusher-js#625): when the app's channel endpoint answers a presence
    // channel with `auth` only (`authorizeChannel(socketId, channel)`, signing
    // `<socket_id>:<channel>`), pusher-js waits for sign-in and subscribes without
    // `channel_data`; the presence identity is the signed-in user, whose `user_info` "will be
    // shared with other members of presence channels" (Pusher's authenticating-users docs).
    const TEST: &str = "pusher_js_joins_presence_as_its_signed_in_user_without_channel_data";
    const ROOM: &str = "presence-signed";
    let topology = Topology::start(shape, TEST).await;
    let test = topology.name();
    let ada = user("ada", "Ada");
    let mut watcher = JsClient::connect_as(test, "ada", &topology.edges()[0], &ada).await;
    watcher.subscribe(ROOM).await;

    let carol = json!({"id": "carol", "info": {"name": "Carol"}, "presence_by_signin": true});
    let carol_member = json!({"id": "carol", "info": {"name": "Carol"}});
    let mut signed = JsClient::connect_as(test, "carol", &topology.edges()[1], &carol).await;
    signed.signin(&[]).await;
    assert_eq!(
        signed.subscribe(ROOM).await,
        json!({"channel": ROOM, "count": 2, "me": carol_member,
               "members": {"ada": ada["info"], "carol": {"name": "Carol"}}})
    );
    assert_eq!(
        watcher.expect("member_added").await,
        json!({"channel": ROOM, "member": carol_member, "count": 2})
    );
    signed.close().await;
    assert_eq!(
        watcher.expect("member_removed").await,
        json!({"channel": ROOM, "member": carol_member, "count": 1})
    );
    watcher.close().await;
}
