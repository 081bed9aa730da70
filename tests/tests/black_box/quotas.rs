//! Who may connect, and how much: allowed origins (4009), an app's region-wide connection
//! quota (4004), the edge's cap (4100 and `/up` "full"), channels per socket, new connections
//! per client address (HTTP 429, behind trusted proxies by `X-Forwarded-For`), and API requests
//! per app (429 with `Retry-After`). Every refusal is counted in `/stats`.

use std::net::IpAddr;
use std::time::Duration;

use herald_tests::api::{Api, query};
use herald_tests::client::{Socket, Upgraded, expect_close, next_json, open_from, send_json};
use herald_tests::eventually::eventually;
use herald_tests::on_every_redis;
use herald_tests::topology::{APP_ID, APP_KEY, Cluster, Edge, RedisKind, Region};
use serde_json::{Value, json};

const PATH: &str = "/app/test-key?protocol=7&client=js&version=8.4.0";

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// An upgrade from 127.0.0.1 with these headers.
async fn open(edge: &Edge, headers: &[(&str, &str)]) -> Upgraded {
    open_from(loopback(1), &edge.websocket, PATH, headers).await
}

/// Expects the upgrade to be established; returns the socket.
async fn established(upgraded: Upgraded) -> Box<Socket> {
    let Upgraded::Open(mut ws) = upgraded else {
        panic!("the upgrade was refused");
    };
    let first = next_json(&mut ws).await;
    assert_eq!(first["event"], "pusher:connection_established", "{first}");
    ws
}

/// Expects Pusher's refusal: `pusher:error` with `code`, then a close with the same code.
async fn refused_with(upgraded: Upgraded, code: u16) {
    let Upgraded::Open(mut ws) = upgraded else {
        panic!("the upgrade was answered over HTTP, not refused the Pusher way");
    };
    let error = next_json(&mut ws).await;
    assert_eq!(error["event"], "pusher:error", "{error}");
    assert_eq!(error["data"]["code"], code, "{error}");
    assert_eq!(expect_close(&mut ws).await, Some(code));
}

async fn stats(address: &str) -> Value {
    Api::new(address).raw("GET", "/stats", "").await.body
}

#[tokio::test]
async fn origins_are_allowed_refused_by_wildcard_and_absent_by_rule() {
    let test = "origins_are_allowed_refused_by_wildcard_and_absent_by_rule";
    let cluster = Cluster::start_with(
        test,
        1,
        &[("HERALD_APP__ALLOWED_ORIGINS", "example.com, *.example.org")],
        &[],
    )
    .await;
    let edge = &cluster.edges[0];
    for allowed in [
        "https://example.com",
        "http://Example.com:8080",
        "https://app.example.org",
    ] {
        established(open(edge, &[("Origin", allowed)]).await).await;
    }
    for refused in [
        "https://evil.test",
        "https://example.org",
        "https://www.example.com",
    ] {
        refused_with(open(edge, &[("Origin", refused)]).await, 4009).await;
    }
    // No Origin (a server, a mobile app): allowed unless app.require_origin.
    established(open(edge, &[]).await).await;
    let counters = stats(&edge.admin).await["counters"].clone();
    assert_eq!(counters["refused_origin"], 3, "{counters}");

    let strict = Cluster::start_with(
        test,
        1,
        &[
            ("HERALD_APP__ALLOWED_ORIGINS", "example.com"),
            ("HERALD_APP__REQUIRE_ORIGIN", "true"),
        ],
        &[],
    )
    .await;
    refused_with(open(&strict.edges[0], &[]).await, 4009).await;
    established(open(&strict.edges[0], &[("Origin", "https://example.com")]).await).await;

    // The default, `*`, lets every origin in.
    let open_app = Cluster::start(test, 1, &[]).await;
    established(open(&open_app.edges[0], &[("Origin", "https://evil.test")]).await).await;
}

