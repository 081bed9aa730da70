//! Apps in a database (`app_store.url`), in PostgreSQL and in MariaDB: `herald apps` adds,
//! changes, disables, removes and rotates apps while a region (2 hubs, 3 edges, a real
//! redis-server) runs, and every hub and edge follows within 5 s; real pusher-js connects with
//! the new key and the Python and npm SDKs trigger with the new secret; the old secret is
//! accepted during its grace period and refused after it; bad rows are reported and skipped; a
//! store down at start is a clear error, one down later leaves the apps serving and `/up` says
//! so. Each test makes its own database and drops it.

use std::time::{Duration, Instant};

use herald_shared::auth::channel::{channel_string_to_sign, sign};
use herald_tests::api::Api;
use herald_tests::client::{self, PusherClient};
use herald_tests::compat::{JsClient, Launch, Server, node_sdk, python_sdk};
use herald_tests::databases::{Kind, TcpRelay, TestDatabase};
use herald_tests::eventually::eventually;
use herald_tests::process::HeraldProcess;
use herald_tests::topology::{APP_ID, APP_KEY, APP_SECRET, Edge, HUB_APP_ARGS, Region};
use serde_json::{Value, json};

/// What the issue promises: a change reaches every hub and edge within this.
const PICK_UP: Duration = Duration::from_secs(5);

/// Runs `herald apps --json ARGS` against `url`; returns its JSON line.
async fn apps(url: &str, args: &[&str]) -> Value {
    let mut all = vec!["apps", "--app-store-url", url, "--json"];
    all.extend_from_slice(args);
    let output = herald_tests::dev::herald(&all, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "herald {all:?}: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{stdout:?}: {e}"))
}

/// How a connection to `key` on `edge` starts: `connected`, or `error <code>`.
async fn connect_outcome(edge: &Edge, key: &str) -> String {
    let url = format!(
        "ws://{}/app/{key}?protocol=7&client=herald-tests&version=1",
        edge.websocket
    );
    let mut ws = client::open(&url).await;
    let first = client::next_json(&mut ws).await;
    match first["event"].as_str() {
        Some("pusher:connection_established") => "connected".to_string(),
        _ => format!("error {}", first["data"]["code"]),
    }
}

/// Waits until a connection to `key` starts as `expected` on every edge.
async fn on_every_edge(region: &Region, key: &str, expected: &str) {
    eventually(
        &format!("{key} to be {expected} on every edge"),
        PICK_UP,
        async || {
            let mut outcomes = Vec::new();
            for edge in &region.edges {
                outcomes.push(connect_outcome(edge, key).await);
            }
            outcomes
        },
        |outcomes| outcomes.iter().all(|o| o == expected),
    )
    .await
    .unwrap();
}

/// Waits until triggering as (id, key, secret) answers `status` on every hub.
async fn on_every_hub(region: &Region, app: (&str, &str, &str), data: &str, status: u16) {
    eventually(
        &format!("a trigger as {app:?} to answer {status} on every hub"),
        PICK_UP,
        async || {
            let mut statuses = Vec::new();
            for hub in &region.hubs {
                let api = Api::for_app(&hub.http, app.0, app.1, app.2);
                let reply = api
                    .trigger(json!({"name": "e", "channel": "probe", "data": data}))
                    .await;
                statuses.push(reply.status);
            }
            statuses
        },
        |statuses| statuses.iter().all(|s| *s == status),
    )
    .await
    .unwrap();
}

