//! Secrets never leave the process: a region with distinctive secrets runs a full scenario —
//! sign-ins, private and presence channels, triggers, refused requests, a refused edge, a Redis
//! restart, `/stats`, `/metrics`, configuration errors, `herald config` — and not one byte any
//! process wrote or any endpoint answered contains one of them. The admin token guards `/stats`
//! and `/metrics`.

use std::time::Duration;

use herald_shared::auth::channel::{channel_string_to_sign, sign, user_string_to_sign};
use herald_tests::api::Api;
use herald_tests::client::PusherClient;
use herald_tests::databases::{Kind, TcpRelay, TestDatabase};
use herald_tests::process::HeraldProcess;
use herald_tests::redis::RedisServer;
use herald_tests::topology::Hub;
use serde_json::{Value, json};

const APP_ID: &str = "777001";
const APP_KEY: &str = "leak-test-key";
const APP_SECRET: &str = "appsecretQ7wK2mZ9xV4";
const CLUSTER_KEY: &str = "clusterkeyR8nT3pL6yH1";
const REDIS_PASSWORD: &str = "redispassJ5cF8dS2gB7";
const ADMIN_TOKEN: &str = "admintokenM4vX9kW1qE6";
const DB_PASSWORD: &str = "dbpassK3sV8nQ2zL5";
const SECRETS: [&str; 5] = [
    APP_SECRET,
    CLUSTER_KEY,
    REDIS_PASSWORD,
    ADMIN_TOKEN,
    DB_PASSWORD,
];

/// Fails naming the secret and where it was seen.
fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}

fn common_env(redis: &str, app_store: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HERALD_APP_STORE__URL", app_store.to_string()),
        // Everything, at debug, from every crate: the strictest place to look.
        ("HERALD_LOG", "debug".to_string()),
        ("HERALD_CLUSTER__KEY", CLUSTER_KEY.to_string()),
        ("HERALD_ADMIN__TOKEN", ADMIN_TOKEN.to_string()),
        ("HERALD_REDIS__URL", redis.to_string()),
        ("REVERB_APP_ID", APP_ID.to_string()),
        ("REVERB_APP_KEY", APP_KEY.to_string()),
        ("REVERB_APP_SECRET", APP_SECRET.to_string()),
    ]
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn start_hub(test: &str, name: &str, env: &[(&'static str, String)]) -> Hub {
    Hub::start_from_env(test, name, &refs(env)).await
}

async fn start_edge(test: &str, name: &str, hub: &Hub, cluster_key: &str) -> HeraldProcess {
    let mut args = hub.edge_args(cluster_key);
    args.push("--ready-json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [
        ("HERALD_LOG", "debug"),
        ("HERALD_ADMIN__TOKEN", ADMIN_TOKEN),
    ];
    if cluster_key == CLUSTER_KEY {
        HeraldProcess::start(test, name, &args, &env).await
    } else {
        HeraldProcess::spawn(test, name, &args, &env)
    }
}

/// A GET with a bearer token (or none); the status and body.
async fn admin_get(address: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("http://{address}{path}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("the admin endpoint answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a readable body"))
}

async fn subscribe(client: &mut PusherClient, channel: &str, data: Option<&str>) -> Value {
    let auth = sign(
        APP_KEY,
        APP_SECRET,
        &channel_string_to_sign(&client.socket_id, channel, data),
    );
    let mut message =
        json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}});
    if let Some(data) = data {
        message["data"]["channel_data"] = json!(data);
    }
    client.send(message).await;
    client.next_event().await
}