on_every_redis!(an_app_over_its_quota_gets_4004_counted_across_the_region);
async fn an_app_over_its_quota_gets_4004_counted_across_the_region(redis: RedisKind) {
    let test = "an_app_over_its_quota_gets_4004_counted_across_the_region";
    let region = Region::start_over(
        redis,
        test,
        2,
        2,
        &[("HERALD_APP__MAX_CONNECTIONS", "3")],
        &[],
    )
    .await;
    let (first, second) = (&region.edges[0], &region.edges[1]);
    let _a = established(open(first, &[]).await).await;
    let _b = established(open(first, &[]).await).await;
    // The other edge, linked to the other hub, hears of the first edge's two through Redis.
    let heard = eventually(
        "the second edge hears of the first edge's connections",
        Duration::from_secs(15),
        async || stats(&second.admin).await,
        |stats| stats["apps"][APP_ID]["region_connections"] == 2,
    )
    .await;
    heard.expect("the region's connections reach every edge");
    let _c = established(open(second, &[]).await).await;
    refused_with(open(second, &[]).await, 4004).await;
    // The first edge learns of the third connection the same way (within about two seconds:
    // meanwhile it could admit one more, the documented overshoot).
    let heard = eventually(
        "the first edge hears of the second edge's connection",
        Duration::from_secs(15),
        async || stats(&first.admin).await,
        |stats| stats["apps"][APP_ID]["region_connections"] == 3,
    )
    .await;
    heard.expect("the region's connections reach every edge");
    refused_with(open(first, &[]).await, 4004).await;
    for edge in [first, second] {
        let counters = stats(&edge.admin).await["counters"].clone();
        assert_eq!(counters["refused_app_quota"], 1, "{counters}");
    }
}

#[tokio::test]
async fn a_full_edge_refuses_with_4100_and_says_so_in_up() {
    let test = "a_full_edge_refuses_with_4100_and_says_so_in_up";
    let cluster = Cluster::start(test, 1, &[("HERALD_EDGE__MAX_CONNECTIONS", "2")]).await;
    let edge = &cluster.edges[0];
    let first = established(open(edge, &[]).await).await;
    let _second = established(open(edge, &[]).await).await;
    refused_with(open(edge, &[]).await, 4100).await;
    let up = Api::new(&edge.admin).raw("GET", "/up", "").await;
    assert_eq!(
        (up.status, up.body),
        (503, json!({"health": "unavailable", "reason": "full"}))
    );
    drop(first);
    let up = eventually(
        "/up turns 200 once a socket left",
        Duration::from_secs(10),
        async || Api::new(&edge.admin).raw("GET", "/up", "").await.status,
        |status| *status == 200,
    )
    .await;
    up.expect("the edge is no longer full");
    established(open(edge, &[]).await).await;
    let counters = stats(&edge.admin).await["counters"].clone();
    assert_eq!(counters["refused_edge_full"], 1, "{counters}");
}

#[tokio::test]
async fn a_socket_holds_at_most_its_channel_limit() {
    let test = "a_socket_holds_at_most_its_channel_limit";
    let cluster = Cluster::start(test, 1, &[("HERALD_EDGE__MAX_CHANNELS_PER_SOCKET", "3")]).await;
    let edge = &cluster.edges[0];
    let mut ws = established(open(edge, &[]).await).await;
    let subscribe =
        |channel: &str| json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    for channel in ["a", "b", "c"] {
        send_json(&mut ws, subscribe(channel)).await;
        assert_eq!(
            next_json(&mut ws).await["event"],
            "pusher_internal:subscription_succeeded"
        );
    }
    send_json(&mut ws, subscribe("d")).await;
    let refused = next_json(&mut ws).await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    assert_eq!(refused["channel"], "d", "{refused}");
    assert_eq!(refused["data"]["type"], "LimitReached", "{refused}");
    assert!(
        refused["data"]["error"]
            .as_str()
            .is_some_and(|text| text.contains("3 channels")),
        "{refused}"
    );
    // The socket stays usable: leave one, and the fourth fits.
    send_json(
        &mut ws,
        json!({"event": "pusher:unsubscribe", "data": {"channel": "a"}}),
    )
    .await;
    send_json(&mut ws, subscribe("d")).await;
    let joined = next_json(&mut ws).await;
    assert_eq!(
        joined["event"], "pusher_internal:subscription_succeeded",
        "{joined}"
    );
    assert_eq!(joined["channel"], "d", "{joined}");
    let counters = stats(&edge.admin).await["counters"].clone();
    assert_eq!(counters["subscriptions_over_limit"], 1, "{counters}");
}