/// Subscribes a raw client of `key` to a private channel with an `auth` signed by `secret`;
/// returns the event answered.
async fn private_with(edge: &Edge, key: &str, secret: &str) -> String {
    let url = format!(
        "ws://{}/app/{key}?protocol=7&client=herald-tests&version=1",
        edge.websocket
    );
    let mut client = PusherClient::connect(&url).await;
    let channel = "private-rotation";
    let auth = sign(
        key,
        secret,
        &channel_string_to_sign(&client.socket_id, channel, None),
    );
    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
        .await;
    client.next_event().await["event"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn hub_up(region: &Region) -> Vec<(u16, Value)> {
    let mut ups = Vec::new();
    for hub in &region.hubs {
        let reply = Api::new(&hub.http).raw("GET", "/up", "").await;
        ups.push((reply.status, reply.body));
    }
    ups
}

async fn scenario(kind: Kind, test: &str) {
    let db = TestDatabase::create(kind);
    let relay = TcpRelay::start(kind.address()).await;
    let url = db.url_via(relay.address, None);
    let region = Region::start(test, 2, 3, &[("HERALD_APP_STORE__URL", &url)], &[]).await;
    // The file app keeps working beside the store.
    on_every_edge(&region, APP_KEY, "connected").await;

    // Added: every edge admits its key, every hub its signature.
    let started = Instant::now();
    let added = apps(&url, &["add", "--set", "max_event_data_bytes=1000"]).await;
    let id = added["id"].as_str().unwrap().to_string();
    let key = added["key"].as_str().unwrap().to_string();
    let secret = added["secret"].as_str().unwrap().to_string();
    on_every_edge(&region, &key, "connected").await;
    on_every_hub(&region, (&id, &key, &secret), "{}", 200).await;
    let added_in = started.elapsed();
    eprintln!("app store {kind:?}: an added app served everywhere after {added_in:?}");
    assert!(added_in < PICK_UP, "{added_in:?}");

    // Real clients: pusher-js with the new key (its authorizer signs with the new secret), and
    // both SDKs triggering with it through the other hub.
    let launch = Launch {
        app: Some((id.clone(), key.clone(), secret.clone())),
        ..Launch::default()
    };
    let mut browser =
        JsClient::connect_with(test, "pusher-js", &region.edges[2], &Value::Null, &launch).await;
    browser.subscribe("private-orders").await;
    let server = Server::for_app(&region.hubs[1].http, &id, &key, &secret);
    let python = python_sdk(
        test,
        &server,
        json!([{"op": "trigger", "channels": "private-orders", "event": "from-python", "data": "p"}]),
    )
    .await;
    assert_eq!(python[0], json!({"op": "trigger", "result": {}}));
    let node = node_sdk(
        test,
        &server,
        json!([{"op": "trigger", "channels": "private-orders", "event": "from-node", "data": "n"}]),
    )
    .await;
    assert_eq!(node[0]["status"], 200, "{node:?}");
    for event in ["from-python", "from-node"] {
        assert_eq!(browser.next_event().await["event"], event);
    }
    browser.close().await;

    // Changed: a setting on every hub, then the key on every edge.
    apps(&url, &["update", &id, "--set", "max_event_data_bytes=10"]).await;
    on_every_hub(&region, (&id, &key, &secret), "more than ten bytes", 413).await;
    let new_key = format!("{key}-2");
    apps(&url, &["update", &id, "--key", &new_key]).await;
    on_every_edge(&region, &new_key, "connected").await;
    on_every_edge(&region, &key, "error 4001").await;
    let key = new_key;

    // Rotated: the new secret works everywhere; the old one too until its grace ends. The
    // grace is timed from before the rotation (so it ends no later than the hubs' grace), and
    // the old secret is tried first: the SDK runs that follow take seconds on a busy machine.
    let grace = Duration::from_secs(10);
    let grace_ends = Instant::now() + grace;
    let rotated = apps(
        &url,
        &[
            "rotate-secret",
            &id,
            "--grace-secs",
            &grace.as_secs().to_string(),
        ],
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    on_every_hub(&region, (&id, &key, &new_secret), "{}", 200).await;
    for hub in &region.hubs {
        let old = Api::for_app(&hub.http, &id, &key, &secret)
            .trigger(json!({"name": "e", "channel": "c", "data": "{}"}))
            .await;
        assert_eq!(
            old.status, 200,
            "the old secret during its grace: {:?}",
            old.body
        );
    }
    for edge in &region.edges {
        eventually(
            "the new secret to sign channels on every edge",
            PICK_UP,
            async || private_with(edge, &key, &new_secret).await,
            |event| event == "pusher_internal:subscription_succeeded",
        )
        .await
        .unwrap();
        assert_eq!(
            private_with(edge, &key, &secret).await,
            "pusher_internal:subscription_succeeded",
            "the old secret signs channels during its grace"
        );
    }
    assert!(
        Instant::now() < grace_ends,
        "the grace checks ran within the grace period"
    );
    let server = Server::for_app(&region.hubs[0].http, &id, &key, &new_secret);
    let python = python_sdk(
        test,
        &server,
        json!([{"op": "trigger", "channels": "c", "event": "e", "data": "1"}]),
    )
    .await;
    assert_eq!(python[0], json!({"op": "trigger", "result": {}}));
    let node = node_sdk(
        test,
        &server,
        json!([{"op": "trigger", "channels": "c", "event": "e", "data": "1"}]),
    )
    .await;
    assert_eq!(node[0]["status"], 200, "{node:?}");
    // Past the grace (it began a little after `grace_ends` was taken), the old secret is refused
    // everywhere within the pick-up bound.
    tokio::time::sleep_until(grace_ends.into()).await;
    on_every_hub(&region, (&id, &key, &secret), "{}", 401).await;
    for edge in &region.edges {
        eventually(
            "the old secret to be refused for channels after its grace",
            PICK_UP,
            async || private_with(edge, &key, &secret).await,
            |event| event == "pusher:subscription_error",
        )
        .await
        .unwrap();
    }
    let server = Server::for_app(&region.hubs[1].http, &id, &key, &secret);
    let python = python_sdk(
        test,
        &server,
        json!([{"op": "trigger", "channels": "c", "event": "e", "data": "1"}]),
    )
    .await;
    assert!(python[0]["error"].is_string(), "{python:?}");
    let secret = new_secret;

    // A bad row is reported and skipped; the others keep serving.
    db.sql(
        "INSERT INTO herald_apps (id, app_key, secret, enabled, settings) VALUES ('bad id', 'k/ey', 'bad-row-secret', TRUE, '{\"max_connections\": 0}')",
    );
    for hub in &region.hubs {
        hub.process
            .wait_for_log(r#"app store row with id "bad id" is skipped"#, PICK_UP)
            .await;
        eventually(
            "the bad row to be counted",
            PICK_UP,
            async || Api::new(&hub.http).raw("GET", "/stats", "").await.body,
            |stats| stats["app_store"]["bad_rows"] == 1,
        )
        .await
        .unwrap();
    }
    on_every_edge(&region, &key, "connected").await;
    db.sql("DELETE FROM herald_apps WHERE id = 'bad id'");

    // Disabled, enabled, removed.
    apps(&url, &["update", &id, "--disable"]).await;
    on_every_edge(&region, &key, "error 4003").await;
    on_every_hub(&region, (&id, &key, &secret), "{}", 403).await;
    apps(&url, &["update", &id, "--enable"]).await;
    on_every_edge(&region, &key, "connected").await;
    apps(&url, &["remove", &id]).await;
    on_every_edge(&region, &key, "error 4001").await;
    on_every_hub(&region, (&id, &key, &secret), "{}", 404).await;

    // The store goes down: the apps read last keep serving, and /up says so (still 200).
    let kept = apps(&url, &["add", "--id", "777", "--key", "kept-key"]).await;
    let kept_secret = kept["secret"].as_str().unwrap().to_string();
    on_every_edge(&region, "kept-key", "connected").await;
    relay.cut();
    eventually(
        "/up to report the unreachable app store",
        Duration::from_secs(15),
        async || hub_up(&region).await,
        |ups| {
            ups.iter().all(|(status, body)| {
                *status == 200
                    && body["app_store"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("unreachable"))
            })
        },
    )
    .await
    .unwrap();
    on_every_edge(&region, "kept-key", "connected").await;
    on_every_hub(&region, ("777", "kept-key", &kept_secret), "{}", 200).await;
    on_every_hub(&region, (APP_ID, APP_KEY, APP_SECRET), "{}", 200).await;
    let stats = Api::new(&region.hubs[0].http)
        .raw("GET", "/stats", "")
        .await
        .body;
    assert!(stats["app_store"]["failures"].as_u64() > Some(0), "{stats}");
    assert_eq!(stats["app_store"]["reachable"], false, "{stats}");
    relay.restore();
    eventually(
        "/up to be plain OK again",
        Duration::from_secs(15),
        async || hub_up(&region).await,
        |ups| {
            ups.iter()
                .all(|(status, body)| *status == 200 && body == &json!({"health": "OK"}))
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn apps_in_postgresql_follow_every_change_across_a_region() {
    scenario(
        Kind::Postgres,
        "apps_in_postgresql_follow_every_change_across_a_region",
    )
    .await;
}

#[tokio::test]
async fn apps_in_mariadb_follow_every_change_across_a_region() {
    scenario(
        Kind::MariaDb,
        "apps_in_mariadb_follow_every_change_across_a_region",
    )
    .await;
}

/// `herald hub` with `env` and the test app; its exit code and stderr.
async fn hub_exit(test: &str, name: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut args = vec![
        "hub",
        "--http-listen",
        "127.0.0.1:0",
        "--link-listen",
        "127.0.0.1:0",
    ];
    args.extend(HUB_APP_ARGS);
    let mut hub = HeraldProcess::spawn(test, name, &args, env);
    let code = hub.exit_code(Duration::from_secs(30)).await;
    (code, hub.stderr())
}

#[tokio::test]
async fn a_store_down_at_start_or_clashing_with_a_file_app_is_a_clear_error() {
    let test = "a_store_down_at_start_or_clashing_with_a_file_app_is_a_clear_error";
    for kind in [Kind::Postgres, Kind::MariaDb] {
        let db = TestDatabase::create(kind);
        let relay = TcpRelay::start(kind.address()).await;
        relay.cut();
        let url = db.url_via(relay.address, Some("storepassQ7wE2rT9"));
        let (code, stderr) = hub_exit(
            test,
            &format!("down-{kind:?}"),
            &[("HERALD_APP_STORE__URL", &url)],
        )
        .await;
        assert_eq!(code, Some(69), "{stderr}");
        let scheme = match kind {
            Kind::Postgres => "postgres",
            Kind::MariaDb => "mysql",
        };
        let named = format!("app store {scheme}://{}/{}", relay.address, db.name);
        assert!(
            stderr.contains(&named) && stderr.contains("Herald needs its app store at start"),
            "{named}: {stderr}"
        );
        assert!(!stderr.contains("storepassQ7wE2rT9"), "{stderr}");

        // A store app with the file app's id: refused at start, naming both.
        relay.restore();
        apps(&url, &["add", "--id", APP_ID, "--key", "another-key"]).await;
        let (code, stderr) = hub_exit(
            test,
            &format!("clash-{kind:?}"),
            &[("HERALD_APP_STORE__URL", &url)],
        )
        .await;
        assert_eq!(code, Some(64), "{stderr}");
        assert!(
            stderr.contains(&format!("app_store row \"{APP_ID}\""))
                && stderr.contains("also a configured app's"),
            "{stderr}"
        );
    }
}
