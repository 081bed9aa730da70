//! Every bad HTTP API request gets a clear 4xx JSON error, and the hub keeps serving.

use herald_tests::api::{Api, query};
use herald_tests::client::PusherClient;
use herald_tests::topology::{APP_ID, Cluster};
use serde_json::{Value, json};

fn assert_error(reply: &herald_tests::api::Reply, status: u16, needle: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    let message = reply.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {:?}", reply.body));
    assert!(
        message.contains(needle),
        "{message:?} does not mention {needle:?}"
    );
}

async fn trigger_raw(api: &Api, body: &str) -> herald_tests::api::Reply {
    api.signed("POST", "events", &[], body).await
}

#[tokio::test]
async fn signature_problems_are_401() {
    let cluster = Cluster::start("signature_problems_are_401", 1, &[]).await;
    let api = cluster.api();
    let path = format!("/apps/{APP_ID}/events");
    let body = r#"{"name":"e","channel":"c","data":"x"}"#;

    assert_error(&api.raw("POST", &path, body).await, 401, "auth_key");

    let mut params = api.sign("POST", &path, &[], body);
    params
        .iter_mut()
        .find(|(k, _)| k == "auth_signature")
        .unwrap()
        .1 = "0".repeat(64);
    assert_error(
        &api.raw("POST", &format!("{path}?{}", query(&params)), body)
            .await,
        401,
        "auth_signature",
    );

    let params = api.sign("POST", &path, &[], body);
    let tampered = r#"{"name":"e","channel":"c","data":"y"}"#;
    assert_error(
        &api.raw("POST", &format!("{path}?{}", query(&params)), tampered)
            .await,
        401,
        "body_md5",
    );

    let mut params = api.sign("POST", &path, &[], body);
    params
        .iter_mut()
        .find(|(k, _)| k == "auth_timestamp")
        .unwrap()
        .1 = "1000000000".into();
    assert_error(
        &api.raw("POST", &format!("{path}?{}", query(&params)), body)
            .await,
        401,
        "auth_timestamp",
    );

    let mut params = api.sign("POST", &path, &[], body);
    params.iter_mut().find(|(k, _)| k == "auth_key").unwrap().1 = "someone-else".into();
    assert_error(
        &api.raw("POST", &format!("{path}?{}", query(&params)), body)
            .await,
        401,
        "auth_key",
    );

    // The hub still serves a correct request.
    assert_eq!(trigger_raw(&api, body).await.status, 200);
}

#[tokio::test]
async fn unknown_apps_and_routes_are_404() {
    let cluster = Cluster::start("unknown_apps_and_routes_are_404", 1, &[]).await;
    let api = cluster.api();
    let path = "/apps/no-such-app/events";
    let body = r#"{"name":"e","channel":"c","data":"x"}"#;
    let params = api.sign("POST", path, &[], body);
    assert_error(
        &api.raw("POST", &format!("{path}?{}", query(&params)), body)
            .await,
        404,
        "no-such-app",
    );
    assert_error(
        &api.raw("GET", "/nothing/here", "").await,
        404,
        "/nothing/here",
    );
}