/// Expects an HTTP 429 with `Retry-After`.
fn rate_limited(upgraded: Upgraded) {
    match upgraded {
        Upgraded::Refused(429, Some(retry_after)) => {
            assert!(
                retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
                "{retry_after}"
            );
        }
        Upgraded::Refused(status, retry_after) => {
            panic!("expected 429 with Retry-After, got {status} {retry_after:?}")
        }
        Upgraded::Open(_) => panic!("a connection over the rate was upgraded"),
    }
}

#[tokio::test]
async fn connection_bursts_per_address_are_refused_behind_trusted_proxies_only() {
    let test = "connection_bursts_per_address_are_refused_behind_trusted_proxies_only";
    // A sustained rate of 1 per second would refill during the test; the burst of 3 is what
    // each address may open at once.
    let cluster = Cluster::start(
        test,
        1,
        &[
            ("HERALD_EDGE__CONNECTIONS_PER_IP_PER_SECOND", "1"),
            ("HERALD_EDGE__CONNECTIONS_PER_IP_BURST", "3"),
            ("HERALD_EDGE__TRUSTED_PROXIES", "127.0.0.2/32"),
        ],
    )
    .await;
    let edge = &cluster.edges[0];
    let from = async |source: u8, forwarded: Option<&str>| {
        let headers: Vec<(&str, &str)> = forwarded
            .map(|value| vec![("X-Forwarded-For", value)])
            .unwrap_or_default();
        open_from(loopback(source), &edge.websocket, PATH, &headers).await
    };
    let mut held = Vec::new();
    // A direct client: its burst, then 429.
    for _ in 0..3 {
        held.push(established(from(1, None).await).await);
    }
    rate_limited(from(1, None).await);
    // Behind the trusted proxy, each forwarded client has its own allowance.
    for _ in 0..3 {
        held.push(established(from(2, Some("203.0.113.7")).await).await);
    }
    rate_limited(from(2, Some("203.0.113.7")).await);
    held.push(established(from(2, Some("198.51.100.1, 203.0.113.8")).await).await);
    // An untrusted peer cannot pick its address by sending the header.
    for forwarded in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        held.push(established(from(3, Some(forwarded)).await).await);
    }
    rate_limited(from(3, Some("192.0.2.4")).await);
    let counters = stats(&edge.admin).await["counters"].clone();
    assert_eq!(counters["refused_rate_limited"], 3, "{counters}");
}

#[tokio::test]
async fn api_requests_over_the_apps_rate_get_429_with_retry_after() {
    let test = "api_requests_over_the_apps_rate_get_429_with_retry_after";
    let cluster = Cluster::start_with(
        test,
        0,
        &[("HERALD_APP__API_REQUESTS_PER_SECOND", "2")],
        &[],
    )
    .await;
    let api = cluster.api();
    let body = json!({"name": "e", "channel": "c", "data": "{}"}).to_string();
    let path = format!("/apps/{APP_ID}/events");
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let params = api.sign("POST", &path, &[], &body);
        let response = client
            .post(format!(
                "http://{}{path}?{}",
                cluster.hub.http,
                query(&params)
            ))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("the hub answers");
        statuses.push(response.status().as_u16());
        if let Some(value) = response.headers().get("retry-after") {
            retry_after = Some(value.to_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses, vec![200, 200, 429], "{retry_after:?}");
    assert!(
        retry_after.is_some_and(|value| value.parse::<u64>().is_ok_and(|s| s >= 1)),
        "429 says when to retry"
    );
    // Unsigned requests do not spend the app's allowance.
    let unsigned = Api::for_app(&cluster.hub.http, APP_ID, APP_KEY, "wrong-secret")
        .trigger(json!({"name": "e", "channel": "c", "data": "{}"}))
        .await;
    assert_eq!(unsigned.status, 401);
    let counters = stats(&cluster.hub.http).await["counters"].clone();
    assert_eq!(counters["api_rate_limited"], 1, "{counters}");
}
