//! What a region survives: a dead edge (its members leave within the bound, once per user), a
//! dead hub (what only it held is reaped; members whose edges moved see no flapping), a Redis
//! restart (not ready and 503 meanwhile, no gap afterwards), a Redis that refuses the hub's
//! subscriptions (retried with back-off), and two deployments sharing Redis.

use std::time::{Duration, Instant};

use herald_tests::api::Api;
use herald_tests::client::PusherClient;
use herald_tests::eventually::eventually;
use herald_tests::on_every_redis;
use herald_tests::presence::{join, member_event};
use herald_tests::redis::RedisServer;
use herald_tests::topology::{Edge, Hub, RedisKind, Region};
use serde_json::json;

/// Joins as `user` and waits until `watcher` sees the member added.
async fn join_seen(edge: &Edge, user: &str, watcher: &mut PusherClient) -> PusherClient {
    let client = join(edge, user).await;
    let added = "pusher_internal:member_added";
    expect_member(watcher, added, user, Duration::from_secs(5)).await;
    client
}

/// Waits for the next member event and checks it, within `bound`.
async fn expect_member(client: &mut PusherClient, event: &str, user: &str, bound: Duration) {
    let frame = tokio::time::timeout(bound, client.next_event())
        .await
        .unwrap_or_else(|_| panic!("no {event} for {user} within {bound:?}"));
    assert_eq!(
        member_event(&frame),
        (event.to_string(), user.to_string()),
        "{frame}"
    );
}

/// Proves nothing else is pending for `client`: the fence is its next event.
async fn fence(api: &Api, client: &mut PusherClient) {
    let reply = api
        .trigger(json!({"name": "fence", "channel": "presence-room", "data": "f"}))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(client.next_event().await["event"], "fence");
}

on_every_redis!(a_killed_edge_loses_its_members_region_wide_within_5_seconds);
async fn a_killed_edge_loses_its_members_region_wide_within_5_seconds(redis: RedisKind) {
    let mut region = Region::start_over(
        redis,
        "a_killed_edge_loses_its_members_region_wide_within_5_seconds",
        2,
        3,
        &[],
        &[],
    )
    .await;
    let mut watcher = join(&region.edges[1], "watcher").await;
    let _doomed = join_seen(&region.edges[2], "doomed", &mut watcher).await;
    let _split_dies = join_seen(&region.edges[2], "split", &mut watcher).await;
    let _split_lives = join(&region.edges[0], "split").await;

    let killed = Instant::now();
    region.edges[2].process.kill().await;
    expect_member(
        &mut watcher,
        "pusher_internal:member_removed",
        "doomed",
        Duration::from_secs(5),
    )
    .await;
    eprintln!("edge SIGKILL: member_removed after {:?}", killed.elapsed());
    fence(&region.hubs[1].api(), &mut watcher).await;
    for hub in &region.hubs {
        let users = hub
            .api()
            .get("channels/presence-room/users", &[])
            .await
            .body;
        assert_eq!(
            users,
            json!({"users": [{"id": "split"}, {"id": "watcher"}]})
        );
    }
}

