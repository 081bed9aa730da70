//! `herald-bench` against a real `herald dev` and the floor server: a small fan-out accounts
//! every delivery exactly (also with its events spread over several channels), idle processes
//! awaiting one `herald-bench trigger` each time its arrival on every socket, and unreachable servers, wrong credentials or bad flags fail clearly
//! before any load is sent. The server binary itself carries no benchmark and no floor server.

use std::process::Stdio;
use std::time::Duration;

use herald_tests::binary::bench_binary;
use herald_tests::dev::{Dev, bench, herald};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_small_fanout_delivers_every_event_once() {
    check_small_fanout(
        Dev::start("a_small_fanout_delivers_every_event_once").await,
        &[],
    )
    .await;
}

#[tokio::test]
async fn the_floor_server_passes_the_same_fanout() {
    check_small_fanout(
        Dev::floor("the_floor_server_passes_the_same_fanout").await,
        &[],
    )
    .await;
}

#[tokio::test]
async fn events_spread_over_channels_still_reach_every_subscriber_once() {
    let dev = Dev::start("events_spread_over_channels_still_reach_every_subscriber_once").await;
    let report = check_small_fanout(dev, &["--channels", "4"]).await;
    // Each channel has its own order; every subscriber saw the same one in each.
    assert_eq!(report["delivery"]["arrival_orders"], 1, "{report}");
    assert_eq!(report["setup"]["channels"], 4, "{report}");
}

/// A fan-out of 25 events to 20 subscribers with `extra` flags: every delivery made once.
async fn check_small_fanout(dev: Dev, extra: &[&str]) -> Value {
    let (ws, api) = (
        format!("ws://{}", dev.websocket),
        format!("http://{}", dev.http),
    );
    let output = bench(
        &[
            "fanout",
            "--ws",
            &ws,
            "--api",
            &api,
            "--subscribers",
            "20",
            "--messages",
            "25",
            "--rate",
            "200",
            "--settle",
            "0",
            "--json",
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect::<Vec<_>>(),
        LIMIT,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(report["connect"]["connected"], 20, "{report}");
    assert_eq!(report["trigger"]["accepted"], 25, "{report}");
    let delivery = &report["delivery"];
    assert_eq!(delivery["expected"], 500, "{report}");
    assert_eq!(delivery["received"], 500, "{report}");
    for field in ["lost", "duplicates", "unconfirmed"] {
        assert_eq!(delivery[field], 0, "{field}: {report}");
    }
    assert_eq!(delivery["latency_ms"]["count"], 500, "{report}");
    report
}

/// What scripts/bench-100k.sh runs, small: two `idle --await-event` processes, ready (their
/// ready lines read), then one `herald-bench trigger`; each reports that every socket received
/// it, timed from the stamp the trigger printed.
#[tokio::test]
async fn idle_processes_await_one_trigger() {
    let dev = Dev::start("idle_processes_await_one_trigger").await;
    let ws = format!("ws://{}", dev.websocket);
    let mut idles = Vec::new();
    for _ in 0..2 {
        let mut child = Command::new(bench_binary())
            .args([
                "idle", "--ws", &ws, "-n", "5", "--hold", "0", "--settle", "0",
            ])
            .args(["--await-event", "30", "--ready-json", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("herald-bench runs");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut ready = String::new();
        tokio::time::timeout(LIMIT, stdout.read_line(&mut ready))
            .await
            .expect("a ready line within the limit")
            .expect("stdout is readable");
        let ready: Value = serde_json::from_str(&ready).expect("the ready line is JSON");
        assert_eq!(ready["event"], "ready", "{ready}");
        assert_eq!(ready["subscribers"], 5, "{ready}");
        idles.push((child, stdout));
    }
    let api = format!("http://{}", dev.http);
    let output = bench(&["trigger", "--api", &api, "--json"], LIMIT).await;
    assert!(output.status.success(), "{output:?}");
    let fired: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(fired["channel"], "bench", "{fired}");
    for (mut child, mut stdout) in idles {
        let mut rest = String::new();
        tokio::time::timeout(LIMIT, stdout.read_to_string(&mut rest))
            .await
            .expect("the report within the limit")
            .expect("stdout is readable");
        let status = child.wait().await.expect("herald-bench exits");
        assert!(status.success(), "{status:?}: {rest}");
        let report: Value = serde_json::from_str(&rest).expect("the report is JSON");
        let awaited = &report["awaited"];
        assert_eq!(awaited["held"], 5, "{report}");
        assert_eq!(awaited["received"], 5, "{report}");
        assert_eq!(awaited["sent_us"], fired["sent_us"], "{report}");
        let (first, last) = (&awaited["first_ms"], &awaited["last_ms"]);
        assert!(first.as_f64() <= last.as_f64(), "{report}");
        let counted: u64 = (awaited["latency_us"].as_array().expect("pairs").iter())
            .map(|pair| pair[1].as_u64().expect("a count"))
            .sum();
        assert_eq!(counted, 5, "{report}");
        assert_eq!(report["delivery"]["lost"], 0, "{report}");
    }
}

#[tokio::test]
async fn wrong_credentials_fail_before_connecting() {
    let dev = Dev::start("wrong_credentials_fail_before_connecting").await;
    let (ws, api) = (
        format!("ws://{}", dev.websocket),
        format!("http://{}", dev.http),
    );
    let output = bench(
        &[
            "fanout",
            "--ws",
            &ws,
            "--api",
            &api,
            "--app-secret",
            "wrong",
            "-n",
            "5",
        ],
        LIMIT,
    )
    .await;
    assert_eq!(output.status.code(), Some(69), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a trial trigger failed"), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_server_or_a_bad_url_fails_clearly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let closed = format!("ws://{}", listener.local_addr().expect("an address"));
    drop(listener);
    let output = bench(&["idle", "--ws", &closed, "-n", "3", "--hold", "0"], LIMIT).await;
    assert_eq!(output.status.code(), Some(69), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no subscriber could connect"), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");

    let output = bench(&["fanout", "--ws", &closed, "--api", "https://x"], LIMIT).await;
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--api"),
        "{output:?}"
    );

    let output = bench(&["fanout", "--ws", &closed, "--rate", "0"], LIMIT).await;
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--rate must be positive"), "{stderr}");
}

#[tokio::test]
async fn more_subscribers_than_open_files_fail_before_connecting() {
    // Linux caps open files per process at 2^30 (fs.nr_open), below this.
    let output = bench(&["idle", "-n", "2000000000", "--hold", "0"], LIMIT).await;
    assert_eq!(output.status.code(), Some(71), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("subscribers need more"), "{stderr}");
}

#[tokio::test]
async fn the_server_binary_has_no_bench_and_no_floor_server() {
    let output = herald(&["bench", "floor", "--listen", "127.0.0.1:0"], LIMIT).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'bench'"),
        "{stderr}"
    );
}
