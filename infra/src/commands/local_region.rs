//! `herald dev --hubs N --edges M [--redis URL]`: a local region of separate `herald hub` and
//! `herald edge` processes, started and stopped together, so failover can be watched by killing
//! one of them (`kill -9 <pid>` from the table this prints).
//!
//! The ports keep the roles they have in the one-process `herald dev`, so a Laravel `.env` or an
//! Echo setup works in both modes: hub `i` serves its API on 8081 + 2i (8081, 8083, …), edge `i`
//! serves WebSockets on 8080 + 2i (8080, 8082, …) and `/up` on 9080 + i, all on 127.0.0.1.
//! `--http-listen`, `--listen` and `--admin-listen` move the bases; a base port 0 gives every
//! process a free port; bases whose ranges would overlap are refused. Edge `i` prefers hub
//! `i mod N` (each hub gets its own zone) and fails over to the others. Every process runs the
//! runtime threads `herald dev` resolved (`--worker-threads`; on a laptop, processes × threads
//! above the cores only adds wake-ups).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
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
    /// Hub `i` serves its API on this port + 2i.
    pub http: SocketAddr,
    /// Edge `i` serves WebSockets on this port + 2i.
    pub websocket: SocketAddr,
    /// Edge `i` serves `/up` on this port + i.
    pub admin: SocketAddr,
    /// Every member's runtime threads (`runtime.worker_threads`, as `herald dev` resolved it).
    pub worker_threads: NonZeroUsize,
}

/// Ports between two members of the same role: hubs and edges interleave from 8081 and 8080.
const HUB_STRIDE: usize = 2;
/// Ports between two edges' WebSocket listeners.
const EDGE_STRIDE: usize = 2;
/// Ports between two edges' admin listeners (only edges use the 9080 range).
const ADMIN_STRIDE: usize = 1;

/// Where each member of a local region listens.
#[derive(Debug, PartialEq, Eq)]
struct Addresses {
    /// Hub `i`'s API.
    hubs: Vec<SocketAddr>,
    /// Edge `i`'s WebSocket and admin listeners.
    edges: Vec<(SocketAddr, SocketAddr)>,
}

/// `base` moved up by `index × stride` ports (port 0 stays 0: any free port), or `None` past
/// the last port.
fn nth(base: SocketAddr, index: usize, stride: usize) -> Option<SocketAddr> {
    if base.port() == 0 {
        return Some(base);
    }
    let port = usize::from(base.port()).checked_add(index.checked_mul(stride)?)?;
    Some(SocketAddr::new(base.ip(), u16::try_from(port).ok()?))
}

