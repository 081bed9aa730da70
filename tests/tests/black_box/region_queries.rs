//! Channel queries read their own writes on every hub (R-API-4): once a client got
//! `subscription_succeeded`, every hub's answer to any query counts it — asked of a hub other than
//! the one the client's edge is linked to, with no wait or retry before the query; no answer
//! contradicts itself; a channel whose last socket left is unoccupied everywhere within 1 s, and
//! within the hub's link timeout when its edge is killed; a killed hub's edges are counted once
//! after they re-link.

use std::time::{Duration, Instant};

use herald_tests::api::Api;
use herald_tests::client::PusherClient;
use herald_tests::eventually::eventually;
use herald_tests::on_every_topology;
use herald_tests::topology::{EDGES, Region, Shape, Topology};
use serde_json::{Value, json};

/// How long a channel may still be reported occupied after its last socket left (R-API-4).
const VACATED_WITHIN: Duration = Duration::from_secs(1);

async fn counts(api: &Api, channel: &str, info: &str) -> Value {
    let reply = api
        .get(&format!("channels/{channel}"), &[("info", info)])
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

fn user(id: &str) -> Value {
    json!({"user_id": id})
}

async fn join(client: &mut PusherClient, channel: &str, id: &str) {
    let reply = client.subscribe_presence(channel, &user(id)).await;
    assert_eq!(
        reply["event"], "pusher_internal:subscription_succeeded",
        "{reply}"
    );
}

/// Checks that one answer does not contradict itself.
fn consistent(answer: &Value) {
    let occupied = answer["occupied"].as_bool().expect("occupied");
    let subscriptions = answer["subscription_count"].as_u64().unwrap_or(0);
    assert_eq!(occupied, subscriptions > 0, "{answer}");
    if let Some(users) = answer["user_count"].as_u64() {
        assert!(
            users <= subscriptions,
            "more users than subscriptions: {answer}"
        );
    }
}

on_every_topology!(every_subscription_is_counted_by_every_hub_as_soon_as_it_is_confirmed);
async fn every_subscription_is_counted_by_every_hub_as_soon_as_it_is_confirmed(shape: Shape) {
    let topology = Topology::start(
        shape,
        "every_subscription_is_counted_by_every_hub_as_soon_as_it_is_confirmed",
    )
    .await;
    let mut clients = Vec::new();
    for n in 0..12 {
        let edge = n % EDGES;
        let mut client = topology.connect(edge).await;
        client.subscribe("lobby").await;
        clients.push(client);
        // Asked at once of the hub that did not see the subscription: it counts it.
        let other = topology.api_for_other_hub(edge).await;
        let expected = json!({"occupied": true, "subscription_count": clients.len()});
        assert_eq!(
            counts(&other, "lobby", "subscription_count").await,
            expected,
            "after subscription {n} on edge {edge}"
        );
    }
    for hub in topology.hubs() {
        assert_eq!(
            counts(&hub.api(), "lobby", "subscription_count").await,
            json!({"occupied": true, "subscription_count": 12})
        );
    }
}

on_every_topology!(two_sockets_on_two_edges_are_two_for_every_hub);
async fn two_sockets_on_two_edges_are_two_for_every_hub(shape: Shape) {
    let topology = Topology::start(shape, "two_sockets_on_two_edges_are_two_for_every_hub").await;
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    a.subscribe("news").await;
    b.subscribe("news").await;
    for hub in topology.hubs() {
        assert_eq!(
            counts(&hub.api(), "news", "subscription_count").await,
            json!({"occupied": true, "subscription_count": 2})
        );
    }
}

on_every_topology!(presence_counts_users_and_subscriptions_without_contradiction);
async fn presence_counts_users_and_subscriptions_without_contradiction(shape: Shape) {
    let topology = Topology::start(
        shape,
        "presence_counts_users_and_subscriptions_without_contradiction",
    )
    .await;
    let mut a = topology.connect(0).await;
    join(&mut a, "presence-room", "a").await;
    assert_eq!(
        counts(
            &topology.api_for_other_hub(0).await,
            "presence-room",
            "user_count,subscription_count"
        )
        .await,
        json!({"occupied": true, "user_count": 1, "subscription_count": 1})
    );
    let mut b = topology.connect(1).await;
    join(&mut b, "presence-room", "b").await;
    // The same user again, on a third edge: two users, three subscriptions.
    let mut a_again = topology.connect(2).await;
    join(&mut a_again, "presence-room", "a").await;
    for edge in 0..EDGES {
        assert_eq!(
            counts(
                &topology.api_for_other_hub(edge).await,
                "presence-room",
                "user_count,subscription_count"
            )
            .await,
            json!({"occupied": true, "user_count": 2, "subscription_count": 3})
        );
    }
    let users = topology
        .api_for_other_hub(1)
        .await
        .get("channels/presence-room/users", &[])
        .await;
    assert_eq!(users.body, json!({"users": [{"id": "a"}, {"id": "b"}]}));
}

on_every_topology!(answers_never_contradict_themselves_while_members_come_and_go);
async fn answers_never_contradict_themselves_while_members_come_and_go(shape: Shape) {
    let topology = Topology::start(
        shape,
        "answers_never_contradict_themselves_while_members_come_and_go",
    )
    .await;
    let mut asked = 0;
    // Members join and leave on every edge while every hub is asked again and again; a
    // self-contradictory answer (occupied with no subscription, more users than subscriptions)
    // fails the test whenever it shows up.
    let churn = async {
        for round in 0..8 {
            let mut clients = Vec::new();
            for edge in 0..EDGES {
                let mut client = topology.connect(edge).await;
                join(&mut client, "presence-churn", &format!("u{edge}-{round}")).await;
                clients.push(client);
            }
            // Half the rounds leave by unsubscribing, the others by closing.
            for mut client in clients {
                if round % 2 == 0 {
                    client.unsubscribe("presence-churn").await;
                }
            }
        }
    };
    let ask = async {
        loop {
            for hub in topology.hubs() {
                let answer = counts(
                    &hub.api(),
                    "presence-churn",
                    "user_count,subscription_count",
                )
                .await;
                consistent(&answer);
                asked += 1;
            }
        }
    };
    tokio::select! {
        () = churn => {}
        _ = ask => unreachable!("asking never ends"),
    }
    assert!(
        asked > 10,
        "the hubs were asked while members changed ({asked} times)"
    );
}

on_every_topology!(channel_listings_filter_and_count_users);
async fn channel_listings_filter_and_count_users(shape: Shape) {
    let topology = Topology::start(shape, "channel_listings_filter_and_count_users").await;
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    join(&mut a, "presence-lobby", "a").await;
    join(&mut b, "presence-lobby", "b").await;
    join(&mut b, "presence-other", "b").await;
    let mut c = topology.connect(2).await;
    c.subscribe("public-news").await;
    for edge in [0, 1] {
        let other = topology.api_for_other_hub(edge).await;
        let presence = other
            .get(
                "channels",
                &[("filter_by_prefix", "presence-"), ("info", "user_count")],
            )
            .await;
        assert_eq!(
            (presence.status, presence.body),
            (
                200,
                json!({"channels": {
                    "presence-lobby": {"user_count": 2},
                    "presence-other": {"user_count": 1}
                }})
            )
        );
        let public = other
            .get("channels", &[("filter_by_prefix", "public-")])
            .await;
        assert_eq!(public.body, json!({"channels": {"public-news": {}}}));
    }
}

on_every_topology!(trigger_info_counts_what_is_confirmed);
async fn trigger_info_counts_what_is_confirmed(shape: Shape) {
    let topology = Topology::start(shape, "trigger_info_counts_what_is_confirmed").await;
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    join(&mut a, "presence-deal", "a").await;
    join(&mut b, "presence-deal", "b").await;
    let reply = topology
        .api_for_other_hub(1)
        .await
        .trigger(json!({
            "name": "offer",
            "channels": ["presence-deal"],
            "data": "{}",
            "info": "subscription_count,user_count"
        }))
        .await;
    assert_eq!(
        (reply.status, reply.body),
        (
            200,
            json!({"channels": {"presence-deal": {"subscription_count": 2, "user_count": 2}}})
        )
    );
}

/// Asks every hub until each reports `channel` unoccupied; returns how long it took.
async fn until_vacated(topology: &Topology, channel: &str, within: Duration) -> Duration {
    let left = Instant::now();
    for hub in topology.hubs() {
        let api = hub.api();
        eventually(
            &format!("{channel} to be unoccupied on hub {}", hub.hub_id),
            within,
            async || counts(&api, channel, "subscription_count").await,
            |answer| answer == &json!({"occupied": false, "subscription_count": 0}),
        )
        .await
        .unwrap();
    }
    left.elapsed()
}

on_every_topology!(a_vacated_channel_is_unoccupied_everywhere_within_a_second);
async fn a_vacated_channel_is_unoccupied_everywhere_within_a_second(shape: Shape) {
    let topology = Topology::start(
        shape,
        "a_vacated_channel_is_unoccupied_everywhere_within_a_second",
    )
    .await;
    // The last socket unsubscribes.
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    a.subscribe("room").await;
    b.subscribe("room").await;
    a.unsubscribe("room").await;
    b.unsubscribe("room").await;
    let unsubscribed = until_vacated(&topology, "room", 2 * VACATED_WITHIN).await;
    // The last socket closes.
    let mut c = topology.connect(2).await;
    join(&mut c, "presence-room", "c").await;
    drop(c);
    let closed = until_vacated(&topology, "presence-room", 2 * VACATED_WITHIN).await;
    eprintln!(
        "{}: unoccupied everywhere {unsubscribed:?} after the last unsubscribe, {closed:?} after the last close",
        shape.label()
    );
    assert!(unsubscribed <= VACATED_WITHIN, "{unsubscribed:?}");
    assert!(closed <= VACATED_WITHIN, "{closed:?}");
}

/// How long a hub takes to declare a killed edge gone: its link idle timeout
/// (`hub.link_idle_timeout_secs`, default 3 s), counted from its last keep-alive (sent every
/// third of it), as docs/cluster.md says.
const EDGE_DEATH: Duration = Duration::from_secs(4);

#[tokio::test]
async fn a_killed_edges_channels_are_unoccupied_within_the_edge_death_bound() {
    let mut region = Region::start(
        "a_killed_edges_channels_are_unoccupied_within_the_edge_death_bound",
        2,
        3,
        &[],
        &[],
    )
    .await;
    let mut doomed = PusherClient::connect(&region.edges[2].url()).await;
    doomed.subscribe("doomed").await;
    join(&mut doomed, "presence-doomed", "d").await;
    let mut survivor = PusherClient::connect(&region.edges[1].url()).await;
    survivor.subscribe("kept").await;
    let killed = Instant::now();
    region.edges[2].process.kill().await;
    for channel in ["doomed", "presence-doomed"] {
        for hub in &region.hubs {
            let api = hub.api();
            eventually(
                &format!("{channel} to be unoccupied on hub {}", hub.hub_id),
                EDGE_DEATH + Duration::from_secs(3),
                async || counts(&api, channel, "subscription_count").await,
                |answer| answer["occupied"] == false,
            )
            .await
            .unwrap();
        }
    }
    let vacated = killed.elapsed();
    eprintln!("edge SIGKILL: its channels unoccupied everywhere after {vacated:?}");
    assert!(
        vacated <= EDGE_DEATH + VACATED_WITHIN,
        "{vacated:?} after the edge died"
    );
    for hub in &region.hubs {
        assert_eq!(
            counts(&hub.api(), "kept", "subscription_count").await,
            json!({"occupied": true, "subscription_count": 1}),
            "the other edge's subscription stays counted"
        );
    }
}

#[tokio::test]
async fn a_killed_hubs_edges_are_counted_once_after_they_re_link() {
    let mut region = Region::start(
        "a_killed_hubs_edges_are_counted_once_after_they_re_link",
        2,
        3,
        &[],
        &[],
    )
    .await;
    // Edges 0 and 2 are on hub 0, edge 1 on hub 1.
    let survivor = region.hubs[1].hub_id.clone();
    let mut clients = Vec::new();
    for (edge, id) in [(0, "a"), (1, "b"), (2, "c"), (0, "d")] {
        let mut client = PusherClient::connect(&region.edges[edge].url()).await;
        client.subscribe("steady").await;
        join(&mut client, "presence-steady", id).await;
        clients.push(client);
    }
    let api = region.hubs[1].api();
    let steady = json!({"occupied": true, "subscription_count": 4});
    let present = json!({"occupied": true, "subscription_count": 4, "user_count": 4});
    assert_eq!(counts(&api, "steady", "subscription_count").await, steady);
    region.hubs[0].process.kill().await;
    // Until both of its edges linked to hub 1, and a while after, hub 1 counts every
    // subscription exactly once: never twice (an edge's entries are rewritten, not added), and
    // never lost (the dead hub's entries count until its heartbeat expires).
    let relinked = Instant::now();
    loop {
        assert_eq!(counts(&api, "steady", "subscription_count").await, steady);
        assert_eq!(
            counts(&api, "presence-steady", "subscription_count,user_count").await,
            present
        );
        let mut moved = true;
        for edge in [0, 2] {
            moved &= region.edges[edge].linked_hub().await.as_ref() == Some(&survivor);
        }
        if moved {
            break;
        }
        assert!(
            relinked.elapsed() < Duration::from_secs(15),
            "edges 0 and 2 did not re-link to hub 1"
        );
    }
    eprintln!(
        "hub SIGKILL: its edges re-linked after {:?}",
        relinked.elapsed()
    );
    for _ in 0..20 {
        assert_eq!(counts(&api, "steady", "subscription_count").await, steady);
        assert_eq!(
            counts(&api, "presence-steady", "subscription_count,user_count").await,
            present
        );
    }
    // A subscription made now is counted at once too.
    let mut late = PusherClient::connect(&region.edges[0].url()).await;
    late.subscribe("steady").await;
    assert_eq!(
        counts(&api, "steady", "subscription_count").await,
        json!({"occupied": true, "subscription_count": 5})
    );
}