on_every_redis!(a_dead_hub_is_reaped_without_flapping_members_that_moved);
async fn a_dead_hub_is_reaped_without_flapping_members_that_moved(redis: RedisKind) {
    // The hub TTL must outlast an edge's failover (link idle timeout 3 s plus re-linking).
    let env = [("HERALD_REDIS__HUB_TTL_SECS", "8")];
    let mut region = Region::start_over(
        redis,
        "a_dead_hub_is_reaped_without_flapping_members_that_moved",
        2,
        3,
        &env,
        &[],
    )
    .await;
    // Edges 0 and 2 are on hub 0; edge 1 on hub 1.
    let mut watcher = join(&region.edges[1], "watcher").await;
    let _mover = join_seen(&region.edges[0], "mover", &mut watcher).await;
    let _lost = join_seen(&region.edges[2], "lost", &mut watcher).await;
    // The same users signed in, watched from hub 1.
    let mut friend = PusherClient::connect(&region.edges[1].url()).await;
    friend
        .sign_in(&json!({"id": "friend", "watchlist": ["mover", "lost"]}))
        .await;
    let mut _signed_in = Vec::new();
    for (edge, user) in [(0, "mover"), (2, "lost")] {
        let mut client = PusherClient::connect(&region.edges[edge].url()).await;
        client.sign_in(&json!({"id": user})).await;
        _signed_in.push(client);
    }
    let mut online = Vec::new();
    while online.len() < 2 {
        let events = friend.next_watchlist_events().await;
        for group in events.as_array().unwrap() {
            if group["name"] == "online" {
                online.extend(group["user_ids"].as_array().unwrap().iter().cloned());
            }
        }
    }
    online.sort_by_key(|id| id.to_string());
    assert_eq!(online, [json!("lost"), json!("mover")]);

    // Hub 0 and edge 2 die together: "lost" is held only by the dead hub; edge 0 survives and
    // moves "mover" to hub 1.
    let killed = Instant::now();
    region.edges[2].process.kill().await;
    region.hubs[0].process.kill().await;
    expect_member(
        &mut watcher,
        "pusher_internal:member_removed",
        "lost",
        Duration::from_secs(15),
    )
    .await;
    eprintln!(
        "hub SIGKILL: the dead hub's member reaped after {:?}",
        killed.elapsed()
    );
    fence(&region.hubs[1].api(), &mut watcher).await;
    assert_eq!(
        friend.next_watchlist_events().await,
        json!([{"name": "offline", "user_ids": ["lost"]}]),
        "the dead hub's user went offline; \"mover\" never did"
    );
    let users = region.hubs[1]
        .api()
        .get("channels/presence-room/users", &[])
        .await
        .body;
    assert_eq!(
        users,
        json!({"users": [{"id": "mover"}, {"id": "watcher"}]}),
        "mover never left"
    );
}

async fn health(api: &Api) -> u16 {
    api.raw("GET", "/up", "").await.status
}