impl Layout {
    /// Every member's addresses; an error names the flags when two listeners would share a
    /// port or a range runs past port 65535.
    fn addresses(&self) -> Result<Addresses, String> {
        let past_the_end = |flag: &str| format!("{flag}: the local region's ports run past 65535");
        let hubs = (0..self.hubs)
            .map(|i| nth(self.http, i, HUB_STRIDE).ok_or_else(|| past_the_end("--http-listen")))
            .collect::<Result<Vec<_>, _>>()?;
        let edges = (0..self.edges)
            .map(|i| {
                let websocket =
                    nth(self.websocket, i, EDGE_STRIDE).ok_or_else(|| past_the_end("--listen"))?;
                let admin = nth(self.admin, i, ADMIN_STRIDE)
                    .ok_or_else(|| past_the_end("--admin-listen"))?;
                Ok((websocket, admin))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut taken: Vec<(u16, String)> = Vec::new();
        let listeners = hubs
            .iter()
            .enumerate()
            .map(|(i, address)| (*address, format!("hub {i}'s API (--http-listen)")))
            .chain(
                edges
                    .iter()
                    .enumerate()
                    .flat_map(|(i, (websocket, admin))| {
                        [
                            (*websocket, format!("edge {i}'s WebSocket (--listen)")),
                            (*admin, format!("edge {i}'s /up (--admin-listen)")),
                        ]
                    }),
            );
        for (address, role) in listeners {
            if address.port() == 0 {
                continue;
            }
            if let Some((_, other)) = taken.iter().find(|(port, _)| *port == address.port()) {
                return Err(format!(
                    "{role} and {other} would both use port {}: choose bases further apart",
                    address.port()
                ));
            }
            taken.push((address.port(), role));
        }
        Ok(Addresses { hubs, edges })
    }
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
        ref redis,
        ..
    } = layout;
    if hubs > 1 && redis.is_none() {
        return fail(
            EXIT_CONFIG,
            "--hubs above 1 needs --redis URL: hubs of a region share a Redis",
        );
    }
    let addresses = match layout.addresses() {
        Ok(addresses) => addresses,
        Err(error) => return fail(EXIT_CONFIG, error),
    };
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
        "--worker-threads".to_string(),
        layout.worker_threads.to_string(),
    ];
    let mut members = Vec::new();
    for (index, http) in addresses.hubs.iter().enumerate() {
        let mut args: Vec<String> = ["hub", "--ready-json", "--link-listen", "127.0.0.1:0"]
            .map(String::from)
            .to_vec();
        args.extend(["--http-listen".into(), http.to_string()]);
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
    for (index, (websocket, admin)) in addresses.edges.iter().enumerate() {
        let mut args: Vec<String> = ["edge", "--ready-json"].map(String::from).to_vec();
        args.extend(["--listen".into(), websocket.to_string()]);
        args.extend(["--admin-listen".into(), admin.to_string()]);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn address(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// `herald dev`'s own defaults.
    fn layout(hubs: usize, edges: usize) -> Layout {
        Layout {
            hubs,
            edges,
            redis: Some("redis://127.0.0.1:6379".into()),
            http: address(8081),
            websocket: address(8080),
            admin: address(9080),
            worker_threads: NonZeroUsize::MIN,
        }
    }

    #[test]
    fn two_hubs_and_three_edges_keep_the_single_process_ports() {
        let addresses = layout(2, 3).addresses().unwrap();
        assert_eq!(
            addresses,
            Addresses {
                hubs: vec![address(8081), address(8083)],
                edges: vec![
                    (address(8080), address(9080)),
                    (address(8082), address(9081)),
                    (address(8084), address(9082)),
                ],
            }
        );
    }

    #[test]
    fn no_port_changes_role_between_the_modes_whatever_the_counts() {
        // One process: 8080 WebSocket, 8081 API, 9080 /up.
        let single = [(8080, "websocket"), (8081, "api"), (9080, "admin")];
        for hubs in 1..=12 {
            for edges in 1..=12 {
                let addresses = layout(hubs, edges)
                    .addresses()
                    .unwrap_or_else(|e| panic!("{hubs} hubs, {edges} edges: {e}"));
                let roles = addresses.hubs.iter().map(|a| (a.port(), "api")).chain(
                    addresses.edges.iter().flat_map(|(websocket, admin)| {
                        [(websocket.port(), "websocket"), (admin.port(), "admin")]
                    }),
                );
                for (port, role) in roles {
                    for (single_port, single_role) in single {
                        assert!(
                            port != single_port || role == single_role,
                            "{hubs} hubs, {edges} edges: port {port} is {role}, alone {single_role}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn overlapping_bases_are_refused_and_port_zero_is_free_for_all() {
        let mut clash = layout(2, 2);
        clash.http = address(8082);
        let error = clash.addresses().unwrap_err();
        assert!(error.contains("port 8082"), "{error}");
        assert!(
            error.contains("--http-listen") && error.contains("--listen"),
            "{error}"
        );

        let mut end = layout(1, 2);
        end.websocket = address(65535);
        assert!(end.addresses().unwrap_err().contains("past 65535"));

        let mut free = layout(3, 3);
        free.http = address(0);
        free.websocket = address(0);
        free.admin = address(0);
        assert!(free.addresses().is_ok());
    }
}
