//! The container image (`Containerfile`, built by `scripts/build-image.sh`): its configuration
//! (entrypoint, non-root user, labels, stop signal, ports, size) and its root filesystem, which
//! is exported and run with `chroot` as the image's user, because this sandbox cannot run
//! containers: `herald dev` inside answers a WebSocket client and a signed trigger, and
//! `herald probe` inside reaches it by names resolved through the image's own libc, from
//! `/etc/hosts` and from a DNS server named in `/etc/resolv.conf` (the two files a container
//! runtime provides).
//!
//! Needs root, podman and the image: CI runs `scripts/build-image.sh` and sets
//! `TEST_HERALD_IMAGE` (not `HERALD_…`: herald refuses unknown HERALD_ variables); without the
//! variable the test says it skipped, or fails when `CI_REQUIRE_ARTIFACTS=1` (set by `.ci/run`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald_tests::api::Api;
use herald_tests::binary::{skip_without_artifact, target_dir};
use herald_tests::client::PusherClient;
use herald_tests::process::Launch;
use serde_json::{Value, json};
use tokio::net::UdpSocket;

/// The image's user, as `chroot --userspec` takes it.
const USER: &str = "10001:10001";
/// Names under this suffix get an A record 127.0.0.1 from the test's DNS server.
const DNS_SUFFIX: &str = ".dns.herald.test";
const LIMIT: Duration = Duration::from_secs(30);

fn podman(args: &[&str]) -> String {
    let output = Command::new("podman")
        .args(args)
        .output()
        .expect("podman is installed");
    assert!(output.status.success(), "podman {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The image's root filesystem in a fresh directory: `podman create` (nothing runs) and
/// `podman export`.
fn export_rootfs(image: &str, dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    let tar = dir.join("rootfs.tar");
    std::fs::create_dir_all(&rootfs).unwrap();
    let container = podman(&["create", image]).trim().to_owned();
    let export = Command::new("podman")
        .args(["export", "--output"])
        .arg(&tar)
        .arg(&container)
        .output();
    podman(&["rm", &container]);
    let export = export.expect("podman export runs");
    assert!(export.status.success(), "{export:?}");
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&rootfs)
        .status()
        .expect("tar runs");
    assert!(untar.success());
    rootfs
}

/// `chroot` from this process's PATH (the commands below clear the environment).
fn chroot_program() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chroot"))
        .find(|path| path.exists())
        .expect("chroot (coreutils) is installed")
}

/// Runs the image's herald under chroot as the image's user, to completion.
async fn chroot_herald(rootfs: &Path, args: &[&str]) -> std::process::Output {
    let output = tokio::process::Command::new(chroot_program())
        .arg(format!("--userspec={USER}"))
        .arg(rootfs)
        .arg("/usr/local/bin/herald")
        .args(args)
        .env_clear()
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(LIMIT, output)
        .await
        .unwrap_or_else(|_| panic!("herald {args:?} finishes within {LIMIT:?}"))
        .expect("chroot runs")
}

/// The answer to one DNS query: A 127.0.0.1 for names under [`DNS_SUFFIX`], no data for their
/// other types, NXDOMAIN for other names; `None` for what is not a one-question query.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).to_lowercase());
        at += length;
    }
    let question_end = at + 4;
    let question = query.get(12..question_end)?;
    let record_type = u16::from_be_bytes([query[at], query[at + 1]]);
    let name = format!("{}.", labels.join("."));
    let ours = name.ends_with(&format!("{DNS_SUFFIX}."));
    let answers: u16 = u16::from(ours && record_type == 1);
    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&query[0..2]);
    // QR, RD, RA; rcode 0 or 3 (NXDOMAIN).
    reply.extend_from_slice(&[0x81, if ours { 0x80 } else { 0x83 }]);
    reply.extend_from_slice(&[0, 1]);
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if answers == 1 {
        // The question's name (a pointer to offset 12), A, IN, TTL 60, 4 bytes: 127.0.0.1.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(reply)
}

/// A DNS server on port 53 of a loopback address of its own for the duration of the test;
/// counts the A queries it answered with an address.
struct DnsServer {
    task: tokio::task::JoinHandle<()>,
    answered: Arc<AtomicUsize>,
    address: Ipv4Addr,
}

/// Port 53 on an address in 127.53.0.0/16 (any loopback address routes to `lo`) picked from
/// this process's id, the next one when it is taken: runs of this test side by side (CI beside
/// a developer) each get their own, since `/etc/resolv.conf` cannot name another port.
async fn bind_port_53() -> (UdpSocket, Ipv4Addr) {
    let first = std::process::id();
    for offset in 0..256 {
        let [_, _, high, low] = first.wrapping_add(offset).to_be_bytes();
        let address = Ipv4Addr::new(127, 53, high, low);
        match UdpSocket::bind((address, 53)).await {
            Ok(socket) => return (socket, address),
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(error) => {
                panic!("port 53 on {address} can be bound (the test runs as root): {error}")
            }
        }
    }
    panic!("port 53 is taken on 256 addresses of 127.53.0.0/16");
}