#[tokio::test]
async fn no_secret_appears_in_any_output() {
    let test = "no_secret_appears_in_any_output";
    let mut redis = RedisServer::start_with(&["--requirepass", REDIS_PASSWORD]).await;
    let redis_url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}/0", redis.port);
    // An app store whose URL holds a password (PostgreSQL's trust authentication ignores it),
    // behind a relay the test cuts to make the store fail at start and later.
    let db = TestDatabase::create(Kind::Postgres);
    let relay = TcpRelay::start(Kind::Postgres.address()).await;
    let store_url = db.url_via(relay.address, Some(DB_PASSWORD));
    let env = common_env(&redis_url, &store_url);
    let hub_a = start_hub(test, "hub-a", &env).await;
    let hub_b = start_hub(test, "hub-b", &env).await;
    let edge_a = start_edge(test, "edge-a", &hub_a, CLUSTER_KEY).await;
    let edge_b = start_edge(test, "edge-b", &hub_b, CLUSTER_KEY).await;
    let mut seen = Vec::new();

    // Clients on both edges: private and presence channels, a sign-in, triggers from both hubs.
    let url = |edge: &HeraldProcess| {
        format!(
            "ws://{}/app/{APP_KEY}?protocol=7&client=js&version=8",
            edge.ready_field("websocket")
        )
    };
    let mut alice = PusherClient::connect(&url(&edge_a)).await;
    let mut bob = PusherClient::connect(&url(&edge_b)).await;
    let member = json!({"user_id": "alice", "user_info": {"name": "Alice"}}).to_string();
    let joined = subscribe(&mut alice, "presence-room", Some(&member)).await;
    assert_eq!(
        joined["event"], "pusher_internal:subscription_succeeded",
        "{joined}"
    );
    let joined = subscribe(&mut bob, "private-orders", None).await;
    assert_eq!(
        joined["event"], "pusher_internal:subscription_succeeded",
        "{joined}"
    );
    let user = json!({"id": "bob", "user_info": {}}).to_string();
    let auth = sign(
        APP_KEY,
        APP_SECRET,
        &user_string_to_sign(&bob.socket_id, &user),
    );
    bob.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user}}))
        .await;
    assert_eq!(bob.next_event().await["event"], "pusher:signin_success");
    // A wrong signature: refused, and the refusal must not echo the expected one.
    let forged = json!({"event": "pusher:subscribe", "data": {"channel": "private-x", "auth": format!("{APP_KEY}:00")}});
    bob.send(forged).await;
    seen.push((
        "a refused subscription".into(),
        bob.next_event().await.to_string(),
    ));

    let api_a = Api::for_app(&hub_a.http.clone(), APP_ID, APP_KEY, APP_SECRET);
    let api_b = Api::for_app(&hub_b.http.clone(), APP_ID, APP_KEY, APP_SECRET);
    let sent = api_a
        .trigger(json!({"name": "paid", "channel": "private-orders", "data": "{}"}))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert_eq!(bob.next_event().await["event"], "paid");
    let users = api_b.get("channels/presence-room/users", &[]).await;
    assert_eq!(users.status, 200, "{:?}", users.body);
    seen.push(("users".into(), users.body.to_string()));
    // Refused API calls: a wrong secret, a bad body.
    let wrong = Api::for_app(&hub_a.http.clone(), APP_ID, APP_KEY, "not-the-secret");
    let refused = wrong
        .trigger(json!({"name": "x", "channel": "c", "data": "{}"}))
        .await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    seen.push(("a refused trigger".into(), refused.body.to_string()));
    let bad = api_a.signed("POST", "events", &[], "{not json").await;
    seen.push(("a bad body".into(), bad.body.to_string()));

    // An edge with the wrong cluster key is refused by the hub.
    let intruder = start_edge(test, "intruder", &hub_a, "wrongclusterkey0000").await;
    hub_a
        .process
        .wait_for_log("Edge refused.", Duration::from_secs(20))
        .await;

    // `herald apps`, and the app store going away: at a hub's start, and under running hubs.
    for args in [vec!["list"], vec!["list", "--json"], vec!["remove", "nope"]] {
        let mut all = vec!["apps", "--app-store-url", store_url.as_str()];
        all.extend(args);
        let output = herald_tests::dev::herald(&all, Duration::from_secs(20)).await;
        seen.push((
            format!("herald {}", all.join(" ")),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ));
    }
    relay.cut();
    let mut storeless = HeraldProcess::spawn(test, "store-down-at-start", &["hub"], &refs(&env));
    assert_eq!(storeless.exit_code(Duration::from_secs(30)).await, Some(69));
    seen.push(("a hub whose store is down".into(), storeless.stderr()));
    hub_a
        .process
        .wait_for_log("App store unreachable", Duration::from_secs(20))
        .await;
    let (_, up) = admin_get(&hub_a.http, "/up", None).await;
    assert!(up.contains("unreachable"), "{up}");
    seen.push(("/up with the store down".into(), up));
    let (_, stats) = admin_get(&hub_a.http, "/stats", Some(ADMIN_TOKEN)).await;
    seen.push(("/stats with the store down".into(), stats));
    relay.restore();
    hub_a
        .process
        .wait_for_log("App store reachable again", Duration::from_secs(20))
        .await;

    // Redis goes away and comes back: reconnection errors are logged.
    redis.kill().await;
    hub_a
        .process
        .wait_for_log("Redis pub/sub connection lost.", Duration::from_secs(20))
        .await;
    redis.restart().await;

    // The admin endpoints: the token is needed even on loopback once it is set.
    for (name, address) in [
        ("hub-a", hub_a.http.clone()),
        ("edge-a", edge_a.ready_field("admin")),
    ] {
        for path in ["/stats", "/metrics"] {
            let (status, body) = admin_get(&address, path, None).await;
            assert_eq!(status, 401, "{name}{path} without the token: {body}");
            seen.push((format!("{name}{path} without the token"), body));
            let (status, body) = admin_get(&address, path, Some("wrong-token-000000")).await;
            assert_eq!(status, 401, "{name}{path} with a wrong token: {body}");
            seen.push((format!("{name}{path} with a wrong token"), body));
            let (status, body) = admin_get(&address, path, Some(ADMIN_TOKEN)).await;
            assert_eq!(status, 200, "{name}{path} with the token: {body}");
            seen.push((format!("{name}{path}"), body));
        }
        let (status, body) = admin_get(&address, "/up", None).await;
        assert_ne!(status, 401, "/up needs no token: {body}");
    }

    // Configuration errors about secret-bearing keys, and `herald config`.
    let broken = format!("redis://:{REDIS_PASSWORD}@[not-a-host");
    let mut bad_config = HeraldProcess::spawn(
        test,
        "bad-config",
        &["hub"],
        &[
            ("HERALD_REDIS__URL", broken.as_str()),
            ("HERALD_CLUSTER__KEY", CLUSTER_KEY),
            ("REVERB_APP_ID", APP_ID),
            ("REVERB_APP_KEY", APP_KEY),
            ("REVERB_APP_SECRET", APP_SECRET),
            ("HERALD_ADMIN__TOKEN", "short"),
        ],
    );
    assert_eq!(
        bad_config.exit_code(Duration::from_secs(20)).await,
        Some(64)
    );
    seen.push(("a configuration error".into(), bad_config.stderr()));
    for args in [["config", "env"], ["config", "markdown"]] {
        let output = herald_tests::dev::herald(&args, Duration::from_secs(20)).await;
        seen.push((
            format!("herald {}", args.join(" ")),
            String::from_utf8_lossy(&output.stdout).to_string(),
        ));
    }

    // Stop everything gracefully, so shutdown logs are in too; then look at every byte.
    drop(alice);
    drop(bob);
    let mut processes = vec![edge_a, edge_b, intruder, hub_a.process, hub_b.process];
    for process in &processes {
        process.terminate();
    }
    for process in &mut processes {
        process.exit_code(Duration::from_secs(40)).await;
        seen.push((format!("{} stderr", process.name()), process.stderr()));
        seen.push((
            format!("{} ready line", process.name()),
            process.ready.to_string(),
        ));
    }
    for (what, text) in &seen {
        assert_clean(what, text);
    }
    // The scan looked at real output, not at nothing.
    let logged: usize = seen.iter().map(|(_, text)| text.len()).sum();
    assert!(logged > 10_000, "only {logged} bytes were written");
}

