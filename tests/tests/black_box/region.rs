//! Hubs linked through Redis: every trigger reaches every subscriber on every edge of every hub;
//! a hub subscribes in Redis only to what its edges want; watchlists span hubs. (Channel queries
//! and presence run against a region too, in `fanout`, `presence` and the compat modules.)

use std::time::Duration;

use herald_tests::client::PusherClient;
use herald_tests::eventually::eventually;
use herald_tests::on_every_redis;
use herald_tests::topology::{RedisKind, Region};
use serde_json::{Value, json};

on_every_redis!(triggers_on_either_hub_reach_every_edge_of_both_hubs);
async fn triggers_on_either_hub_reach_every_edge_of_both_hubs(redis: RedisKind) {
    let region = Region::start_over(
        redis,
        "triggers_on_either_hub_reach_every_edge_of_both_hubs",
        2,
        3,
        &[],
        &[],
    )
    .await;
    let mut clients = region.subscribers("news").await;
    for (index, hub) in region.hubs.iter().enumerate() {
        let data = format!("from hub {index}");
        let reply = hub
            .api()
            .trigger(json!({"name": "story", "channel": "news", "data": data}))
            .await;
        assert_eq!((reply.status, reply.body), (200, json!({})));
        for client in &mut clients {
            assert_eq!(
                client.next_event().await,
                json!({"event": "story", "channel": "news", "data": data})
            );
        }
    }
}

on_every_redis!(socket_id_exclusion_works_across_hubs);
async fn socket_id_exclusion_works_across_hubs(redis: RedisKind) {
    let region = Region::start_over(
        redis,
        "socket_id_exclusion_works_across_hubs",
        2,
        2,
        &[],
        &[],
    )
    .await;
    let mut sender = PusherClient::connect(&region.edges[0].url()).await;
    let mut other = PusherClient::connect(&region.edges[1].url()).await;
    sender.subscribe("chat").await;
    other.subscribe("chat").await;
    let api = region.hubs[1].api();
    let excluded =
        json!({"name": "m", "channel": "chat", "data": "hidden", "socket_id": sender.socket_id});
    assert_eq!(api.trigger(excluded).await.status, 200);
    assert_eq!(
        api.trigger(json!({"name": "fence", "channel": "chat", "data": "f"}))
            .await
            .status,
        200
    );
    assert_eq!(sender.next_event().await["event"], "fence");
    assert_eq!(other.next_event().await["data"], "hidden");
    assert_eq!(other.next_event().await["event"], "fence");
}

on_every_redis!(a_hub_subscribes_in_redis_only_to_channels_its_edges_want);
async fn a_hub_subscribes_in_redis_only_to_channels_its_edges_want(redis: RedisKind) {
    let env = [("HERALD_REDIS__LINGER_SECS", "1")];
    let region = Region::start_over(
        redis,
        "a_hub_subscribes_in_redis_only_to_channels_its_edges_want",
        2,
        2,
        &env,
        &[],
    )
    .await;
    // Edge 0 prefers hub 0, edge 1 hub 1.
    assert_eq!(
        region.edges[0].linked_hub().await.as_deref(),
        Some(region.hubs[0].hub_id.as_str())
    );
    let mut only_on_hub_0 = PusherClient::connect(&region.edges[0].url()).await;
    only_on_hub_0.subscribe("narrow").await;
    let mut only_on_hub_1 = PusherClient::connect(&region.edges[1].url()).await;
    only_on_hub_1.subscribe("other").await;

    let channel = "herald:ev:{424242:narrow}";
    assert_eq!(
        region.redis.subscribers(channel),
        1,
        "one hub wants it, one subscription"
    );
    assert_eq!(region.redis.subscribers("herald:ev:{424242:other}"), 1);
    let api = region.hubs[1].api();
    assert_eq!(
        api.trigger(json!({"name": "e", "channel": "narrow", "data": "1"}))
            .await
            .status,
        200
    );
    assert_eq!(only_on_hub_0.next_event().await["data"], "1");

    // The last interest gone, the hub unsubscribes after its linger.
    only_on_hub_0.unsubscribe("narrow").await;
    only_on_hub_0.sync().await;
    eventually(
        "hub 0 to unsubscribe in Redis after its 1 s linger",
        Duration::from_secs(10),
        async || region.redis.subscribers(channel),
        |subscribers| *subscribers == 0,
    )
    .await
    .unwrap();
}

