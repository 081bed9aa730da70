//! `herald dev --hubs N --edges M [--redis URL]`: a local region of separate `herald hub` and
//! `herald edge` processes, started and stopped together, so failover can be watched by killing
//! one of them (`kill -9 <pid>` from the table this prints).
//!
//! Hub `i` serves its API on port 8090 + i; edge `i` serves WebSockets on 8080 + i and `/up` on
//! 9080 + i, all on 127.0.0.1 (`--http-listen`, `--listen` and `--admin-listen` move the bases;
//! a base port 0 gives every process a free port). Edge `i` prefers hub `i mod N` (each hub gets
//! its own zone) and fails over to the others.

use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use herald_shared::app::App;
use herald_shared::secret::Secret;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::process::{EXIT_CONFIG, EXIT_OS, PARENT_PID_VAR, fail, print_ready};

/// How long a child may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A child `herald` process and its ready line.
struct Member {
    name: String,
    child: Child,
    ready: Value,
}

async fn spawn(name: String, args: &[String], env: &[(String, String)]) -> Result<Member, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the herald executable: {e}"))?;
    let mut child = Command::new(exe)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(PARENT_PID_VAR, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && value["event"] == "ready"
            {
                return Some(value);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| format!("{name} did not become ready (see its log above)"))?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Member { name, child, ready })
}

impl Member {
    /// Sends SIGTERM, on which the process drains and exits.
    fn terminate(&self) {
        let pid = self
            .child
            .id()
            .and_then(|pid| Pid::from_raw(i32::try_from(pid).ok()?));
        if let Some(pid) = pid {
            let _ = kill_process(pid, Signal::TERM);
        }
    }
}

fn field(ready: &Value, name: &str) -> String {
    ready[name].as_str().unwrap_or_default().to_string()
}

/// The shape of a local region.
pub struct Layout {
    /// Hub processes.
    pub hubs: usize,
    /// Edge processes.
    pub edges: usize,
    /// The shared Redis.
    pub redis: Option<String>,
    /// Hub `i` serves its API on this port + i.
    pub http: SocketAddr,
    /// Edge `i` serves WebSockets on this port + i.
    pub websocket: SocketAddr,
    /// Edge `i` serves `/up` on this port + i.
    pub admin: SocketAddr,
}

/// `base` moved up by `index` ports (port 0 stays 0: any free port).
fn nth(base: SocketAddr, index: usize) -> String {
    let port = if base.port() == 0 {
        0
    } else {
        base.port() + index as u16
    };
    SocketAddr::new(base.ip(), port).to_string()
}

/// Runs the local region until a signal, then stops every member gracefully.
pub async fn run(
    layout: Layout,
    app: &App,
    cluster_key: &Secret,
    ready_json: bool,
    shutdown: CancellationToken,
) -> ExitCode {
    let Layout {
        hubs,
        edges,
        redis,
        http,
        websocket,
        admin,
    } = layout;
    if hubs > 1 && redis.is_none() {
        return fail(
            EXIT_CONFIG,
            "--hubs above 1 needs --redis URL: hubs of a region share a Redis",
        );
    }
    // Hubs serve the app; edges and hubs share the cluster key.
    let app_args = [
        "--app-id".to_string(),
        app.id.to_string(),
        "--app-key".to_string(),
        app.key.to_string(),
        "--app-secret".to_string(),
        app.secret.expose().to_string(),
    ];
    let cluster_args = [
        "--cluster-key".to_string(),
        cluster_key.expose().to_string(),
    ];
    let mut members = Vec::new();
    for index in 0..hubs {
        let mut args: Vec<String> = ["hub", "--ready-json", "--link-listen", "127.0.0.1:0"]
            .map(String::from)
            .to_vec();
        args.extend(["--http-listen".into(), nth(http, index)]);
        args.extend_from_slice(&app_args);
        args.extend_from_slice(&cluster_args);
        if let Some(url) = &redis {
            args.extend(["--redis".into(), url.clone()]);
        }
        match spawn(format!("hub {index}"), &args, &[]).await {
            Ok(member) => members.push(member),
            Err(error) => return fail(EXIT_OS, error),
        }
    }
    let hub_links: Vec<(String, String)> = members
        .iter()
        .map(|hub| (field(&hub.ready, "link"), field(&hub.ready, "cert_sha256")))
        .collect();
    for index in 0..edges {
        let mut args: Vec<String> = ["edge", "--ready-json"].map(String::from).to_vec();
        args.extend(["--listen".into(), nth(websocket, index)]);
        args.extend(["--admin-listen".into(), nth(admin, index)]);
        args.extend_from_slice(&cluster_args);
        for (zone, (link, pin)) in hub_links.iter().enumerate() {
            args.extend(["--hub".into(), format!("z{zone}={link}")]);
            args.extend(["--hub-cert-sha256".into(), pin.clone()]);
        }
        let env = [(
            "HERALD_EDGE__ZONE".to_string(),
            format!("z{}", index % hubs.max(1)),
        )];
        match spawn(format!("edge {index}"), &args, &env).await {
            Ok(member) => members.push(member),
            Err(error) => return fail(EXIT_OS, error),
        }
    }
    let table: Vec<String> = members
        .iter()
        .map(|member| {
            let pid = member.child.id().unwrap_or_default();
            let role = &member.ready["role"];
            if role == "hub" {
                format!(
                    "  {:<7} pid {pid:<7} API http://{}  (hub id {})",
                    member.name,
                    field(&member.ready, "http"),
                    field(&member.ready, "hub_id")
                )
            } else {
                let websocket = field(&member.ready, "websocket");
                let url = websocket.parse().map_or(websocket, |addr| {
                    super::dev::client_url(addr, app.key.as_str())
                });
                format!(
                    "  {:<7} pid {pid:<7} {url}  health http://{}/up",
                    member.name,
                    field(&member.ready, "admin")
                )
            }
        })
        .collect();
    let banner = format!(
        "Herald local region: {hubs} hub(s), {edges} edge(s){}\n{}\n\nKill a hub (kill -9 <pid>) and watch its edges fail over; Ctrl-C stops everything.",
        redis
            .as_ref()
            .map(|url| format!(", Redis {url}"))
            .unwrap_or_default(),
        table.join("\n")
    );
    if ready_json {
        eprintln!("{banner}");
        let ready: Vec<Value> = members
            .iter()
            .map(|m| json!({"name": m.name, "pid": m.child.id(), "ready": m.ready}))
            .collect();
        print_ready(json!({"role": "region", "members": ready}));
    } else {
        #[allow(clippy::print_stdout, reason = "the table is what a developer reads")]
        {
            println!("{banner}");
        }
    }
    shutdown.cancelled().await;
    for member in &members {
        member.terminate();
    }
    for mut member in members {
        let _ = member.child.wait().await;
    }
    ExitCode::SUCCESS
}
