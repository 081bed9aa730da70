//! `herald probe` against a real `herald dev`: a healthy server, a closed port, a wrong app key,
//! a refused upgrade, a bad URL.

use std::time::Duration;

use herald_tests::dev::{Dev, herald};

const LIMIT: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `socket_id=` value of a successful probe's output.
fn socket_id(stdout: &str) -> &str {
    stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix("socket_id="))
        .unwrap_or_else(|| panic!("no socket_id in {stdout:?}"))
}

#[tokio::test]
async fn probe_reports_the_socket_id_of_a_healthy_server() {
    let dev = Dev::start("probe_reports_the_socket_id_of_a_healthy_server").await;
    let url = format!("ws://{}", dev.websocket);
    let output = herald(&["probe", &url], LIMIT).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let (high, low) = socket_id(&stdout)
        .split_once('.')
        .expect("a socket id is high.low");
    assert!(
        high.parse::<u64>().is_ok() && low.parse::<u64>().is_ok(),
        "{stdout}"
    );

    let output = herald(&["probe", &url, "--channel", "probe-check"], LIMIT).await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        text(&output.stdout).contains("subscribed=probe-check"),
        "{output:?}"
    );
}

#[tokio::test]
async fn probe_fails_on_a_closed_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("a bound address").port();
    drop(listener);
    let output = herald(&["probe", &format!("ws://127.0.0.1:{port}")], LIMIT).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cannot connect to 127.0.0.1"), "{stderr}");
    assert!(output.stdout.is_empty(), "{output:?}");
}

#[tokio::test]
async fn probe_reports_pusher_error_4001_for_a_wrong_key() {
    let dev = Dev::start("probe_reports_pusher_error_4001_for_a_wrong_key").await;
    let url = format!("ws://{}", dev.websocket);
    let output = herald(&["probe", &url, "--app-key", "not-a-key"], LIMIT).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("pusher:error 4001"), "{stderr}");
}

#[tokio::test]
async fn probe_reports_the_http_status_of_a_refused_upgrade() {
    let dev = Dev::start("probe_reports_the_http_status_of_a_refused_upgrade").await;
    // The hub's HTTP API answers an upgrade to /app/{key} with a plain 404.
    let output = herald(&["probe", &format!("ws://{}", dev.http)], LIMIT).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("refused with HTTP 404"), "{stderr}");
}

#[tokio::test]
async fn probe_rejects_a_bad_url() {
    for url in ["http://127.0.0.1:1", "wss://127.0.0.1:1", "nonsense"] {
        let output = herald(&["probe", url], LIMIT).await;
        assert_eq!(output.status.code(), Some(64), "{url}: {output:?}");
        assert!(
            text(&output.stderr).contains("not a usable WebSocket URL"),
            "{output:?}"
        );
    }
}

/// `herald dev` prints a client URL (`/app/{key}?protocol=7…`); the probe takes it as it is, with
/// or without its query, and uses its key — a different `--app-key` is a usage error.
#[tokio::test]
async fn probe_accepts_the_client_url_herald_dev_prints() {
    let dev = Dev::start("probe_accepts_the_client_url_herald_dev_prints").await;
    let bare = format!("ws://{}/app/herald-dev-key", dev.websocket);
    let printed = format!("{bare}?protocol=7&client=herald-dev&version=0.1.0");
    for url in [&bare, &printed] {
        let output = herald(&["probe", url], LIMIT).await;
        assert!(output.status.success(), "{url}: {output:?}");
        socket_id(&text(&output.stdout));
    }
    let wrong = format!("ws://{}/app/not-a-key", dev.websocket);
    let output = herald(&["probe", &wrong], LIMIT).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(text(&output.stderr).contains("4001"), "{output:?}");

    let output = herald(&["probe", &printed, "--app-key", "other"], LIMIT).await;
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(
        text(&output.stderr).contains("differs from the key"),
        "{output:?}"
    );
}
