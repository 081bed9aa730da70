//! `herald dev`, the README's first command: one process, a default app, ready for clients; and
//! its local region, whose ports keep the roles they have in the one process.

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

/// The threads of the process that run tasks (tokio names them `tokio-rt-worker`).
fn worker_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the process's threads are listed")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "tokio-rt-worker")
        .count()
}

#[tokio::test]
async fn worker_threads_are_what_the_configuration_says() {
    let test = "worker_threads_are_what_the_configuration_says";
    let one =
        Dev::start_with_env(test, "dev-one", &[("HERALD_RUNTIME__WORKER_THREADS", "1")]).await;
    assert_eq!(worker_threads(one.process.pid()), 1);
    let key = one.process.ready["app"]["key"].as_str().unwrap();
    PusherClient::connect(&format!("ws://{}/app/{key}?protocol=7", one.websocket))
        .await
        .subscribe("one-thread")
        .await;
    let three = Dev::start_with_env(
        test,
        "dev-three",
        &[("HERALD_RUNTIME__WORKER_THREADS", "3")],
    )
    .await;
    assert_eq!(worker_threads(three.process.pid()), 3);
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

/// Whether every port is free on 127.0.0.1 right now.
fn all_free(ports: &[u16]) -> bool {
    ports
        .iter()
        .all(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
}

/// The ports `herald dev --hubs 2 --edges 3` uses from the bases `websocket` (edges' WebSocket:
/// base, +2, +4), `http` (hubs' API: base, +2) and `admin` (edges' /up: base, +1, +2).
fn region_ports(websocket: u16, http: u16, admin: u16) -> Vec<u16> {
    vec![
        websocket,
        websocket + 2,
        websocket + 4,
        http,
        http + 2,
        admin,
        admin + 1,
        admin + 2,
    ]
}

#[tokio::test]
async fn herald_dev_region_ports_keep_their_single_process_roles() {
    const TEST: &str = "herald_dev_region_ports_keep_their_single_process_roles";
    // The real defaults when this machine has them free and no other test run is using them
    // (a lock in the shared temp directory); else the same layout from free bases, which the
    // flags move. The layout rule is what is checked either way.
    let lock_path = std::env::temp_dir().join("herald-dev-default-ports.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .expect("the lock file opens");
    let mut lock = fd_lock::RwLock::new(lock_file);
    let defaults = lock.try_write().ok();
    let (websocket, http, admin, flags) =
        if defaults.is_some() && all_free(&region_ports(8080, 8081, 9080)) {
            (8080, 8081, 9080, Vec::new())
        } else {
            let bases = (0..100)
                .map(|_| {
                    let websocket = fastrand::u16(20_000..40_000) & !1;
                    (websocket, websocket + 1, websocket + 20_000)
                })
                .find(|(w, h, a)| all_free(&region_ports(*w, *h, *a)))
                .expect("a free range of ports");
            let (w, h, a) = bases;
            let flags = vec![
                "--listen".to_string(),
                format!("127.0.0.1:{w}"),
                "--http-listen".to_string(),
                format!("127.0.0.1:{h}"),
                "--admin-listen".to_string(),
                format!("127.0.0.1:{a}"),
            ];
            (w, h, a, flags)
        };
    eprintln!("herald dev region from bases {websocket} (ws), {http} (api), {admin} (admin)");
    let redis = herald_tests::redis::RedisServer::start().await;
    let url = redis.url(0);
    let mut args = vec![
        "dev",
        "--ready-json",
        "--hubs",
        "2",
        "--edges",
        "3",
        "--redis",
        &url,
        "--worker-threads",
        "1",
    ];
    args.extend(flags.iter().map(String::as_str));
    let dev = HeraldProcess::start(TEST, "dev", &args, &[]).await;

    // Every member listens where the layout says, in the role it says, on the threads given.
    let members = dev.ready["members"].as_array().expect("a member list");
    for member in members {
        let pid = member["pid"].as_u64().expect("a member's pid") as u32;
        assert_eq!(worker_threads(pid), 1, "{member}");
    }
    let address = |role: &str, index: usize, field: &str| {
        members
            .iter()
            .filter(|m| m["ready"]["role"] == role)
            .nth(index)
            .unwrap()["ready"][field]
            .as_str()
            .unwrap()
            .to_string()
    };
    let at = |port: u16| format!("127.0.0.1:{port}");
    for index in 0..2 {
        let api_port = http + 2 * index as u16;
        assert_eq!(address("hub", index, "http"), at(api_port));
        let stats = Api::new(&at(api_port)).raw("GET", "/stats", "").await.body;
        assert_eq!(stats["role"], "hub", "port {api_port}: {stats}");
    }
    let mut clients = Vec::new();
    for index in 0..3 {
        let (ws_port, admin_port) = (websocket + 2 * index as u16, admin + index as u16);
        assert_eq!(address("edge", index, "websocket"), at(ws_port));
        assert_eq!(address("edge", index, "admin"), at(admin_port));
        let stats = Api::new(&at(admin_port))
            .raw("GET", "/stats", "")
            .await
            .body;
        assert_eq!(stats["role"], "edge", "port {admin_port}: {stats}");
        let url = format!("ws://{}/app/herald-dev-key?protocol=7", at(ws_port));
        let mut client = PusherClient::connect(&url).await;
        client.subscribe("ports").await;
        clients.push(client);
    }
    // The one-process layout's API port (the README's REVERB_PORT) takes Laravel's broadcasts
    // here too, and they reach the edge on its WebSocket port (VITE_REVERB_PORT) and the others.
    let api = Api::for_app(&at(http), "100001", "herald-dev-key", "herald-dev-secret");
    let sent = api
        .trigger(json!({"name": "e", "channel": "ports", "data": "x"}))
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    for client in &mut clients {
        assert_eq!(client.next_event().await["data"], "x");
    }
    drop(defaults);
}

/// `herald dev --hubs 2 --edges 1` SIGKILLed after whoever read its log went away (its stderr
/// is a closed pipe, as when the terminal or the test that started it is gone): every process
/// it started stops all the same — a log line that cannot be written never stops the signal
/// handling.
#[tokio::test]
async fn a_killed_local_region_leaves_no_process_even_with_its_log_gone() {
    use tokio::io::AsyncBufReadExt;
    let redis = herald_tests::redis::RedisServer::start().await;
    let url = redis.url(0);
    let mut dev = tokio::process::Command::new(herald_tests::binary::herald_binary())
        .args([
            "dev",
            "--ready-json",
            "--hubs",
            "2",
            "--edges",
            "1",
            "--redis",
            &url,
        ])
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("herald dev starts");
    let stdout = dev.stdout.take().expect("stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                && value["event"] == "ready"
            {
                return value;
            }
        }
        panic!("herald dev ended before its ready line");
    })
    .await
    .expect("herald dev is ready within 60 s");
    let pids: Vec<u64> = ready["members"]
        .as_array()
        .expect("a member list")
        .iter()
        .map(|member| member["pid"].as_u64().expect("a pid"))
        .collect();
    assert_eq!(pids.len(), 3);
    drop(dev.stderr.take());
    dev.kill().await.expect("herald dev can be killed");
    for pid in pids {
        herald_tests::eventually::eventually(
            &format!("member {pid} to follow herald dev"),
            std::time::Duration::from_secs(10),
            async || {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    // A zombie has stopped; init reaps it.
                    !stat
                        .rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
            },
            |alive| !alive,
        )
        .await
        .unwrap();
    }
}
