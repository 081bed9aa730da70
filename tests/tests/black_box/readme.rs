//! README.md's shell commands, run as a new user would run them, against a real `herald dev`.
//!
//! Every command of every ```` ```sh ```` block runs (through `sh -c`, with the tested `herald` first
//! on the `PATH`), except the few listed in [`NOT_RUN_HERE`] with the reason. The one change to
//! the commands: `herald dev` binds free ports (port 0, through its environment variables, so
//! tests run in parallel) and the README's fixed addresses are replaced by the ones it printed.
//! The endpoint table the README quotes must match what `herald dev` prints.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use herald_tests::binary::{herald_binary, target_dir, workspace_root};
use herald_tests::client::PusherClient;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The README's start command; the test runs it with the binary under test.
const START: &str = "cargo run --release --bin herald -- dev";

/// Commands that cannot run here, by prefix, and why. Each must match a README command, so the
/// list cannot outlive the README.
const NOT_RUN_HERE: &[(&str, &str)] = &[
    ("cargo test --workspace", "the command that runs this test"),
    (
        "export HERALD_CLUSTER__KEY=",
        "the production layout: hubs with certificate files on 0.0.0.0 (the topology tests start the same processes on free ports)",
    ),
    (
        "export REVERB_APP_ID=my-app",
        "the production layout (as above)",
    ),
    (
        "herald hub --http-listen 0.0.0.0:8081",
        "the production layout: fixed ports on 0.0.0.0 (tls.rs starts hubs with `herald cert` certificates on free ports)",
    ),
    (
        "herald edge --listen 0.0.0.0:8080",
        "the production layout: needs a hub named hub.internal",
    ),
    (
        "herald dev --hubs 2 --edges 3 --redis redis://127.0.0.1:6379",
        "needs the reader's Redis on port 6379 and the fixed ports 8080–8084 and 9080–9082; dev.rs starts the same layout (on those ports when free) with its own Redis",
    ),
    (
        "herald hub --redis rediss://",
        "the production layout: a TLS Redis at my-redis.internal",
    ),
    (
        "HERALD_EDGE__ZONE=eu-west-1a herald edge",
        "the production layout: hubs named hub-a.internal and hub-b.internal",
    ),
];

/// A fenced block of README.md: its info string and its lines.
struct Block {
    lang: String,
    lines: Vec<String>,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in markdown.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_string(),
                    lines: Vec::new(),
                });
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(block), None) => block.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "README.md has an unclosed code block");
    blocks
}

/// The commands of a shell block: continuation lines joined, comments and blank lines dropped.
fn commands(block: &Block) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in &block.lines {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "a shell block ends in a continuation");
    commands
}

/// `herald dev` started as the README says, on free ports.
struct Started {
    child: Child,
    banner: Vec<String>,
}

