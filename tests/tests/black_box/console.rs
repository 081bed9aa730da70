//! The debug console (`/console` on the hub's HTTP port) in a real headless Chromium
//! (`tests/compat/console.mjs`, playwright-core with Debian's chromium): sign in with the app's
//! key and secret, watch a pusher-js client's channel and connection appear, trigger from the
//! form and see pusher-js receive it. A screenshot is saved as `target/console.png`.
//! Without sign-in every console route answers 401, and no answer carries the app secret.
//!
//! In a region (2 hubs, 3 edges) the console signed in on one hub shows the whole region: a
//! client behind an edge of the other hub, its channel, and what happens on the other hub (its
//! edge's subscription, an API trigger sent to it); `target/console-region.png`.

use std::process::Stdio;
use std::time::Duration;

use herald_tests::api::Api;
use herald_tests::binary::target_dir;
use herald_tests::compat::{JsClient, node_modules};
use herald_tests::eventually::eventually;
use herald_tests::topology::{APP_KEY, APP_SECRET, Cluster, Region};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The browser script's answers may take this long (a cold Chromium start included).
const STEP: Duration = Duration::from_secs(60);

struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    async fn start(test: &str, url: &str) -> Self {
        let dir = node_modules().await;
        let logs = target_dir().join("test-logs").join(test);
        std::fs::create_dir_all(&logs).expect("the log directory can be created");
        let profile = logs.join("chromium-profile");
        let _ = std::fs::remove_dir_all(&profile);
        let options = json!({"url": url, "key": APP_KEY, "secret": APP_SECRET, "profile": profile});
        let mut child = Command::new("node")
            .arg(dir.join("console.mjs"))
            .arg(options.to_string())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(logs.join("chromium.log")).expect("a log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("node can be started");
        let stdin = child.stdin.take().expect("stdin is piped");
        let lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        Self {
            child,
            stdin,
            lines,
        }
    }

    async fn next(&mut self, what: &str) -> Value {
        let line = tokio::time::timeout(STEP, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser script answers {what} within {STEP:?}"))
            .expect("the browser script's stdout is readable")
            .unwrap_or_else(|| panic!("the browser script ended before answering {what} (see target/test-logs/.../chromium.log)"));
        let value: Value = serde_json::from_str(&line).expect("the script prints JSON lines");
        assert_ne!(
            value["type"], "error",
            "browser step {what} failed: {value}"
        );
        value
    }

    async fn run(&mut self, command: Value) -> Value {
        let what = command["op"].as_str().unwrap_or("?").to_string();
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("the browser script reads commands");
        self.next(&what).await
    }
}

#[tokio::test]
async fn the_console_shows_a_live_app_and_triggers_in_chromium() {
    let test = "the_console_shows_a_live_app_and_triggers_in_chromium";
    let cluster = Cluster::start(test, 1, &[]).await;
    let http = &cluster.hub.http;
    let url = format!("http://{http}/console");

    // Without sign-in: 401 everywhere.
    let anonymous = Api::new(http);
    for (method, path) in [
        ("GET", "/console"),
        ("GET", "/console/api/state"),
        ("GET", "/console/api/events"),
        ("POST", "/console/api/trigger"),
    ] {
        assert_eq!(
            anonymous.raw(method, path, "{}").await.status,
            401,
            "{method} {path}"
        );
    }
    let wrong = anonymous
        .raw(
            "POST",
            "/console/session",
            &json!({"key": APP_KEY, "secret": "not-the-secret"}).to_string(),
        )
        .await;
    assert_eq!(wrong.status, 401, "{:?}", wrong.body);

    let mut browser = Browser::start(test, &url).await;
    let loaded = browser.next("loaded").await;
    assert_eq!(loaded["status"], 401, "the page before sign-in: {loaded}");
    let signed_in = browser.run(json!({"op": "signin"})).await;
    assert!(
        signed_in["app"]
            .as_str()
            .unwrap_or_default()
            .contains(APP_KEY),
        "{signed_in}"
    );

    // A pusher-js client subscribes: the console shows its channel and its connection.
    let mut client = JsClient::connect(test, "pusher-js", &cluster.edges[0]).await;
    client.subscribe("console-room").await;
    let row = browser
        .run(json!({"op": "channel", "channel": "console-room", "subscribers": 1}))
        .await;
    assert_eq!(row["cells"][0], "console-room", "{row}");
    browser.run(json!({"op": "edges", "connections": 1})).await;
    browser
        .run(json!({"op": "log", "type": "subscribers"}))
        .await;

    // The form triggers; pusher-js receives it.
    let triggered = browser
        .run(json!({"op": "trigger", "channel": "console-room", "event": "from-console", "data": "{\"hello\":\"browser\"}"}))
        .await;
    assert_eq!(triggered["error"], "", "{triggered}");
    let event = client.next_event().await;
    assert_eq!(
        (&event["channel"], &event["event"], &event["data"]),
        (
            &json!("console-room"),
            &json!("from-console"),
            &json!({"hello": "browser"})
        ),
        "{event}"
    );

    let screenshot = target_dir().join("console.png");
    browser
        .run(json!({"op": "screenshot", "path": screenshot}))
        .await;
    assert!(screenshot.exists());
    eprintln!("screenshot: {}", screenshot.display());
    let html = browser.run(json!({"op": "html"})).await;
    assert!(
        !html["html"]
            .as_str()
            .unwrap_or_default()
            .contains(APP_SECRET),
        "the page shows the app secret"
    );
    let _ = browser.child.kill().await;
    client.close().await;
}

#[tokio::test]
async fn the_console_shows_the_whole_region_in_chromium() {
    let test = "the_console_shows_the_whole_region_in_chromium";
    let region = Region::start(test, 2, 3, &[], &[]).await;
    let (hub_a, hub_b) = (&region.hubs[0], &region.hubs[1]);
    // An edge linked to hub B (edge i prefers hub i % 2).
    let edge_b = eventually(
        "an edge linked to hub B",
        STEP,
        async || {
            for edge in &region.edges {
                if edge.linked_hub().await.as_deref() == Some(hub_b.hub_id.as_str()) {
                    return Some(edge);
                }
            }
            None
        },
        Option::is_some,
    )
    .await
    .unwrap_or_else(|unmet| panic!("waited {:?} for {}", unmet.waited, unmet.what))
    .expect("found");

    // Signed in on hub A, its event stream open.
    let mut browser = Browser::start(test, &format!("http://{}/console", hub_a.http)).await;
    browser.next("loaded").await;
    browser.run(json!({"op": "signin"})).await;

    // A pusher-js client behind hub B: hub A's console shows its edge, connection and channel.
    let mut client = JsClient::connect(test, "pusher-js", edge_b).await;
    client.subscribe("region-room").await;
    let row = browser
        .run(json!({"op": "channel", "channel": "region-room", "subscribers": 1}))
        .await;
    assert_eq!(row["cells"][0], "region-room", "{row}");
    let edges = browser
        .run(json!({"op": "edges", "connections": 1, "hub": hub_b.hub_id}))
        .await;
    assert_eq!(
        edges["rows"],
        region.edges.len(),
        "every edge of the region is listed: {edges}"
    );
    browser
        .run(
            json!({"op": "log", "type": "subscribers", "hub": hub_b.hub_id, "text": "region-room"}),
        )
        .await;

    // An API trigger sent to hub B appears in hub A's event log; the client receives it.
    let reply = hub_b
        .api()
        .trigger(json!({"name": "from-hub-b", "channel": "region-room", "data": "{\"via\":\"b\"}"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    browser
        .run(json!({"op": "log", "type": "trigger", "hub": hub_b.hub_id, "text": "from-hub-b"}))
        .await;
    let event = client.next_event().await;
    assert_eq!(event["event"], "from-hub-b", "{event}");

    // The form on hub A triggers; the client behind hub B receives it.
    let triggered = browser
        .run(json!({"op": "trigger", "channel": "region-room", "event": "from-console", "data": "{\"hello\":\"region\"}"}))
        .await;
    assert_eq!(triggered["error"], "", "{triggered}");
    let event = client.next_event().await;
    assert_eq!(
        (&event["channel"], &event["event"], &event["data"]),
        (
            &json!("region-room"),
            &json!("from-console"),
            &json!({"hello": "region"})
        ),
        "{event}"
    );

    let screenshot = target_dir().join("console-region.png");
    browser
        .run(json!({"op": "screenshot", "path": screenshot}))
        .await;
    eprintln!("screenshot: {}", screenshot.display());
    let _ = browser.child.kill().await;
    client.close().await;
}