on_every_redis!(herald_dev_starts_a_local_region_of_processes);
async fn herald_dev_starts_a_local_region_of_processes(redis: RedisKind) {
    use herald_tests::api::Api;
    use herald_tests::process::HeraldProcess;
    use herald_tests::redis_region::RegionRedis;

    let test = redis.name("herald_dev_starts_a_local_region_of_processes");
    let redis = RegionRedis::start(redis, &test).await;
    let url = redis.url();
    let args = [
        "dev",
        "--ready-json",
        "--hubs",
        "2",
        "--edges",
        "3",
        "--redis",
        &url,
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    let dev = HeraldProcess::start(&test, "dev", &args, &[]).await;
    let members = dev.ready["members"]
        .as_array()
        .expect("a member list")
        .clone();
    assert_eq!(members.len(), 5);
    let field = |member: &Value, name: &str| member["ready"][name].as_str().unwrap().to_string();
    let mut clients = Vec::new();
    for edge in members.iter().filter(|m| m["ready"]["role"] == "edge") {
        let url = format!(
            "ws://{}/app/herald-dev-key?protocol=7",
            field(edge, "websocket")
        );
        let mut client = PusherClient::connect(&url).await;
        client.subscribe("local").await;
        clients.push(client);
    }
    let hub = members
        .iter()
        .find(|m| m["ready"]["role"] == "hub")
        .unwrap();
    let api = Api::for_app(
        &field(hub, "http"),
        "100001",
        "herald-dev-key",
        "herald-dev-secret",
    );
    assert_eq!(
        api.trigger(json!({"name": "e", "channel": "local", "data": "x"}))
            .await
            .status,
        200
    );
    for client in &mut clients {
        assert_eq!(client.next_event().await["data"], "x");
    }

    // However the parent dies, its processes follow.
    drop(clients);
    let mut dev = dev;
    dev.kill().await;
    for member in &members {
        let pid = member["pid"].as_u64().expect("a pid");
        eventually(
            &format!("{} to follow herald dev", member["name"]),
            Duration::from_secs(10),
            async || running(pid),
            |alive| !alive,
        )
        .await
        .unwrap();
    }
}

/// Whether a process exists and is not a zombie.
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Sign-in is answered by the edge before its hub hears of it: waits until Redis records the
/// user online on `hubs` hubs.
async fn wait_until_hubs_have(region: &Region, user: &str, hubs: u64) {
    let mut redis = region.redis.connection();
    eventually(
        &format!("Redis to record {user} online on {hubs} hubs"),
        Duration::from_secs(5),
        async || -> Option<u64> {
            redis::Commands::hget(&mut redis, "herald:online:{424242}", user).unwrap()
        },
        |recorded| *recorded == Some(hubs),
    )
    .await
    .unwrap();
}

on_every_redis!(watchlists_see_friends_on_every_hub_once_per_change);
async fn watchlists_see_friends_on_every_hub_once_per_change(redis: RedisKind) {
    let region = Region::start_over(
        redis,
        "watchlists_see_friends_on_every_hub_once_per_change",
        2,
        2,
        &[],
        &[],
    )
    .await;
    // Edge 0 is on hub 0, edge 1 on hub 1. "early" is online on hub 1 before the watcher signs in.
    let mut early = PusherClient::connect(&region.edges[1].url()).await;
    early.sign_in(&json!({"id": "early"})).await;
    wait_until_hubs_have(&region, "early", 1).await;
    let watchlist = json!({"id": "w", "watchlist": ["early", "friend", "other"]});
    let mut on_hub_0 = PusherClient::connect(&region.edges[0].url()).await;
    on_hub_0.sign_in(&watchlist).await;
    assert_eq!(
        on_hub_0.next_watchlist_events().await,
        json!([
            {"name": "online", "user_ids": ["early"]},
            {"name": "offline", "user_ids": ["friend", "other"]}
        ])
    );
    // The same watcher on the other hub: both hubs know the watchlist now.
    let mut on_hub_1 = PusherClient::connect(&region.edges[1].url()).await;
    on_hub_1.sign_in(&watchlist).await;
    assert_eq!(
        on_hub_1.next_watchlist_events().await,
        on_hub_0.next_watchlist_events().await,
        "a new socket's watchlist is answered on every socket of the watcher"
    );

    // Each change reaches each socket once, although both hubs watch for the watcher (a
    // duplicate would arrive before the next change).
    let mut expect_change = async |name: &str, user: &str| {
        for watcher in [&mut on_hub_0, &mut on_hub_1] {
            assert_eq!(
                watcher.next_watchlist_events().await,
                json!([{"name": name, "user_ids": [user]}])
            );
        }
    };
    let mut friend = PusherClient::connect(&region.edges[1].url()).await;
    friend.sign_in(&json!({"id": "friend"})).await;
    expect_change("online", "friend").await;
    let mut other = PusherClient::connect(&region.edges[0].url()).await;
    other.sign_in(&json!({"id": "other"})).await;
    expect_change("online", "other").await;
    drop(friend);
    expect_change("offline", "friend").await;
    // A user on two hubs stays online while either socket lives.
    let mut other_again = PusherClient::connect(&region.edges[1].url()).await;
    other_again.sign_in(&json!({"id": "other"})).await;
    wait_until_hubs_have(&region, "other", 2).await;
    drop(other);
    drop(early);
    // "other" never went offline: the next change is about "early".
    expect_change("offline", "early").await;
}

on_every_redis!(queries_answer_while_no_hub_heartbeat_is_recorded);
async fn queries_answer_while_no_hub_heartbeat_is_recorded(redis: RedisKind) {
    // Between a Redis data loss and the next heartbeat no hub counts as live: queries must
    // answer with what live hubs hold (nothing), not fail on an empty read.
    let region = Region::start_over(
        redis,
        "queries_answer_while_no_hub_heartbeat_is_recorded",
        1,
        1,
        &[],
        &[],
    )
    .await;
    let _clients = region.subscribers("lobby").await;
    let _: () = redis::cmd("DEL")
        .arg("herald:hubs")
        .query(&mut region.redis.connection())
        .expect("DEL answers");
    let api = region.hubs[0].api();
    let list = api.get("channels", &[]).await;
    assert_eq!((list.status, list.body), (200, json!({"channels": {}})));
    let lobby = api
        .get("channels/lobby", &[("info", "subscription_count")])
        .await;
    assert_eq!(lobby.status, 200, "{:?}", lobby.body);
}