async fn start_dev(args: &[&str], log: &Path) -> Started {
    let mut child = Command::new(herald_binary())
        .args(args)
        .env("HERALD_EDGE__LISTEN", "127.0.0.1:0")
        .env("HERALD_EDGE__ADMIN_LISTEN", "127.0.0.1:0")
        .env("HERALD_HUB__HTTP_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("the log file can be created"))
        .kill_on_drop(true)
        .spawn()
        .expect("herald can be started");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let read = async {
        let mut banner = Vec::new();
        while let Some(line) = lines.next_line().await.expect("stdout is readable") {
            let last = line.trim_end().ends_with("| sh");
            banner.push(line);
            if last {
                return banner;
            }
        }
        panic!("herald dev stopped printing before its banner ended: {banner:#?}");
    };
    let banner = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| panic!("herald dev printed no banner within 30 s; see {log:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Started { child, banner }
}

/// The value printed after `label` in the banner.
fn printed(banner: &[String], label: &str) -> String {
    banner
        .iter()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .map(|rest| rest.trim().to_string())
        .unwrap_or_else(|| panic!("the banner has no {label:?} line: {banner:#?}"))
}

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

#[tokio::test]
async fn every_readme_shell_command_works_against_herald_dev() {
    let readme =
        std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md is readable");
    let blocks = blocks(&readme);
    let shell: Vec<String> = blocks
        .iter()
        .filter(|block| block.lang == "sh")
        .flat_map(commands)
        .collect();
    assert_eq!(
        shell.first().map(String::as_str),
        Some(START),
        "the README starts Herald first"
    );

    let dir = target_dir().join("test-logs").join("readme");
    std::fs::create_dir_all(&dir).expect("the log directory can be created");
    // `herald cert` never overwrites: each run makes its CA afresh, as a new user would.
    let _ = std::fs::remove_dir_all(dir.join("certs"));
    let start_args: Vec<&str> = START
        .split_once(" -- ")
        .expect("the start command passes arguments to herald")
        .1
        .split_whitespace()
        .collect();
    let mut dev = start_dev(&start_args, &dir.join("dev.log")).await;
    let websocket_url = printed(&dev.banner, "WebSocket URL (any client)");
    let websocket = host_port(&websocket_url);
    let http = host_port(&printed(&dev.banner, "Pusher HTTP API (Laravel, SDKs)"));
    let admin = host_port(&printed(&dev.banner, "Health"));
    let ws_port = websocket.rsplit(':').next().unwrap_or_default();
    let addresses = BTreeMap::from([
        ("wsPort 8080", format!("wsPort {ws_port}")),
        ("127.0.0.1:8080", websocket.clone()),
        ("127.0.0.1:8081", http.clone()),
        ("127.0.0.1:9080", admin.clone()),
    ]);
    let localize = |text: &str| {
        addresses
            .iter()
            .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
    };

    // The endpoint table the README quotes is what herald dev prints.
    let table = blocks
        .iter()
        .find(|block| {
            block.lang == "text" && block.lines.iter().any(|l| l.contains("WebSocket URL"))
        })
        .expect("the README quotes herald dev's endpoint table");
    for line in &table.lines {
        let expected = localize(line);
        assert!(
            dev.banner
                .iter()
                .any(|printed| printed.trim() == expected.trim()),
            "README line {line:?} (here {expected:?}) is not in herald dev's banner: {:#?}",
            dev.banner
        );
    }

    // The printed URL is what a raw client opens: no 4008 for a missing protocol.
    let mut client = PusherClient::connect(&websocket_url).await;
    client.subscribe("test").await;

    let path = format!(
        "{}:{}",
        herald_binary()
            .parent()
            .expect("the binary is in a directory")
            .display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    for command in &shell[1..] {
        if let Some((prefix, reason)) = NOT_RUN_HERE
            .iter()
            .find(|(prefix, _)| command.starts_with(prefix))
        {
            skipped.push(*prefix);
            eprintln!("not run here ({reason}): {command}");
            continue;
        }
        let local = localize(command);
        let output = Command::new("sh")
            .args(["-c", &local])
            .env("PATH", &path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(120), output)
            .await
            .unwrap_or_else(|_| panic!("{local} finishes within 120 s"))
            .expect("sh can be run");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "README command failed: {local}\nstatus {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        ran.push((command.clone(), stdout));
    }

    let output_of = |prefix: &str| {
        ran.iter()
            .find(|(command, _)| command.starts_with(prefix))
            .map(|(_, stdout)| stdout.as_str())
            .unwrap_or_else(|| panic!("the README runs {prefix:?}"))
    };
    assert!(
        output_of("herald probe ").starts_with("ok "),
        "{}",
        output_of("herald probe ")
    );
    assert_eq!(
        output_of("curl -s http://127.0.0.1:9080/up").trim(),
        r#"{"health":"OK"}"#
    );
    assert!(output_of("herald config env").contains("HERALD_EDGE__LISTEN"));
    assert!(
        output_of("curl -s http://127.0.0.1:8081/metrics").contains("herald_hub_edges 1"),
        "{}",
        output_of("curl -s http://127.0.0.1:8081/metrics")
    );
    assert_eq!(output_of("herald sign ").trim(), "{}");
    // The signed trigger reached the client subscribed to `test`.
    assert_eq!(
        client.next_event().await,
        json!({"event": "hello", "channel": "test", "data": "{\"message\":\"hi\"}"})
    );

    for (prefix, _) in NOT_RUN_HERE {
        assert!(
            skipped.contains(prefix),
            "{prefix:?} is listed as not runnable here but the README has no such command"
        );
    }
    let _ = dev.child.kill().await;
}
