//! Presence channels: member lists owned by the hub, one member per user however many sockets
//! or edges it has, limits, and cleanup when an edge process dies. Every test runs against one
//! hub and against a region of two over one Redis and over a Redis Cluster (`on_every_topology!`), querying a hub other than the one
//! the subscribers' edges are linked to.

use std::time::{Duration, Instant};

use herald_tests::on_every_topology;
use herald_tests::topology::{Shape, Topology};
use serde_json::{Value, json};

/// Slack for a loaded machine on top of a bound the hub promises.
const SLACK: Duration = Duration::from_secs(1);

fn member(id: &str) -> Value {
    json!({"user_id": id, "user_info": {"name": format!("user {id}")}})
}

/// The `presence` object of a `subscription_succeeded`, checking the frame around it.
fn roster(reply: &Value, channel: &str) -> Value {
    assert_eq!(
        reply["event"], "pusher_internal:subscription_succeeded",
        "{reply}"
    );
    assert_eq!(reply["channel"], channel, "{reply}");
    let data: Value =
        serde_json::from_str(reply["data"].as_str().expect("data is a string")).unwrap();
    data["presence"].clone()
}

fn member_event(frame: &Value, event: &str) -> Value {
    assert_eq!(frame["event"], event, "{frame}");
    serde_json::from_str(frame["data"].as_str().expect("data is a string")).unwrap()
}

on_every_topology!(one_member_per_user_across_sockets_and_edges);
async fn one_member_per_user_across_sockets_and_edges(shape: Shape) {
    let topology = Topology::start(shape, "one_member_per_user_across_sockets_and_edges").await;
    let channel = "presence-room";
    let mut alice = topology.connect(0).await;
    let presence = roster(
        &alice.subscribe_presence(channel, &member("alice")).await,
        channel,
    );
    assert_eq!(
        presence,
        json!({"ids": ["alice"], "hash": {"alice": {"name": "user alice"}}, "count": 1})
    );

    let mut bob_1 = topology.connect(1).await;
    let presence = roster(
        &bob_1.subscribe_presence(channel, &member("bob")).await,
        channel,
    );
    assert_eq!(presence["count"], 2);
    assert_eq!(presence["ids"], json!(["alice", "bob"]));
    assert_eq!(
        member_event(&alice.next_event().await, "pusher_internal:member_added"),
        json!({"user_id": "bob", "user_info": {"name": "user bob"}})
    );

    // Bob's second socket, on the other edge: no member_added, and Bob is in its roster.
    let mut bob_2 = topology.connect(0).await;
    let presence = roster(
        &bob_2.subscribe_presence(channel, &member("bob")).await,
        channel,
    );
    assert_eq!(presence["count"], 2);

    // Every hub answers at once: the one Alice's edge is not linked to, and Bob's.
    for edge in [0, 1] {
        let api = topology.api_for_other_hub(edge).await;
        let users = api.get(&format!("channels/{channel}/users"), &[]).await;
        assert_eq!(
            users.body,
            json!({"users": [{"id": "alice"}, {"id": "bob"}]})
        );
        let info = api
            .get(
                &format!("channels/{channel}"),
                &[("info", "user_count,subscription_count")],
            )
            .await;
        assert_eq!(
            info.body,
            json!({"occupied": true, "user_count": 2, "subscription_count": 3})
        );
        let listed = api
            .get(
                "channels",
                &[("filter_by_prefix", "presence-"), ("info", "user_count")],
            )
            .await;
        assert_eq!(
            listed.body,
            json!({"channels": {channel: {"user_count": 2}}})
        );
    }

    // Bob's first socket leaves: Bob stays. Fence to prove nothing was sent.
    bob_1.unsubscribe(channel).await;
    bob_1.sync().await;
    let fence = json!({"name": "fence", "channel": channel, "data": "1"});
    assert_eq!(topology.api().trigger(fence).await.status, 200);
    assert_eq!(alice.next_event().await["event"], "fence");

    // Bob's last socket disconnects: member_removed.
    drop(bob_2);
    assert_eq!(
        member_event(&alice.next_event().await, "pusher_internal:member_removed"),
        json!({"user_id": "bob"})
    );
}

on_every_topology!(bad_presence_subscriptions_fail_alone);
async fn bad_presence_subscriptions_fail_alone(shape: Shape) {
    let env = [
        ("HERALD_APP__MAX_PRESENCE_MEMBERS", "2"),
        ("HERALD_APP__MAX_USER_INFO_BYTES", "64"),
    ];
    let topology =
        Topology::start_with(shape, "bad_presence_subscriptions_fail_alone", &env, &[]).await;
    let channel = "presence-small";
    let mut client = topology.connect(0).await;

    let auth = herald_tests::auth::channel(&client.socket_id, channel, None);
    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
        .await;
    let reply = client.next_event().await;
    assert_eq!(
        reply["event"], "pusher:subscription_error",
        "no channel_data: {reply}"
    );
    assert_eq!(reply["data"]["status"], 400);

    let oversized = json!({"user_id": "x", "user_info": {"bio": "y".repeat(100)}});
    let reply = client.subscribe_presence(channel, &oversized).await;
    assert_eq!(
        reply["event"], "pusher:subscription_error",
        "oversized user_info: {reply}"
    );
    assert!(
        reply["data"]["error"]
            .as_str()
            .unwrap()
            .contains("limit is 64"),
        "{reply}"
    );

    let no_id = json!({"user_info": {}});
    let reply = client.subscribe_presence(channel, &no_id).await;
    assert_eq!(reply["data"]["status"], 400, "no user_id: {reply}");

    // The limit holds for the channel, whichever edges (and hubs) its users are on: two users
    // fit, a third is refused, the first user's second socket is not.
    roster(
        &client.subscribe_presence(channel, &member("a")).await,
        channel,
    );
    let mut b = topology.connect(1).await;
    roster(&b.subscribe_presence(channel, &member("b")).await, channel);
    let mut c = topology.connect(2).await;
    let refused = c.subscribe_presence(channel, &member("c")).await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    assert_eq!(refused["data"]["type"], "LimitReached", "{refused}");
    let mut a_again = topology.connect(1).await;
    roster(
        &a_again.subscribe_presence(channel, &member("a")).await,
        channel,
    );
    c.sync().await;
}

