//! Client events: only on private and presence channels the socket is subscribed to, never
//! echoed to the sender, `user_id` added on presence channels, rate-limited per socket. Across
//! edges they run on one hub and in a region, over one Redis and over a Redis Cluster
//! (`on_every_topology!`).

use herald_tests::client::PusherClient;
use herald_tests::on_every_topology;
use herald_tests::topology::{Cluster, Shape, Topology};
use serde_json::{Value, json};

async fn rejected(client: &mut PusherClient, code: u16) -> Value {
    let frame = client.next_event().await;
    assert_eq!(frame["event"], "pusher:error", "{frame}");
    assert_eq!(frame["data"]["code"], code, "{frame}");
    frame
}

on_every_topology!(client_events_reach_the_others_across_edges_but_not_the_sender);
async fn client_events_reach_the_others_across_edges_but_not_the_sender(shape: Shape) {
    let topology = Topology::start(
        shape,
        "client_events_reach_the_others_across_edges_but_not_the_sender",
    )
    .await;
    let channel = "private-chat";
    let mut sender = topology.connect(0).await;
    let mut same_edge = topology.connect(0).await;
    // In a region, edge 1 is linked to the other hub.
    let mut other_edge = topology.connect(1).await;
    for client in [&mut sender, &mut same_edge, &mut other_edge] {
        assert_eq!(
            client.subscribe_private(channel).await["event"],
            "pusher_internal:subscription_succeeded"
        );
    }
    sender
        .send(json!({"event": "client-typing", "channel": channel, "data": {"who": "me"}}))
        .await;
    let expected = json!({"event": "client-typing", "channel": channel, "data": {"who": "me"}});
    assert_eq!(same_edge.next_event().await, expected);
    assert_eq!(other_edge.next_event().await, expected);
    // Not echoed: the sender's next event is the fence.
    let fence = json!({"name": "fence", "channel": channel, "data": "f"});
    assert_eq!(topology.api().trigger(fence).await.status, 200);
    assert_eq!(sender.next_event().await["event"], "fence");
}

on_every_topology!(presence_client_events_carry_the_senders_user_id);
async fn presence_client_events_carry_the_senders_user_id(shape: Shape) {
    let topology = Topology::start(shape, "presence_client_events_carry_the_senders_user_id").await;
    let channel = "presence-game";
    // On two edges (in a region, linked to two hubs).
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    a.subscribe_presence(channel, &json!({"user_id": 1})).await;
    b.subscribe_presence(channel, &json!({"user_id": 2})).await;
    assert_eq!(
        a.next_event().await["event"],
        "pusher_internal:member_added"
    );
    b.send(json!({"event": "client-move", "channel": channel, "data": {"x": 3}}))
        .await;
    assert_eq!(
        a.next_event().await,
        json!({"event": "client-move", "channel": channel, "data": {"x": 3}, "user_id": "2"})
    );
}

#[tokio::test]
async fn client_events_are_refused_where_pusher_refuses_them() {
    let cluster = Cluster::start(
        "client_events_are_refused_where_pusher_refuses_them",
        1,
        &[],
    )
    .await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe("public").await;
    client
        .send(json!({"event": "client-x", "channel": "public", "data": {}}))
        .await;
    rejected(&mut client, 4306).await;
    client
        .send(json!({"event": "client-x", "channel": "private-not-mine", "data": {}}))
        .await;
    rejected(&mut client, 4306).await;
    client.sync().await;
}

#[tokio::test]
async fn the_rate_limit_rejects_a_burst_without_disconnecting() {
    let env = [("HERALD_APP__CLIENT_EVENTS_PER_SECOND", "5")];
    let cluster = Cluster::start_with(
        "the_rate_limit_rejects_a_burst_without_disconnecting",
        1,
        &env,
        &[],
    )
    .await;
    let channel = "private-burst";
    let mut sender = PusherClient::connect(&cluster.edges[0].url()).await;
    let mut receiver = PusherClient::connect(&cluster.edges[0].url()).await;
    sender.subscribe_private(channel).await;
    receiver.subscribe_private(channel).await;
    for i in 0..8 {
        sender
            .send(json!({"event": "client-n", "channel": channel, "data": {"i": i}}))
            .await;
    }
    for _ in 0..3 {
        let error = rejected(&mut sender, 4301).await;
        assert!(
            error["data"]["message"]
                .as_str()
                .unwrap()
                .contains("rate limit"),
            "{error}"
        );
    }
    sender.sync().await;
    for i in 0..5 {
        assert_eq!(
            receiver.next_event().await["data"]["i"],
            i,
            "the first five pass, in order"
        );
    }
    let fence = json!({"name": "fence", "channel": channel, "data": "f"});
    assert_eq!(cluster.api().trigger(fence).await.status, 200);
    assert_eq!(
        receiver.next_event().await["event"],
        "fence",
        "the rest were dropped"
    );
}

#[tokio::test]
async fn an_app_can_disable_client_events() {
    let env = [("HERALD_APP__CLIENT_EVENTS", "false")];
    let cluster = Cluster::start_with("an_app_can_disable_client_events", 1, &env, &[]).await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe_private("private-quiet").await;
    client
        .send(json!({"event": "client-x", "channel": "private-quiet", "data": {}}))
        .await;
    let error = rejected(&mut client, 4306).await;
    assert!(
        error["data"]["message"]
            .as_str()
            .unwrap()
            .contains("not enabled"),
        "{error}"
    );
}