#[tokio::test]
async fn invalid_triggers_are_4xx_with_the_reason() {
    let cluster = Cluster::start("invalid_triggers_are_4xx_with_the_reason", 1, &[]).await;
    let api = cluster.api();
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "Invalid JSON"),
        (r#"["an","array"]"#.into(), 400, "Invalid JSON"),
        (
            json!({"channel": "c", "data": "x"}).to_string(),
            400,
            "name",
        ),
        (
            json!({"name": "e", "channel": "c"}).to_string(),
            400,
            "data",
        ),
        (
            json!({"name": "e", "data": "x"}).to_string(),
            400,
            "channels",
        ),
        (
            json!({"name": "e", "channels": [], "data": "x"}).to_string(),
            400,
            "channels",
        ),
        (
            json!({"name": "e", "channels": many, "data": "x"}).to_string(),
            400,
            "Too many channels",
        ),
        (
            json!({"name": "e", "channel": "bad name", "data": "x"}).to_string(),
            400,
            "channel name",
        ),
        (
            json!({"name": "", "channel": "c", "data": "x"}).to_string(),
            400,
            "event name",
        ),
        (
            json!({"name": "pusher_internal:member_added", "channel": "c", "data": "x"})
                .to_string(),
            400,
            "reserved",
        ),
        (
            json!({"name": "pusher:error", "channel": "c", "data": "x"}).to_string(),
            400,
            "reserved",
        ),
        (
            json!({"name": "e".repeat(201), "channel": "c", "data": "x"}).to_string(),
            400,
            "event name",
        ),
        (
            json!({"name": "e", "channel": "c", "data": "x", "socket_id": "abc"}).to_string(),
            400,
            "socket_id",
        ),
        (
            json!({"name": "e", "channel": "c", "data": "x", "info": "user_count"}).to_string(),
            400,
            "presence",
        ),
        (
            json!({"name": "e", "channel": "c", "data": "x", "info": "nonsense"}).to_string(),
            400,
            "nonsense",
        ),
        (
            json!({"name": "e", "channel": "c", "data": "x".repeat(10 * 1024 + 1)}).to_string(),
            413,
            "limit is 10240",
        ),
    ];
    for (body, status, needle) in cases {
        let reply = trigger_raw(&api, &body).await;
        assert_eq!(reply.status, status, "{body:.80} → {:?}", reply.body);
        assert_error(&reply, status, needle);
    }
    // Exactly at the limit is fine, and the hub still delivers.
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe("c").await;
    let data = "x".repeat(10 * 1024);
    let reply = api
        .trigger(json!({"name": "e", "channel": "c", "data": data}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(client.next_event().await["data"], Value::String(data));
}

#[tokio::test]
async fn batches_are_bounded_and_answered_in_order() {
    let cluster = Cluster::start("batches_are_bounded_and_answered_in_order", 1, &[]).await;
    let api = cluster.api();
    let event = |i: usize| json!({"name": "e", "channel": "c", "data": i.to_string()});
    let too_many: Vec<Value> = (0..11).map(event).collect();
    let reply = api
        .signed(
            "POST",
            "batch_events",
            &[],
            &json!({"batch": too_many}).to_string(),
        )
        .await;
    assert_error(&reply, 400, "Batch too large");
    let reply = api
        .signed("POST", "batch_events", &[], r#"{"nothing":1}"#)
        .await;
    assert_error(&reply, 400, "batch");
    let invalid = json!({"batch": [event(0), {"name": "e", "channel": "bad name", "data": "x"}]});
    let reply = api
        .signed("POST", "batch_events", &[], &invalid.to_string())
        .await;
    assert_error(&reply, 400, "channel name");

    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe("c").await;
    let mut batch: Vec<Value> = (0..10).map(event).collect();
    batch[3]["info"] = json!("subscription_count");
    let reply = api
        .signed(
            "POST",
            "batch_events",
            &[],
            &json!({"batch": batch}).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let mut expected = vec![json!({}); 10];
    expected[3] = json!({"subscription_count": 1});
    assert_eq!(reply.body, json!({"batch": expected}));
    for i in 0..10 {
        assert_eq!(
            client.next_event().await["data"],
            i.to_string(),
            "batch events arrive in order"
        );
    }
    let plain: Vec<Value> = (0..2).map(event).collect();
    let reply = api
        .signed(
            "POST",
            "batch_events",
            &[],
            &json!({"batch": plain}).to_string(),
        )
        .await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
}

#[tokio::test]
async fn oversized_bodies_are_413_and_channel_queries_validate() {
    let cluster = Cluster::start(
        "oversized_bodies_are_413_and_channel_queries_validate",
        1,
        &[],
    )
    .await;
    let api = cluster.api();
    let huge = json!({"name": "e", "channel": "c", "data": "x".repeat(300 * 1024)}).to_string();
    assert_error(&trigger_raw(&api, &huge).await, 413, "too large");
    assert_error(
        &api.get("channels/bad%20name", &[]).await,
        400,
        "channel name",
    );
    assert_error(
        &api.get("channels/c", &[("info", "user_count")]).await,
        400,
        "presence",
    );
    assert_error(
        &api.get("channels", &[("info", "user_count")]).await,
        400,
        "presence-",
    );
    assert_error(
        &api.get("channels/c/users", &[]).await,
        400,
        "not a presence channel",
    );
    assert_eq!(api.get("channels", &[]).await.status, 200);
}

#[tokio::test]
async fn post_bodies_must_be_declared_as_json() {
    let cluster = Cluster::start("post_bodies_must_be_declared_as_json", 1, &[]).await;
    let api = cluster.api();
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    client.subscribe("c").await;
    let event = |data: &str| json!({"name": "e", "channel": "c", "data": data}).to_string();
    let batch = json!({"batch": [{"name": "e", "channel": "c", "data": "in a batch"}]}).to_string();

    // Every POST with a body: a body declared as anything but JSON is 415.
    for (path, body) in [
        ("events", event("refused")),
        ("batch_events", batch),
        ("users/u1/terminate_connections", "{}".to_string()),
    ] {
        for declared in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
        ] {
            let reply = api
                .signed_as("POST", path, &[], &body, Some(declared))
                .await;
            assert_error(&reply, 415, declared);
            assert_error(&reply, 415, "application/json");
        }
    }

    // What the npm, PyPI and PHP (Laravel's) SDKs send, with a charset, in another case, and
    // no Content-Type at all (taken as JSON; docs/protocol-errors.md): accepted and delivered.
    let accepted = [
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("Application/JSON"),
        None,
    ];
    for (index, declared) in accepted.iter().enumerate() {
        let data = index.to_string();
        let reply = api
            .signed_as("POST", "events", &[], &event(&data), *declared)
            .await;
        assert_eq!(
            (reply.status, &reply.body),
            (200, &json!({})),
            "{declared:?}"
        );
        // The refused events went to the same channel first: had one been delivered, it
        // would come before this.
        assert_eq!(client.next_event().await["data"], data, "{declared:?}");
    }
    // A JSON-less body without a Content-Type is still checked as JSON.
    let reply = api
        .signed_as("POST", "events", &[], "name=e&channel=c", None)
        .await;
    assert_error(&reply, 400, "Invalid JSON");
}