#[tokio::test]
async fn stats_and_metrics_beyond_loopback_need_the_admin_token() {
    let test = "stats_and_metrics_beyond_loopback_need_the_admin_token";
    let hub = Hub::start(test, "hub", &[]).await;
    let mut args = hub.edge_args(herald_tests::topology::CLUSTER_KEY);
    let admin = args
        .iter()
        .position(|arg| arg == "--admin-listen")
        .expect("edges get an admin address");
    args[admin + 1] = "0.0.0.0:0".into();
    args.push("--ready-json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Bound on every address, no token: closed, and it says how to open it.
    let open = HeraldProcess::start(test, "no-token", &args, &[]).await;
    let port = open
        .ready_field("admin")
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    let address = format!("127.0.0.1:{port}");
    for path in ["/stats", "/metrics"] {
        let (status, body) = admin_get(&address, path, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("set admin.token"), "{path}: {body}");
    }
    let (status, body) = admin_get(&address, "/up", None).await;
    assert_eq!(status, 200, "/up: {body}");
    open.wait_for_log("admin.token is not set", Duration::from_secs(5))
        .await;

    // With a token: only with it.
    let guarded = HeraldProcess::start(
        test,
        "token",
        &args,
        &[("HERALD_ADMIN__TOKEN", ADMIN_TOKEN)],
    )
    .await;
    let port = guarded
        .ready_field("admin")
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    let address = format!("127.0.0.1:{port}");
    let (status, _) = admin_get(&address, "/stats", None).await;
    assert_eq!(status, 401);
    let (status, body) = admin_get(&address, "/stats", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"role\":\"edge\""), "{body}");
}