impl DnsServer {
    async fn start() -> Self {
        let (socket, address) = bind_port_53().await;
        let answered = Arc::new(AtomicUsize::new(0));
        let count = answered.clone();
        let task = tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            while let Ok((length, peer)) = socket.recv_from(&mut buffer).await {
                if let Some(reply) = dns_answer(&buffer[..length]) {
                    if reply[7] == 1 {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Self {
            task,
            answered,
            address,
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn inspect(image: &str) -> Value {
    let text = podman(&["image", "inspect", image]);
    let mut all: Vec<Value> = serde_json::from_str(&text).expect("podman prints JSON");
    all.pop().expect("the image exists")
}

#[tokio::test]
async fn the_image_runs_herald_as_a_non_root_user_with_name_resolution() {
    let Ok(image) = std::env::var("TEST_HERALD_IMAGE") else {
        skip_without_artifact(
            "TEST_HERALD_IMAGE is not set (CI builds the image with scripts/build-image.sh)",
        );
        return;
    };

    // Configuration.
    let inspected = inspect(&image);
    let config = &inspected["Config"];
    assert_eq!(
        config["Entrypoint"],
        json!(["/usr/local/bin/herald"]),
        "{config}"
    );
    assert_eq!(config["User"], json!(USER), "{config}");
    assert_eq!(config["StopSignal"], json!("SIGTERM"), "{config}");
    let ports: BTreeSet<&str> = config["ExposedPorts"]
        .as_object()
        .expect("exposed ports")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from(["8080/tcp", "9080/tcp", "8081/tcp", "4433/udp"])
    );
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        json!(env!("CARGO_PKG_VERSION"))
    );
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .expect("a revision label");
    assert!(
        revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()),
        "{revision}"
    );
    let size = inspected["Size"].as_u64().expect("a size");
    eprintln!("{image}: {size} bytes");
    assert!(size < 40_000_000, "the image is {size} bytes");

    // The root filesystem: herald, the loader and libc, no shell.
    let dir = target_dir().join(format!("image-test/{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rootfs = export_rootfs(&image, &dir);
    for path in ["bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/env"] {
        assert!(!rootfs.join(path).exists(), "the image has /{path}");
    }
    for path in [
        "usr/local/bin/herald",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/nsswitch.conf",
    ] {
        assert!(rootfs.join(path).exists(), "the image lacks /{path}");
    }

    let output = chroot_herald(&rootfs, &["--version"]).await;
    assert!(output.status.success(), "{output:?}");
    let version = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        version.trim(),
        format!("herald {} (commit {revision})", env!("CARGO_PKG_VERSION"))
    );

    // What the runtime mounts: /etc/hosts with the container's names, /etc/resolv.conf.
    let hosts = std::fs::read_to_string(rootfs.join("etc/hosts")).unwrap();
    std::fs::write(
        rootfs.join("etc/hosts"),
        format!("{hosts}127.0.0.1\therald-edge.hosts.test\n"),
    )
    .unwrap();
    let dns = DnsServer::start().await;
    std::fs::write(
        rootfs.join("etc/resolv.conf"),
        format!("nameserver {}\noptions timeout:2 attempts:2\n", dns.address),
    )
    .unwrap();

    let test = "the_image_runs_herald_as_a_non_root_user_with_name_resolution";
    let rootfs_arg = rootfs.display().to_string();
    let userspec = format!("--userspec={USER}");
    let launcher = ["chroot", userspec.as_str(), rootfs_arg.as_str()];
    let args = [
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--ready-json",
    ];
    let mut dev = Launch::herald(test, "dev-in-image", &args)
        .program(Path::new("/usr/local/bin/herald"))
        .under(&launcher)
        .start()
        .await;
    let websocket = dev.ready_field("websocket");
    let http = dev.ready_field("http");
    let app = &dev.ready["app"];
    let (id, key, secret) = (
        app["id"].as_str().unwrap(),
        app["key"].as_str().unwrap(),
        app["secret"].as_str().unwrap(),
    );

    // A WebSocket client and a signed trigger.
    let mut client = PusherClient::connect(&format!("ws://{websocket}/app/{key}?protocol=7")).await;
    client.subscribe("image").await;
    let reply = Api::for_app(&http, id, key, secret)
        .trigger(json!({"name": "built", "channel": "image", "data": "{\"from\":\"chroot\"}"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        client.next_event().await,
        json!({"event": "built", "channel": "image", "data": "{\"from\":\"chroot\"}"})
    );

    // Names resolved inside the image: /etc/hosts, then DNS.
    let port = websocket.rsplit_once(':').unwrap().1;
    for host in ["herald-edge.hosts.test", &format!("edge{DNS_SUFFIX}")] {
        let url = format!("ws://{host}:{port}");
        let output = chroot_herald(
            &rootfs,
            &["probe", &url, "--app-key", key, "--channel", "image-probe"],
        )
        .await;
        assert!(output.status.success(), "probe {url}: {output:?}");
    }
    assert!(
        dns.answered.load(Ordering::SeqCst) >= 1,
        "the DNS name was not resolved through the DNS server"
    );
    let output = chroot_herald(&rootfs, &["probe", "ws://missing.herald.test:1"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");

    dev.kill().await;
    drop(dns);
    std::fs::remove_dir_all(&dir).unwrap();
}
