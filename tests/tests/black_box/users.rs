//! User authentication: sign-in, server-to-user events, terminating a user's connections on
//! every edge, authorized connections, and watchlist events. What spans edges runs against one
//! hub and against a region of two over one Redis and over a Redis Cluster (`on_every_topology!`), asking a hub other than the users'.

use std::time::{Duration, Instant};

use herald_tests::client::{PusherClient, expect_close};
use herald_tests::on_every_topology;
use herald_tests::topology::{Cluster, Shape, Topology};
use serde_json::json;

/// How soon watchers hear that a user's last socket closed (the edge sees the TCP close at once).
const OFFLINE_BOUND: Duration = Duration::from_secs(2);

on_every_topology!(signin_then_server_to_user_events_reach_every_socket_of_the_user);
async fn signin_then_server_to_user_events_reach_every_socket_of_the_user(shape: Shape) {
    let topology = Topology::start(
        shape,
        "signin_then_server_to_user_events_reach_every_socket_of_the_user",
    )
    .await;
    let mut bad = topology.connect(0).await;
    let forged = json!({"event": "pusher:signin", "data": {"auth": "test-key:0000", "user_data": "{\"id\":\"1\"}"}});
    bad.send(forged).await;
    let refused = bad.next_event().await;
    assert_eq!(
        (refused["event"].clone(), refused["data"]["code"].clone()),
        (json!("pusher:error"), json!(4009)),
        "{refused}"
    );
    bad.sync().await;

    let mut laptop = topology.connect(0).await;
    let mut phone = topology.connect(1).await;
    let mut stranger = topology.connect(1).await;
    laptop
        .sign_in(&json!({"id": "42", "user_info": {"name": "Ada"}}))
        .await;
    phone.sign_in(&json!({"id": "42"})).await;
    stranger.sign_in(&json!({"id": "7"})).await;

    // pusher-js subscribes to its own channel after signing in; someone else's is refused.
    laptop.subscribe("#server-to-user-42").await;
    stranger.send(json!({"event": "pusher:subscribe", "data": {"channel": "#server-to-user-42", "auth": ""}})).await;
    let refused = stranger.next_event().await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    assert_eq!(refused["data"]["status"], 403);

    let sent = topology
        .api_for_other_hub(0)
        .await
        .trigger(json!({"name": "notice", "channels": ["#server-to-user-42"], "data": "{\"n\":1}"}))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let expected = json!({"event": "notice", "channel": "#server-to-user-42", "data": "{\"n\":1}"});
    assert_eq!(laptop.next_event().await, expected);
    assert_eq!(
        phone.next_event().await,
        expected,
        "delivered even without an explicit subscribe"
    );
}

on_every_topology!(terminate_closes_only_that_users_sockets_on_every_edge);
async fn terminate_closes_only_that_users_sockets_on_every_edge(shape: Shape) {
    let topology = Topology::start(
        shape,
        "terminate_closes_only_that_users_sockets_on_every_edge",
    )
    .await;
    let mut targets = Vec::new();
    for edge in 0..topology.edges().len() {
        let mut client = topology.connect(edge).await;
        client.sign_in(&json!({"id": "banned"})).await;
        targets.push(client);
    }
    let mut bystander = topology.connect(0).await;
    bystander.sign_in(&json!({"id": "fine"})).await;

    let reply = topology
        .api_for_other_hub(0)
        .await
        .signed("POST", "users/banned/terminate_connections", &[], "{}")
        .await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
    for target in &mut targets {
        let error = target.next_event().await;
        assert_eq!(error["data"]["code"], 4009, "{error}");
        assert_eq!(expect_close(&mut target.ws).await, Some(4009));
    }
    // Its edge closed the target beside it; a ping round trip on the bystander's own socket
    // proves it is still open.
    bystander.sync().await;
}

#[tokio::test]
async fn authorized_connections_close_sockets_that_never_sign_in() {
    let env = [("HERALD_APP__USER_AUTHENTICATION_TIMEOUT_SECS", "1")];
    let cluster = Cluster::start_with(
        "authorized_connections_close_sockets_that_never_sign_in",
        1,
        &env,
        &[],
    )
    .await;
    let mut signed = PusherClient::connect(&cluster.edges[0].url()).await;
    signed.sign_in(&json!({"id": "1"})).await;
    let mut private = PusherClient::connect(&cluster.edges[0].url()).await;
    private.subscribe_private("private-ok").await;
    let mut anonymous = PusherClient::connect(&cluster.edges[0].url()).await;
    let error = anonymous.next_event().await;
    assert_eq!(error["data"]["code"], 4009, "{error}");
    assert_eq!(expect_close(&mut anonymous.ws).await, Some(4009));
    signed.sync().await;
    private.sync().await;
}

#[tokio::test]
async fn a_watchlist_over_100_ids_is_cut_with_pushers_4302() {
    let cluster = Cluster::start("a_watchlist_over_100_ids_is_cut_with_pushers_4302", 1, &[]).await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    let ids: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    client
        .sign_in(&json!({"id": "many", "watchlist": ids}))
        .await;
    let warning = client.next_event().await;
    assert_eq!(warning["data"]["code"], 4302, "{warning}");
    let initial = client.next_event().await;
    assert_eq!(
        initial["event"], "pusher_internal:watchlist_events",
        "{initial}"
    );
    let offline = initial["data"]["events"][0]["user_ids"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(offline, 100, "only the first 100 ids are watched");
}

on_every_topology!(watchlists_follow_users_online_and_offline);
async fn watchlists_follow_users_online_and_offline(shape: Shape) {
    let topology = Topology::start(shape, "watchlists_follow_users_online_and_offline").await;
    let mut watcher = topology.connect(0).await;
    watcher
        .sign_in(&json!({"id": "w", "watchlist": ["friend", "other"]}))
        .await;
    assert_eq!(
        watcher.next_watchlist_events().await,
        json!([{"name": "offline", "user_ids": ["friend", "other"]}])
    );
    let mut friend = topology.connect(1).await;
    friend.sign_in(&json!({"id": "friend"})).await;
    assert_eq!(
        watcher.next_watchlist_events().await,
        json!([{"name": "online", "user_ids": ["friend"]}])
    );
    let left = Instant::now();
    drop(friend);
    // Nothing waits between a user's last socket closing and its watchers hearing of it.
    let offline = watcher.next_event_within(OFFLINE_BOUND).await;
    eprintln!(
        "watchlist: offline {:?} after the disconnect",
        left.elapsed()
    );
    assert_eq!(
        offline["event"], "pusher_internal:watchlist_events",
        "{offline}"
    );
    assert_eq!(
        offline["data"]["events"],
        json!([{"name": "offline", "user_ids": ["friend"]}])
    );
}
