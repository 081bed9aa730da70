//! `herald dev`, the README's first command: one process, a default app, ready for clients.

use herald_tests::api::Api;
use herald_tests::client::PusherClient;
use herald_tests::compat::{Server, python_sdk};
use herald_tests::dev::Dev;
use herald_tests::process::HeraldProcess;
use serde_json::json;

#[tokio::test]
async fn herald_dev_serves_its_default_app() {
    let dev = Dev::start("herald_dev_serves_its_default_app").await;
    let app = &dev.process.ready["app"];
    let (id, key, secret) = (
        app["id"].as_str().unwrap(),
        app["key"].as_str().unwrap(),
        app["secret"].as_str().unwrap(),
    );
    dev.process
        .wait_for_log(
            "BROADCAST_CONNECTION=reverb",
            std::time::Duration::from_secs(5),
        )
        .await;

    let url = format!("ws://{}/app/{key}?protocol=7", dev.websocket);
    let mut client = PusherClient::connect(&url).await;
    client.subscribe("test").await;
    let api = Api::for_app(&dev.http, id, key, secret);
    let reply = api
        .trigger(json!({"name": "hello", "channel": "test", "data": "{\"message\":\"hi\"}"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        client.next_event().await,
        json!({"event": "hello", "channel": "test", "data": "{\"message\":\"hi\"}"})
    );

    // The README's credentials work unchanged with the official SDKs; the Python one refuses
    // an app id that is not numeric.
    let sdk = Server::for_app(&dev.http, id, key, secret);
    let results = python_sdk(
        "herald_dev_serves_its_default_app",
        &sdk,
        json!([{"op": "trigger", "channels": "test", "event": "from-python", "data": "py"}]),
    )
    .await;
    assert_eq!(results, vec![json!({"op": "trigger", "result": {}})]);
    assert_eq!(
        client.next_event().await,
        json!({"event": "from-python", "channel": "test", "data": "py"})
    );

    let health = Api::new(&dev.process.ready_field("admin"))
        .raw("GET", "/up", "")
        .await;
    assert_eq!((health.status, health.body), (200, json!({"health": "OK"})));
}

#[tokio::test]
async fn reverb_environment_names_configure_the_app() {
    let args = [
        "dev",
        "--ready-json",
        "--admin-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    let env = [
        ("REVERB_APP_ID", "reverb-id"),
        ("REVERB_APP_KEY", "reverb-key"),
        ("REVERB_APP_SECRET", "reverb-secret"),
        ("REVERB_SERVER_HOST", "127.0.0.1"),
        ("REVERB_SERVER_PORT", "0"),
    ];
    let dev = HeraldProcess::start(
        "reverb_environment_names_configure_the_app",
        "dev",
        &args,
        &env,
    )
    .await;
    assert_eq!(
        dev.ready["app"],
        json!({"id": "reverb-id", "key": "reverb-key", "secret": "reverb-secret"})
    );
    let url = format!(
        "ws://{}/app/reverb-key?protocol=7",
        dev.ready_field("websocket")
    );
    PusherClient::connect(&url)
        .await
        .subscribe("from-env")
        .await;
}

#[tokio::test]
async fn one_app_setting_in_the_environment_applies_to_the_default_app() {
    let test = "one_app_setting_in_the_environment_applies_to_the_default_app";
    let small =
        Dev::start_with_env(test, "small", &[("HERALD_APP__MAX_EVENT_DATA_BYTES", "16")]).await;
    let app = &small.process.ready["app"];
    let api = Api::for_app(
        &small.http,
        app["id"].as_str().unwrap(),
        app["key"].as_str().unwrap(),
        app["secret"].as_str().unwrap(),
    );
    let fits = api
        .trigger(json!({"name": "e", "channel": "c", "data": "0123456789abcdef"}))
        .await;
    assert_eq!(fits.status, 200, "{:?}", fits.body);
    let too_big = api
        .trigger(json!({"name": "e", "channel": "c", "data": "0123456789abcdefX"}))
        .await;
    assert_eq!(too_big.status, 413, "{:?}", too_big.body);

    let disabled = Dev::start_with_env(test, "disabled", &[("HERALD_APP__ENABLED", "false")]).await;
    let key = disabled.process.ready["app"]["key"].as_str().unwrap();
    let url = format!("ws://{}/app/{key}?protocol=7", disabled.websocket);
    let mut ws = herald_tests::client::open(&url).await;
    let error = herald_tests::client::next_json(&mut ws).await;
    assert_eq!(error["event"], "pusher:error", "{error}");
    assert_eq!(error["data"]["code"], 4003, "{error}");
    assert_eq!(
        herald_tests::client::expect_close(&mut ws).await,
        Some(4003)
    );
}