async fn until_health(api: &Api, status: u16) {
    eventually(
        &format!("/up to answer {status}"),
        Duration::from_secs(20),
        async || health(api).await,
        |answer| *answer == status,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_redis_restart_makes_hubs_unready_then_recovers_without_gaps() {
    let mut region = Region::start(
        "a_redis_restart_makes_hubs_unready_then_recovers_without_gaps",
        2,
        2,
        &[],
        &[],
    )
    .await;
    let mut clients = region.subscribers("ticks").await;
    let api = region.hubs[0].api();
    let trigger = |n: u32| json!({"name": "t", "channel": "ticks", "data": n.to_string()});
    for n in 0..5 {
        assert_eq!(api.trigger(trigger(n)).await.status, 200);
    }
    // A watcher on hub 0 follows a friend on hub 1.
    let mut watcher = PusherClient::connect(&region.edges[0].url()).await;
    watcher
        .sign_in(&json!({"id": "w", "watchlist": ["friend", "marker"]}))
        .await;
    assert_eq!(
        watcher.next_watchlist_events().await,
        json!([{"name": "offline", "user_ids": ["friend", "marker"]}])
    );
    let mut friend = PusherClient::connect(&region.edges[1].url()).await;
    friend.sign_in(&json!({"id": "friend"})).await;
    assert_eq!(
        watcher.next_watchlist_events().await,
        json!([{"name": "online", "user_ids": ["friend"]}])
    );

    region.redis.server_mut().kill().await;
    for hub in &region.hubs {
        until_health(&hub.api(), 503).await;
    }
    let refused = api.trigger(trigger(99)).await;
    assert_eq!(
        refused.status, 503,
        "an event Redis cannot hold is refused: {:?}",
        refused.body
    );
    let query = api.get("channels", &[]).await;
    assert_eq!(
        query.status, 503,
        "no wrong numbers while deaf: {:?}",
        query.body
    );

    region.redis.server_mut().restart().await;
    for hub in &region.hubs {
        until_health(&hub.api(), 200).await;
    }
    for n in 5..10 {
        assert_eq!(region.hubs[1].api().trigger(trigger(n)).await.status, 200);
    }
    for client in &mut clients {
        for n in 0..10 {
            let frame = client.next_event().await;
            assert_eq!(
                frame["data"],
                n.to_string(),
                "every acknowledged event, in order: {frame}"
            );
        }
    }

    // The restarted Redis is empty: hub 1 asserted its friend online again, so the friend's
    // leaving is still announced. (A watcher may see a flap while the hubs re-assert; the
    // marker's arrival fences that off.)
    let mut marker = PusherClient::connect(&region.edges[1].url()).await;
    marker.sign_in(&json!({"id": "marker"})).await;
    let online_marker = json!([{"name": "online", "user_ids": ["marker"]}]);
    while watcher.next_watchlist_events().await != online_marker {}
    drop(friend);
    assert_eq!(
        watcher.next_watchlist_events().await,
        json!([{"name": "offline", "user_ids": ["friend"]}])
    );
}

on_every_redis!(two_deployments_sharing_a_redis_never_hear_each_other);
async fn two_deployments_sharing_a_redis_never_hear_each_other(redis: RedisKind) {
    let test = "two_deployments_sharing_a_redis_never_hear_each_other";
    let region = Region::start_over(
        redis,
        test,
        1,
        1,
        &[("HERALD_REDIS__PREFIX", "staging")],
        &[],
    )
    .await;
    let url = region.redis.url();
    let production = Hub::start(
        &region.name,
        "production-hub",
        &[
            ("HERALD_REDIS__URL", url.as_str()),
            ("HERALD_REDIS__PREFIX", "production"),
        ],
    )
    .await;
    let production_edge = Edge::start(&region.name, "production-edge", &production, &[]).await;

    let mut staging = PusherClient::connect(&region.edges[0].url()).await;
    let mut live = PusherClient::connect(&production_edge.url()).await;
    staging.subscribe("orders").await;
    live.subscribe("orders").await;
    let sent = production
        .api()
        .trigger(json!({"name": "real", "channel": "orders", "data": "1"}))
        .await;
    assert_eq!(sent.status, 200);
    assert_eq!(live.next_event().await["event"], "real");
    let fence = region.hubs[0]
        .api()
        .trigger(json!({"name": "fence", "channel": "orders", "data": "2"}))
        .await;
    assert_eq!(fence.status, 200);
    assert_eq!(
        staging.next_event().await["event"],
        "fence",
        "staging never saw production's event"
    );
}

/// Connections Redis has accepted since it started (`INFO stats`).
fn connections_received(redis: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut redis.connection())
        .expect("INFO answers");
    info.lines()
        .find_map(|line| line.strip_prefix("total_connections_received:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("INFO stats reports total_connections_received")
}

#[tokio::test]
async fn a_redis_that_refuses_subscribe_is_retried_with_back_off() {
    // The hub's user may run commands but not SUBSCRIBE/PSUBSCRIBE: every pub/sub connection
    // opens, then fails. Each failure must count as one and wait before the next attempt.
    let redis = RedisServer::start().await;
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "hub",
            "on",
            ">pw",
            "~*",
            "&*",
            "+@all",
            "-subscribe",
            "-psubscribe",
        ])
        .query(&mut redis.connection())
        .expect("ACL SETUSER answers");
    let url = format!("redis://hub:pw@127.0.0.1:{}/0", redis.port);
    let before = connections_received(&redis);
    let started = Instant::now();
    let hub = Hub::start(
        "a_redis_that_refuses_subscribe_is_retried_with_back_off",
        "hub",
        &[("HERALD_REDIS__URL", url.as_str())],
    )
    .await;
    until_health(&hub.api(), 503).await;

    // Back-off from 100 ms doubling, ±50 % jitter: the pauses after failures 1 to 4 are 200,
    // 400, 800 and 1,600 ms, so the fifth attempt comes 1.5 s to 4.5 s after the first.
    // Retries happen: the fifth attempt is made well within 15 s.
    hub.process
        .wait_for_log("attempt=5", Duration::from_secs(15))
        .await;
    let elapsed = started.elapsed();
    // They are spaced: four pauses of at least half of 100, 200, 400 and 800 ms even if the
    // first retry waited only the first pause (reconnecting at once after each refusal made
    // hundreds of attempts a second).
    assert!(
        elapsed >= Duration::from_millis(750),
        "five failed attempts within {elapsed:?} of the hub's start: no back-off"
    );
    // Each failure is one connection: five pub/sub attempts, the hub's command connection and
    // the two this test opened to count, with room for one more attempt under way.
    let connections = connections_received(&redis) - before;
    assert!(
        connections <= 10,
        "{connections} connections for five attempts: a failure is retried more than once"
    );
    assert_eq!(health(&hub.api()).await, 503);
}