on_every_topology!(a_killed_edge_takes_only_its_members_away);
async fn a_killed_edge_takes_only_its_members_away(shape: Shape) {
    const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
    let hub_env = [("HERALD_HUB__LINK_IDLE_TIMEOUT_SECS", "2")];
    let edge_env = [("HERALD_EDGE__LINK_IDLE_TIMEOUT_SECS", "2")];
    let mut topology = Topology::start_with(
        shape,
        "a_killed_edge_takes_only_its_members_away",
        &hub_env,
        &edge_env,
    )
    .await;
    let channel = "presence-crash";
    let mut watcher = topology.connect(0).await;
    roster(
        &watcher
            .subscribe_presence(channel, &member("watcher"))
            .await,
        channel,
    );
    let mut doomed = topology.connect(1).await;
    roster(
        &doomed.subscribe_presence(channel, &member("doomed")).await,
        channel,
    );
    let mut split_on_doomed = topology.connect(1).await;
    roster(
        &split_on_doomed
            .subscribe_presence(channel, &member("split"))
            .await,
        channel,
    );
    let mut split_on_live = topology.connect(0).await;
    roster(
        &split_on_live
            .subscribe_presence(channel, &member("split"))
            .await,
        channel,
    );
    for expected in ["doomed", "split"] {
        let added = member_event(&watcher.next_event().await, "pusher_internal:member_added");
        assert_eq!(added["user_id"], expected);
    }

    let killed = Instant::now();
    topology.edges_mut()[1].process.kill().await;
    // The hub declares the edge gone after its 2 s idle timeout, then removes its members.
    let removed = watcher.next_event_within(IDLE_TIMEOUT + SLACK).await;
    eprintln!("edge SIGKILL: member_removed after {:?}", killed.elapsed());
    assert_eq!(
        member_event(&removed, "pusher_internal:member_removed"),
        json!({"user_id": "doomed"})
    );
    // "split" still has a socket on the live edge: no removal. The fence comes next.
    let api = topology.api_for_other_hub(0).await;
    let fence = json!({"name": "fence", "channel": channel, "data": "1"});
    assert_eq!(api.trigger(fence).await.status, 200);
    assert_eq!(watcher.next_event().await["event"], "fence");
    let users = api.get(&format!("channels/{channel}/users"), &[]).await;
    assert_eq!(
        users.body,
        json!({"users": [{"id": "split"}, {"id": "watcher"}]})
    );
}

on_every_topology!(every_hub_answers_queries_the_same);
async fn every_hub_answers_queries_the_same(shape: Shape) {
    let topology = Topology::start(shape, "every_hub_answers_queries_the_same").await;
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    assert_eq!(
        roster(
            &a.subscribe_presence("presence-room", &json!({"user_id": "a"}))
                .await,
            "presence-room"
        )["count"],
        1
    );
    let joined = roster(
        &b.subscribe_presence(
            "presence-room",
            &json!({"user_id": "b", "user_info": {"n": 2}}),
        )
        .await,
        "presence-room",
    );
    assert_eq!(
        joined,
        json!({"ids": ["a", "b"], "hash": {"a": null, "b": {"n": 2}}, "count": 2})
    );
    let added = a.next_event().await;
    assert_eq!(added["event"], "pusher_internal:member_added", "{added}");
    a.subscribe("lobby").await;
    b.subscribe("lobby").await;

    // No wait and no retry: every hub counts what was confirmed before the question.
    for hub in topology.hubs() {
        let api = hub.api();
        assert_eq!(
            api.get("channels/lobby", &[("info", "subscription_count")])
                .await
                .body,
            json!({"occupied": true, "subscription_count": 2})
        );
        assert_eq!(
            api.get(
                "channels/presence-room",
                &[("info", "user_count,subscription_count")]
            )
            .await
            .body,
            json!({"occupied": true, "user_count": 2, "subscription_count": 2})
        );
        assert_eq!(
            api.get("channels/presence-room/users", &[]).await.body,
            json!({"users": [{"id": "a"}, {"id": "b"}]})
        );
        assert_eq!(
            api.get("channels", &[]).await.body,
            json!({"channels": {"lobby": {}, "presence-room": {}}})
        );
    }
}
