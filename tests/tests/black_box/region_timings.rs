//! The region's timers do what docs/cluster.md's "Timings at a glance" says, one test per row
//! (the link timeouts are the failover tests'; a vacated channel's bound is region_queries').
//! Each test measures from the outside and prints what it measured.

use std::time::{Duration, Instant};

use herald_tests::client::PusherClient;
use herald_tests::eventually::eventually;
use herald_tests::on_every_redis;
use herald_tests::presence::{join, member_event};
use herald_tests::redis_region::RegionConnection;
use herald_tests::topology::{Edge, RedisKind, Region};
use serde_json::json;

/// How late a timer may fire on a busy machine before the test calls it wrong.
const SLACK: Duration = Duration::from_millis(500);

on_every_redis!(a_dead_hub_is_reaped_when_its_heartbeat_expires);
async fn a_dead_hub_is_reaped_when_its_heartbeat_expires(redis: RedisKind) {
    // Row "a dead hub is reaped: redis.hub_ttl_secs without heartbeat". Heartbeats go every
    // fifth of the TTL, so a hub killed now is reaped between 4/5 of the TTL and the TTL later.
    const TTL: Duration = Duration::from_secs(3);
    let test = "a_dead_hub_is_reaped_when_its_heartbeat_expires";
    let mut region = Region::start_over(
        redis,
        test,
        2,
        0,
        &[("HERALD_REDIS__HUB_TTL_SECS", "3")],
        &[],
    )
    .await;
    // Each edge knows one hub only, so the dead hub's sockets stay with it: the reaper removes
    // them.
    let lone = Edge::start(&region.name, "lone", &region.hubs[0], &[]).await;
    let watching = Edge::start(&region.name, "watching", &region.hubs[1], &[]).await;
    let mut watcher = join(&watching, "watcher").await;
    let _gone = join(&lone, "gone").await;
    let added = watcher.next_event().await;
    assert_eq!(
        member_event(&added),
        ("pusher_internal:member_added".into(), "gone".into())
    );
    let killed = Instant::now();
    region.hubs[0].process.kill().await;
    let removed = tokio::time::timeout(TTL + SLACK + Duration::from_secs(2), watcher.next_event())
        .await
        .expect("member_removed after the dead hub's TTL");
    let reaped = killed.elapsed();
    assert_eq!(
        member_event(&removed),
        ("pusher_internal:member_removed".into(), "gone".into())
    );
    eprintln!("hub SIGKILL: reaped after {reaped:?} (TTL {TTL:?})");
    assert!(
        reaped >= TTL.mul_f64(0.8) - Duration::from_millis(100),
        "reaped before its heartbeat expired: {reaped:?}"
    );
    assert!(reaped <= TTL + SLACK, "reaped {reaped:?} after the kill");
}

on_every_redis!(a_channel_nobody_wants_is_unsubscribed_after_the_linger);
async fn a_channel_nobody_wants_is_unsubscribed_after_the_linger(redis: RedisKind) {
    // Row "unsubscribe after the last interest: redis.linger_secs (default 5 s)", with the
    // default.
    const LINGER: Duration = Duration::from_secs(5);
    let region = Region::start_over(
        redis,
        "a_channel_nobody_wants_is_unsubscribed_after_the_linger",
        1,
        1,
        &[],
        &[],
    )
    .await;
    let channel = "herald:ev:{424242:lingering}";
    let mut client = PusherClient::connect(&region.edges[0].url()).await;
    client.subscribe("lingering").await;
    assert_eq!(region.redis.subscribers(channel), 1);
    let left = Instant::now();
    client.unsubscribe("lingering").await;
    client.sync().await;
    eventually(
        "the hub to unsubscribe in Redis",
        LINGER + SLACK + Duration::from_secs(2),
        async || region.redis.subscribers(channel),
        |subscribers| *subscribers == 0,
    )
    .await
    .unwrap();
    let unsubscribed = left.elapsed();
    eprintln!("last interest gone: unsubscribed in Redis after {unsubscribed:?}");
    assert!(
        unsubscribed >= LINGER,
        "before the linger: {unsubscribed:?}"
    );
    assert!(
        unsubscribed <= LINGER + SLACK,
        "{unsubscribed:?} after the last interest"
    );
    // A channel wanted again within the linger is not unsubscribed in between.
    client.subscribe("lingering").await;
    client.unsubscribe("lingering").await;
    client.sync().await;
    client.subscribe("lingering").await;
    assert_eq!(region.redis.subscribers(channel), 1);
}

on_every_redis!(history_keeps_the_configured_number_of_events);
async fn history_keeps_the_configured_number_of_events(redis: RedisKind) {
    // Row "history kept per channel: hub.history_max_events events".
    let region = Region::start_over(
        redis,
        "history_keeps_the_configured_number_of_events",
        1,
        1,
        &[("HERALD_HUB__HISTORY_MAX_EVENTS", "10")],
        &[],
    )
    .await;
    let api = region.hubs[0].api();
    for n in 0..15 {
        let reply = api
            .trigger(json!({"name": "e", "channel": "kept", "data": n.to_string()}))
            .await;
        assert_eq!(reply.status, 200);
    }
    let mut redis = region.redis.connection();
    let kept: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("herald:hist:{424242:kept}")
        .arg("-")
        .arg("+")
        .query(&mut redis)
        .expect("XRANGE answers");
    let data: Vec<String> = kept
        .iter()
        .map(|(_, fields)| {
            let body = &fields
                .iter()
                .find(|(name, _)| name == "b")
                .expect("a body")
                .1;
            body.rsplit(':').next().unwrap_or_default().to_string()
        })
        .collect();
    let expected: Vec<String> = (5..15).map(|n| format!("\"{n}\"")).collect();
    assert_eq!(data, expected, "exactly the last 10 events");
}

on_every_redis!(history_expires_after_the_configured_age);
async fn history_expires_after_the_configured_age(redis: RedisKind) {
    // Row "history kept per channel: hub.history_max_age_secs".
    const AGE: Duration = Duration::from_secs(1);
    let region = Region::start_over(
        redis,
        "history_expires_after_the_configured_age",
        1,
        1,
        &[("HERALD_HUB__HISTORY_MAX_AGE_SECS", "1")],
        &[],
    )
    .await;
    let published = Instant::now();
    let reply = region.hubs[0]
        .api()
        .trigger(json!({"name": "e", "channel": "aging", "data": "x"}))
        .await;
    assert_eq!(reply.status, 200);
    let mut redis = region.redis.connection();
    let exists = |redis: &mut RegionConnection| -> bool {
        redis::cmd("EXISTS")
            .arg("herald:hist:{424242:aging}")
            .query::<u32>(redis)
            .expect("EXISTS answers")
            == 1
    };
    assert!(exists(&mut redis), "the event is in history");
    eventually(
        "the channel's history to expire",
        AGE + SLACK + Duration::from_secs(2),
        async || exists(&mut redis),
        |exists| !exists,
    )
    .await
    .unwrap();
    let expired = published.elapsed();
    eprintln!("history gone {expired:?} after its last event");
    assert!(expired >= AGE - Duration::from_millis(50), "{expired:?}");
    assert!(expired <= AGE + SLACK, "{expired:?}");
}
