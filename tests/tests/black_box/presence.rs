//! Presence channels: member lists owned by the hub, one member per user however many sockets
//! or edges it has, limits, and cleanup when an edge process dies.

use std::time::{Duration, Instant};

use herald_tests::client::PusherClient;
use herald_tests::topology::Cluster;
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

#[tokio::test]
async fn one_member_per_user_across_sockets_and_edges() {
    let cluster = Cluster::start("one_member_per_user_across_sockets_and_edges", 2, &[]).await;
    let channel = "presence-room";
    let mut alice = PusherClient::connect(&cluster.edges[0].url()).await;
    let presence = roster(
        &alice.subscribe_presence(channel, &member("alice")).await,
        channel,
    );
    assert_eq!(
        presence,
        json!({"ids": ["alice"], "hash": {"alice": {"name": "user alice"}}, "count": 1})
    );

    let mut bob_1 = PusherClient::connect(&cluster.edges[1].url()).await;
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
    let mut bob_2 = PusherClient::connect(&cluster.edges[0].url()).await;
    let presence = roster(
        &bob_2.subscribe_presence(channel, &member("bob")).await,
        channel,
    );
    assert_eq!(presence["count"], 2);

    let api = cluster.api();
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

    // Bob's first socket leaves: Bob stays. Fence to prove nothing was sent.
    bob_1.unsubscribe(channel).await;
    bob_1.sync().await;
    let fence = json!({"name": "fence", "channel": channel, "data": "1"});
    assert_eq!(api.trigger(fence).await.status, 200);
    assert_eq!(alice.next_event().await["event"], "fence");

    // Bob's last socket disconnects: member_removed.
    drop(bob_2);
    assert_eq!(
        member_event(&alice.next_event().await, "pusher_internal:member_removed"),
        json!({"user_id": "bob"})
    );
}

#[tokio::test]
async fn bad_presence_subscriptions_fail_alone() {
    let env = [
        ("HERALD_APP__MAX_PRESENCE_MEMBERS", "2"),
        ("HERALD_APP__MAX_USER_INFO_BYTES", "64"),
    ];
    let cluster = Cluster::start_with("bad_presence_subscriptions_fail_alone", 1, &env, &[]).await;
    let channel = "presence-small";
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;

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

    // The limit: two users fit, a third is refused, the first user's second socket is not.
    roster(
        &client.subscribe_presence(channel, &member("a")).await,
        channel,
    );
    let mut b = PusherClient::connect(&cluster.edges[0].url()).await;
    roster(&b.subscribe_presence(channel, &member("b")).await, channel);
    let mut c = PusherClient::connect(&cluster.edges[0].url()).await;
    let refused = c.subscribe_presence(channel, &member("c")).await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    assert_eq!(refused["data"]["type"], "LimitReached", "{refused}");
    let mut a_again = PusherClient::connect(&cluster.edges[0].url()).await;
    roster(
        &a_again.subscribe_presence(channel, &member("a")).await,
        channel,
    );
    c.sync().await;
}

#[tokio::test]
async fn a_killed_edge_takes_only_its_members_away() {
    const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
    let hub_env = [("HERALD_HUB__LINK_IDLE_TIMEOUT_SECS", "2")];
    let edge_env = [("HERALD_EDGE__LINK_IDLE_TIMEOUT_SECS", "2")];
    let mut cluster = Cluster::start_with(
        "a_killed_edge_takes_only_its_members_away",
        2,
        &hub_env,
        &edge_env,
    )
    .await;
    let channel = "presence-crash";
    let mut watcher = PusherClient::connect(&cluster.edges[0].url()).await;
    roster(
        &watcher
            .subscribe_presence(channel, &member("watcher"))
            .await,
        channel,
    );
    let mut doomed = PusherClient::connect(&cluster.edges[1].url()).await;
    roster(
        &doomed.subscribe_presence(channel, &member("doomed")).await,
        channel,
    );
    let mut split_on_doomed = PusherClient::connect(&cluster.edges[1].url()).await;
    roster(
        &split_on_doomed
            .subscribe_presence(channel, &member("split"))
            .await,
        channel,
    );
    let mut split_on_live = PusherClient::connect(&cluster.edges[0].url()).await;
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
    cluster.edges[1].process.kill().await;
    // The hub declares the edge gone after its 2 s idle timeout, then removes its members.
    let removed = watcher.next_event_within(IDLE_TIMEOUT + SLACK).await;
    eprintln!("edge SIGKILL: member_removed after {:?}", killed.elapsed());
    assert_eq!(
        member_event(&removed, "pusher_internal:member_removed"),
        json!({"user_id": "doomed"})
    );
    // "split" still has a socket on the live edge: no removal. The fence comes next.
    let fence = json!({"name": "fence", "channel": channel, "data": "1"});
    assert_eq!(cluster.api().trigger(fence).await.status, 200);
    assert_eq!(watcher.next_event().await["event"], "fence");
    let users = cluster
        .api()
        .get(&format!("channels/{channel}/users"), &[])
        .await;
    assert_eq!(
        users.body,
        json!({"users": [{"id": "split"}, {"id": "watcher"}]})
    );
}
