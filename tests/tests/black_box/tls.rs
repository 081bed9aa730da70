//! TLS on every listener: `wss://` at the edge and `https://` at the hub with certificates from a
//! CA made in the test, used by pusher-js (`forceTLS`) and the SDKs (`useTLS`); certificates
//! renewed under open sockets; and the link verifying its hub by the name in `--hub`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use herald_tests::api::{Api, query};
use herald_tests::binary::target_dir;
use herald_tests::compat::{JsClient, Launch, node_sdk, python_sdk, server_on};
use herald_tests::process::HeraldProcess;
use herald_tests::tls::{TestCa, WssSocket};
use herald_tests::topology::{APP_KEY, CLUSTER_KEY, Edge, Hub, edge_base_args};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const NAMES: &[&str] = &["127.0.0.1", "localhost"];

fn cert_dir(test: &str) -> std::path::PathBuf {
    let dir = target_dir().join("test-logs").join(test).join("certs");
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `PREFIX_CERT` and `PREFIX_KEY` naming the files.
fn tls_env(prefix: &str, files: &herald_tests::tls::CertFiles) -> Vec<(String, String)> {
    vec![
        (format!("{prefix}_CERT"), files.cert.display().to_string()),
        (format!("{prefix}_KEY"), files.key.display().to_string()),
    ]
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn next_json(ws: &mut WssSocket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a readable frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

/// A signed trigger over HTTPS.
async fn trigger_https(ca: &TestCa, hub: &Hub, channel: &str, event: &str) -> u16 {
    let api = Api::new(&hub.http);
    let body = json!({"name": event, "channel": channel, "data": "{}"}).to_string();
    let path = format!("/apps/{}/events", herald_tests::topology::APP_ID);
    let params = api.sign("POST", &path, &[], &body);
    let reply = ca
        .request(
            &hub.http,
            "127.0.0.1",
            "POST",
            &format!("{path}?{}", query(&params)),
            &body,
        )
        .await;
    reply.status
}

/// A CA, and a hub (`https://`) and an edge (`wss://`) serving certificates it issued, each with
/// extra environment.
struct TlsCluster {
    ca: TestCa,
    hub: Hub,
    edge: Edge,
    edge_cert: herald_tests::tls::CertFiles,
}

impl TlsCluster {
    async fn start(test: &str, hub_extra: &[(&str, &str)], edge_extra: &[(&str, &str)]) -> Self {
        let ca = TestCa::new(&cert_dir(test));
        let hub_cert = ca.issue("hub", NAMES);
        let edge_cert = ca.issue("edge", NAMES);
        let hub_env = tls_env("HERALD_HUB__HTTP_TLS", &hub_cert);
        let mut env = env_refs(&hub_env);
        env.extend_from_slice(hub_extra);
        let hub = Hub::start(test, "hub", &env).await;
        let edge_env = tls_env("HERALD_EDGE__TLS", &edge_cert);
        let mut env = env_refs(&edge_env);
        env.extend_from_slice(edge_extra);
        let edge = Edge::start(test, "edge", &hub, &env).await;
        Self {
            ca,
            hub,
            edge,
            edge_cert,
        }
    }
}

#[tokio::test]
async fn pusher_js_and_the_sdks_work_over_wss_and_https() {
    let test = "pusher_js_and_the_sdks_work_over_wss_and_https";
    let TlsCluster { ca, hub, edge, .. } = TlsCluster::start(test, &[], &[]).await;

    let port: u16 = edge.websocket.rsplit_once(':').unwrap().1.parse().unwrap();
    let ca_file = ca.ca_file.to_str().unwrap().to_string();
    let launch = Launch {
        pusher: json!({"forceTLS": true, "wssPort": port, "enabledTransports": ["ws", "wss"]}),
        env: vec![("NODE_EXTRA_CA_CERTS".into(), ca_file)],
        ..Launch::default()
    };
    let mut browser = JsClient::connect_with(test, "pusher-js", &edge, &Value::Null, &launch).await;
    browser.subscribe("secure").await;

    let mut server = server_on(&hub);
    server.tls_ca = Some(ca.ca_file.clone());
    let node = node_sdk(
        test,
        &server,
        json!([{"op": "trigger", "channels": "secure", "event": "from-node", "data": "n"}]),
    )
    .await;
    assert_eq!(node[0]["status"], 200, "{node:?}");
    let python = python_sdk(
        test,
        &server,
        json!([{"op": "trigger", "channels": "secure", "event": "from-python", "data": "p"}]),
    )
    .await;
    assert_eq!(python[0], json!({"op": "trigger", "result": {}}));
    for event in ["from-node", "from-python"] {
        let got = browser.next_event().await;
        assert_eq!(got["event"], event, "{got}");
        assert_eq!(got["channel"], "secure", "{got}");
    }

    // The plain-text schemes are not served on the TLS ports.
    let plain = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(format!(
            "ws://{}/app/{APP_KEY}?protocol=7",
            edge.websocket
        )),
    )
    .await
    .expect("the edge answers a plain upgrade at once");
    assert!(
        plain.is_err(),
        "a ws:// upgrade on the wss:// port succeeded"
    );
}

#[tokio::test]
async fn certificates_renew_without_closing_any_of_200_open_sockets() {
    let test = "certificates_renew_without_closing_any_of_200_open_sockets";
    // The hub notices a renewal by itself (file watch); the edge only on SIGHUP.
    let TlsCluster {
        ca,
        hub,
        edge,
        edge_cert: edge_first,
    } = TlsCluster::start(
        test,
        &[("HERALD_TLS__WATCH_INTERVAL_SECS", "1")],
        &[("HERALD_TLS__WATCH_INTERVAL_SECS", "3600")],
    )
    .await;

    let path = format!("/app/{APP_KEY}?protocol=7&client=herald-tests&version=1");
    let mut sockets = Vec::new();
    for _ in 0..200 {
        let (mut ws, presented) = ca.websocket(&edge.websocket, "127.0.0.1", &path).await;
        assert_eq!(presented, edge_first.der);
        assert_eq!(
            next_json(&mut ws).await["event"],
            "pusher:connection_established"
        );
        ws.send(Message::text(
            json!({"event": "pusher:subscribe", "data": {"channel": "renewal"}}).to_string(),
        ))
        .await
        .unwrap();
        assert_eq!(
            next_json(&mut ws).await["event"],
            "pusher_internal:subscription_succeeded"
        );
        sockets.push(ws);
    }

    // The edge: new files, then SIGHUP.
    let edge_second = ca.issue("edge", NAMES);
    edge.process.hangup();
    edge.process
        .wait_for_log("Certificate reloaded.", Duration::from_secs(10))
        .await;
    let (_renewed, presented) = ca.websocket(&edge.websocket, "127.0.0.1", &path).await;
    assert_eq!(
        presented, edge_second.der,
        "new upgrades get the renewed certificate"
    );

    // The hub: new files, noticed without a signal.
    let hub_second = ca.issue("hub", NAMES);
    hub.process
        .wait_for_log("Certificate reloaded.", Duration::from_secs(10))
        .await;
    let (_, presented) = ca.connect(&hub.http, "127.0.0.1").await;
    assert_eq!(
        presented, hub_second.der,
        "new API connections get the renewed certificate"
    );

    // Every one of the 200 sockets is still open: each gets the event.
    assert_eq!(
        trigger_https(&ca, &hub, "renewal", "after-renewal").await,
        200
    );
    for (index, ws) in sockets.iter_mut().enumerate() {
        let event = next_json(ws).await;
        assert_eq!(event["event"], "after-renewal", "socket {index}: {event}");
    }
    let stats = Api::new(&edge.admin).raw("GET", "/stats", "").await.body;
    assert_eq!(stats["connections"], 201, "{stats}");
}

/// Runs `herald cert …` as a user would; panics on failure.
async fn herald_cert(args: &[&str]) {
    let output = herald_tests::dev::herald(args, Duration::from_secs(30)).await;
    assert!(
        output.status.success(),
        "herald {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_edge_verifies_its_hub_by_the_name_it_dials() {
    let test = "the_edge_verifies_its_hub_by_the_name_it_dials";
    let dir = cert_dir(test);
    let dir_text = dir.to_str().unwrap();
    herald_cert(&["cert", "ca", "--dir", dir_text]).await;
    // One certificate for the address the edge dials, one for another name.
    for (name, out) in [("127.0.0.1", "hub"), ("hub.internal", "other")] {
        herald_cert(&[
            "cert", "issue", "--dir", dir_text, "--name", name, "--out", out,
        ])
        .await;
    }
    let ca = dir.join("ca.crt");
    let ca = ca.to_str().unwrap();

    let hub_args = |name: &str| -> Vec<String> {
        [
            "--tls-cert",
            &format!("{dir_text}/{name}.crt"),
            "--tls-key",
            &format!("{dir_text}/{name}.key"),
        ]
        .map(String::from)
        .to_vec()
    };
    let edge_args = |hub: &Hub| -> Vec<String> {
        let mut args = edge_base_args(CLUSTER_KEY);
        args.extend(["--hub", &hub.link, "--hub-ca", ca].map(String::from));
        args
    };

    // A certificate for the address the edge dials: linked.
    let good = Hub::start_with_args(test, "hub", &hub_args("hub")).await;
    let mut args = edge_args(&good);
    args.push("--ready-json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let linked = HeraldProcess::start(test, "linked-edge", &args, &[]).await;
    let up = Api::new(&linked.ready_field("admin"))
        .raw("GET", "/up", "")
        .await;
    assert_eq!(up.status, 200, "{:?}", up.body);

    // The same CA as PEM text in the environment (what an ECS task gets from SSM): linked too.
    let pem = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let mut args = edge_base_args(CLUSTER_KEY);
    args.extend(["--hub", &good.link, "--ready-json"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("HERALD_EDGE__HUB_CA", pem.as_str())];
    let from_env = HeraldProcess::start(test, "pem-edge", &args, &env).await;
    let up = Api::new(&from_env.ready_field("admin"))
        .raw("GET", "/up", "")
        .await;
    assert_eq!(up.status, 200, "{:?}", up.body);

    // A certificate for another name: no link, and /up and the log say why.
    let wrong = Hub::start_with_args(test, "wrong-hub", &hub_args("other")).await;
    let args = edge_args(&wrong);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = HeraldProcess::spawn(test, "refused-edge", &args, &[]);
    // The link task starts before the edge logs where it listens: the two lines come in either
    // order.
    for line in ["certificate not valid for name", "Edge listening."] {
        refused.wait_for_log(line, Duration::from_secs(20)).await;
    }
    let admin = refused
        .stderr()
        .lines()
        .find_map(|line| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix("admin="))
                .map(str::to_string)
        })
        .expect("the edge logs its admin address");
    let up = Api::new(&admin).raw("GET", "/up", "").await;
    assert_eq!(up.status, 503, "{:?}", up.body);
    let why = up.body["link_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("certificate not valid for name \"127.0.0.1\""),
        "{:?}",
        up.body
    );
    let logged = refused
        .stderr()
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("not valid for name"))
        .count();
    assert!(
        logged >= 1,
        "the verification failure is logged as a warning"
    );
}
