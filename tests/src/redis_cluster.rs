//! A local Redis Cluster per test, and a standalone primary + replica pair: the two shapes of a
//! replicated Redis Herald meets on ElastiCache (cluster mode enabled, and disabled).
//!
//! [`RedisCluster::start`] runs six `redis-server --cluster-enabled yes` nodes on free loopback
//! ports, joins them with `redis-cli --cluster create … --cluster-replicas 1` (three primaries,
//! one replica each) and returns once every node says `cluster_state:ok`, every replica's link
//! to its primary is up and all nodes agree on who serves which slots. Nodes run with
//! `--cluster-node-timeout 1000`, so after [`RedisCluster::kill`] of a primary its replica is
//! promoted within about two seconds; [`RedisCluster::await_promotion`] waits for that.
//!
//! [`RedisPrimaryReplica`] is a primary with one replica and no cluster: its failover is done by
//! hand ([`RedisPrimaryReplica::promote_replica`] sends `REPLICAOF NO ONE`), which is what an
//! ElastiCache cluster-mode-disabled failover looks like to a client;
//! [`RedisPrimaryReplica::add_replica`] then gives the new primary a replica, as ElastiCache
//! replaces the failed node.
//!
//! Every wait polls the nodes against a deadline; none sleeps as synchronisation. Each node keeps
//! only what cluster mode needs on disk (`nodes.conf`; no snapshots, no AOF) in
//! `target/redis-cluster/<test>/<node>`, and its output in `target/test-logs/<test>/`. Killing is
//! SIGKILL, and every node is killed when its harness value is dropped.
//!
//! Sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`) needs Redis 7.0: [`RedisCluster::start`] checks the
//! installed `redis-server` first and names what it found.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::binary::target_dir;
use crate::redis::{free_port, spawn};

/// `cluster-node-timeout`: how long a node may be silent before the others call it failed.
pub const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// The oldest Redis with sharded pub/sub.
const MIN_VERSION: (u32, u32) = (7, 0);

/// How long forming the cluster (or a pair) may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the promotion of a replica may take after its primary was killed.
const PROMOTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `redis-cli --cluster create` may run.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The bound on connecting to a node and on each command sent to it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The pause between two looks at the nodes while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How many times a command interrupted by a signal is tried again on a new connection.
const INTERRUPTED_RETRIES: u32 = 5;

/// The number of slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// A running (or killed) redis-server of a harness.
struct Node {
    port: u16,
    /// The cluster bus port, for cluster nodes.
    bus_port: Option<u16>,
    dir: PathBuf,
    log: PathBuf,
    /// The process; `None` once killed.
    child: Option<Child>,
}

impl Node {
    /// Starts a node whose arguments `args(port, bus_port)` makes, on free ports (retrying when
    /// another process takes a port first). `dir` is emptied first.
    async fn start(
        dir: PathBuf,
        log_dir: &Path,
        cluster: bool,
        args: impl Fn(u16, Option<u16>) -> Vec<String>,
    ) -> Node {
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port();
            let bus_port = cluster.then(free_port).filter(|bus| *bus != port);
            if cluster && bus_port.is_none() {
                continue;
            }
            fresh_dir(&dir);
            let log = log_dir.join(format!("redis-{port}.log"));
            match spawn_with(port, &dir, &args(port, bus_port), &log).await {
                Ok(child) => {
                    return Node {
                        port,
                        bus_port,
                        dir,
                        log,
                        child: Some(child),
                    };
                }
                Err(error) => last_error = Some(error),
            }
        }
        panic!(
            "{}",
            last_error.map_or("no two distinct free ports".to_owned(), |e| e.to_string())
        );
    }

    /// Whether its process runs.
    fn alive(&self) -> bool {
        self.child.is_some()
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL; an already exited process is just as dead.
            let _ = child.kill().await;
        }
    }
}

/// Runs redis-server on `port` with `dir` as its working directory and `args`.
async fn spawn_with(
    port: u16,
    dir: &Path,
    args: &[String],
    log: &Path,
) -> Result<Child, crate::redis::SpawnError> {
    let dir = dir.to_str().expect("the target directory is UTF-8");
    // A replica's first sync starts at once instead of after the default 5 s wait for more
    // replicas to share it.
    let mut all: Vec<&str> = vec!["--dir", dir, "--repl-diskless-sync-delay", "0"];
    all.extend(args.iter().map(String::as_str));
    spawn(port, &all, Some(log)).await
}

fn fresh_dir(dir: &Path) {
    // A leftover nodes.conf would make a new node believe it is still in an old cluster.
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
}

/// What a wait still waits for, for the message when it times out.
struct Waiting(String);

impl<E: std::fmt::Display> From<E> for Waiting {
    fn from(error: E) -> Self {
        Waiting(error.to_string())
    }
}

/// Polls `check` until it succeeds; panics naming `what` and the last reason after `timeout`.
async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, Waiting>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(Waiting(reason)) if Instant::now() >= deadline => {
                panic!("{what} did not happen within {timeout:?}: {reason}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// A command connection to a node on loopback, bounded by [`COMMAND_TIMEOUT`].
fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let connection = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?
        .get_connection_with_timeout(COMMAND_TIMEOUT)?;
    connection.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    connection.set_write_timeout(Some(COMMAND_TIMEOUT))?;
    Ok(connection)
}

/// Whether a command failed only because a signal interrupted its socket read or write. The
/// test process reaps the processes its tests start, so `SIGCHLD` arrives at any time, and a
/// socket with a timeout (`SO_RCVTIMEO`, which every harness connection has) is never restarted
/// after a signal handler, whatever `SA_RESTART` says (signal(7)): the call fails with `EINTR`.
/// redis-rs keeps an I/O error as an `Arc<dyn Error + Send + Sync>` and names that `Arc` as the
/// source, so the `io::Error` is one downcast further in.
fn interrupted(error: &redis::RedisError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| {
            source.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()
        })
        .and_then(|shared| shared.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::Interrupted)
}

/// Runs `commands` on a new connection to node `port`, and again on another new connection
/// (up to [`INTERRUPTED_RETRIES`] times) when a signal interrupted them. `commands` must be
/// safe to repeat: a write and the `WAIT` for it go together, in one call.
pub fn on_node<T>(
    port: u16,
    mut commands: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
) -> redis::RedisResult<T> {
    let mut retries = 0;
    loop {
        match connect(port).and_then(|mut connection| commands(&mut connection)) {
            Err(error) if interrupted(&error) && retries < INTERRUPTED_RETRIES => retries += 1,
            done => return done,
        }
    }
}

/// A node's `INFO replication`.
fn replication_info(port: u16) -> Result<String, Waiting> {
    Ok(on_node(port, |connection| {
        redis::cmd("INFO").arg("replication").query(connection)
    })?)
}

/// The value of `field` in an `INFO`-style `field:value` text.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// The `(major, minor)` of a `redis-server --version` line (`Redis server v=7.0.15 sha=…`).
fn parse_version(line: &str) -> Option<(u32, u32)> {
    let version = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("v="))?;
    let mut parts = version.split('.').map(str::parse::<u32>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// Panics unless the installed redis-server has sharded pub/sub.
fn require_sharded_pubsub() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let output = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run redis-server (apt-get install -y redis-server): {error}")
            });
        let line = String::from_utf8_lossy(&output.stdout);
        let version = parse_version(&line)
            .unwrap_or_else(|| panic!("cannot read redis-server's version from {line:?}"));
        assert!(
            version >= MIN_VERSION,
            "Redis Cluster tests need redis-server >= {}.{} (sharded pub/sub); found {line:?}",
            MIN_VERSION.0,
            MIN_VERSION.1
        );
    });
}

/// The arguments of a cluster node whose bus listens on `bus_port`, listening on and announcing
/// `announce` too when given.
fn cluster_args(bus_port: u16, announce: Option<IpAddr>) -> Vec<String> {
    let node_timeout = NODE_TIMEOUT.as_millis().to_string();
    let bus_port = bus_port.to_string();
    let mut args: Vec<String> = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        &node_timeout,
        "--cluster-port",
        &bus_port,
        // A replica takes over however long it was cut off: tests kill nodes on a busy machine,
        // and a refused promotion would only hang them.
        "--cluster-replica-validity-factor",
        "0",
    ]
    .map(String::from)
    .to_vec();
    if let Some(address) = announce {
        let address = address.to_string();
        // A later `--bind` replaces the default one. Protected mode refuses every client from
        // outside loopback when there is no password; the only other address is a test's own
        // network namespace's.
        args.extend(
            [
                "--bind",
                "127.0.0.1",
                &address,
                "--protected-mode",
                "no",
                "--cluster-announce-ip",
                &address,
            ]
            .map(String::from),
        );
    }
    args
}

/// A range of slots and the nodes (by port) that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    /// The first slot.
    pub start: u16,
    /// The last slot (inclusive).
    pub end: u16,
    /// The primary's port.
    pub primary: u16,
    /// The replicas' ports, sorted.
    pub replicas: Vec<u16>,
}

impl SlotRange {
    /// Whether `slot` is in the range.
    pub fn contains(&self, slot: u16) -> bool {
        (self.start..=self.end).contains(&slot)
    }
}

/// The slot map of a `CLUSTER NODES` reply, sorted by first slot: each primary's slot ranges,
/// with its replicas that no node has flagged failing. (`CLUSTER SLOTS` is no use here: it leaves
/// out replicas whose replication offset is still 0, i.e. every replica of a fresh cluster.)
fn parse_nodes(text: &str) -> Option<Vec<SlotRange>> {
    struct Line<'a> {
        id: &'a str,
        port: u16,
        flags: Vec<&'a str>,
        primary: &'a str,
        slots: Vec<&'a str>,
    }
    let mut lines = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return None;
        }
        // `ip:port@bus[,hostname]`
        let address = fields[1].split(['@', ',']).next()?;
        let port = address.rsplit_once(':')?.1.parse().ok()?;
        lines.push(Line {
            id: fields[0],
            port,
            flags: fields[2].split(',').collect(),
            primary: fields[3],
            slots: fields[8..].to_vec(),
        });
    }
    let failing = |line: &Line| line.flags.iter().any(|flag| flag.starts_with("fail"));
    let mut ranges = Vec::new();
    for primary in lines.iter().filter(|line| line.flags.contains(&"master")) {
        let mut replicas: Vec<u16> = lines
            .iter()
            .filter(|line| line.flags.contains(&"slave") && line.primary == primary.id)
            .filter(|line| !failing(line))
            .map(|line| line.port)
            .collect();
        replicas.sort_unstable();
        // Migration entries (`[slot->-id]`) are not ownership.
        for slots in primary.slots.iter().filter(|slots| !slots.starts_with('[')) {
            let (start, end) = slots.split_once('-').unwrap_or((slots, slots));
            ranges.push(SlotRange {
                start: start.parse().ok()?,
                end: end.parse().ok()?,
                primary: primary.port,
                replicas: replicas.clone(),
            });
        }
    }
    ranges.sort_by_key(|range| range.start);
    Some(ranges)
}

/// How a killed primary's slots came to another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promotion {
    /// The port of the primary that was killed.
    pub killed: u16,
    /// The port of the replica that now serves its slots.
    pub promoted: u16,
    /// From the kill until every live node agreed on the new primary.
    pub took: Duration,
}

/// A local Redis Cluster of three primaries with one replica each.
pub struct RedisCluster {
    nodes: Vec<Node>,
    /// The address every node also listens on and announces, when not only loopback.
    announce: Option<IpAddr>,
}

impl RedisCluster {
    /// Starts six nodes, forms the cluster and waits until it is ready; `test` names the
    /// directories of its files and logs.
    pub async fn start(test: &str) -> RedisCluster {
        Self::form(test, None).await
    }

    /// [`RedisCluster::start`], every node listening on `also` as well as on 127.0.0.1 and
    /// announcing `also` to the others and to clients (`cluster-announce-ip`), so that hubs in
    /// another network namespace (see [`crate::netns`]) reach every node at the address the
    /// cluster gives them.
    pub async fn start_on(test: &str, also: IpAddr) -> RedisCluster {
        Self::form(test, Some(also)).await
    }

    async fn form(test: &str, announce: Option<IpAddr>) -> RedisCluster {
        require_sharded_pubsub();
        let root = target_dir().join("redis-cluster").join(test);
        let log_dir = target_dir().join("test-logs").join(test);
        std::fs::create_dir_all(&log_dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", log_dir.display()));
        let starts = (0..6).map(|i| {
            Node::start(root.join(format!("node-{i}")), &log_dir, true, |_, bus| {
                cluster_args(bus.expect("cluster nodes get a bus port"), announce)
            })
        });
        let cluster = RedisCluster {
            nodes: futures_util::future::join_all(starts).await,
            announce,
        };
        cluster.create(&log_dir).await;
        wait_until("the Redis Cluster becoming ready", READY_TIMEOUT, || {
            cluster.ready().map(|_| ())
        })
        .await;
        cluster
    }

    /// `redis-cli --cluster create` over every node, one replica per primary.
    async fn create(&self, log_dir: &Path) {
        let addresses: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("{}:{}", self.host(), node.port))
            .collect();
        let run = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(CREATE_TIMEOUT, run)
            .await
            .unwrap_or_else(|_| panic!("redis-cli --cluster create ran over {CREATE_TIMEOUT:?}"))
            .unwrap_or_else(|error| {
                panic!("cannot run redis-cli (apt-get install -y redis-tools): {error}")
            });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // Best effort: the log is for reading after a failure.
        let _ = std::fs::write(log_dir.join("redis-cli-create.log"), &text);
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{text}"
        );
    }

    /// The slot map every live node agrees on, once the cluster is whole: every node reports
    /// `cluster_state:ok`, every slot is served by a live primary, and every replica listed is
    /// alive with its link to its primary up.
    fn ready(&self) -> Result<Vec<SlotRange>, Waiting> {
        let mut agreed: Option<Vec<SlotRange>> = None;
        for node in self.nodes.iter().filter(|node| node.alive()) {
            let mut connection = connect(node.port)?;
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut connection)?;
            if info_field(&info, "cluster_state") != Some("ok") {
                return Err(Waiting(format!("node {} is not ok:\n{info}", node.port)));
            }
            let reply: String = redis::cmd("CLUSTER").arg("NODES").query(&mut connection)?;
            let slots = parse_nodes(&reply)
                .ok_or_else(|| Waiting(format!("unreadable CLUSTER NODES {reply:?}")))?;
            match &agreed {
                None => agreed = Some(slots),
                Some(first) if *first == slots => {}
                Some(first) => {
                    return Err(Waiting(format!(
                        "nodes disagree on the slot map: {first:?} and node {}'s {slots:?}",
                        node.port
                    )));
                }
            }
        }
        let slots = agreed.ok_or_else(|| Waiting("no node is alive".into()))?;
        let mut next = 0u32;
        for range in &slots {
            if u32::from(range.start) != next {
                return Err(Waiting(format!("slot {next} is not served: {slots:?}")));
            }
            next = u32::from(range.end) + 1;
            if !self.is_alive(range.primary) {
                return Err(Waiting(format!("{} is a dead primary", range.primary)));
            }
            for replica in &range.replicas {
                if !self.is_alive(*replica) {
                    return Err(Waiting(format!("{replica} is a dead replica")));
                }
                let info = replication_info(*replica)?;
                if info_field(&info, "master_link_status") != Some("up") {
                    return Err(Waiting(format!("replica {replica}'s link is not up")));
                }
            }
        }
        if next != u32::from(SLOTS) {
            return Err(Waiting(format!("slots from {next} are not served")));
        }
        Ok(slots)
    }

    fn is_alive(&self, port: u16) -> bool {
        self.nodes
            .iter()
            .any(|node| node.port == port && node.alive())
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no node of this cluster listens on {port}"))
    }

    /// The ports of the live nodes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.alive())
            .map(|node| node.port)
            .collect()
    }

    /// The address the nodes announce: 127.0.0.1, or the one given to
    /// [`start_on`](Self::start_on).
    pub fn host(&self) -> IpAddr {
        self.announce.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// `redis://{host}:{port}` of every live node ([`host`](Self::host)).
    pub fn urls(&self) -> Vec<String> {
        let host = self.host();
        self.ports()
            .into_iter()
            .map(|port| format!("redis://{host}:{port}"))
            .collect()
    }

    /// A URL of one live node: any node leads a cluster client to the others.
    pub fn url(&self) -> String {
        self.urls()
            .into_iter()
            .next()
            .expect("a node of the cluster is alive")
    }

    /// A command connection to a node, for looking inside.
    pub fn connection(&self, port: u16) -> redis::Connection {
        connect(port).unwrap_or_else(|error| panic!("node {port} accepts a connection: {error}"))
    }

    /// The slot map as the first live node sees it.
    pub fn slots(&self) -> Vec<SlotRange> {
        let port = self.ports()[0];
        let reply: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut self.connection(port))
            .expect("CLUSTER NODES answers");
        parse_nodes(&reply).unwrap_or_else(|| panic!("unreadable CLUSTER NODES {reply:?}"))
    }

    /// The slot of a key (or channel): `CLUSTER KEYSLOT`, so hash tags count as Redis counts them.
    pub fn slot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.connection(self.ports()[0]))
            .expect("CLUSTER KEYSLOT answers")
    }

    /// The range serving `slot`.
    fn range_of(&self, slot: u16) -> SlotRange {
        self.slots()
            .into_iter()
            .find(|range| range.contains(slot))
            .unwrap_or_else(|| panic!("no node serves slot {slot}"))
    }

    /// The port of the primary serving `slot`.
    pub fn primary_of_slot(&self, slot: u16) -> u16 {
        self.range_of(slot).primary
    }

    /// The port of the primary serving `key`.
    pub fn primary_of(&self, key: &str) -> u16 {
        self.primary_of_slot(self.slot(key))
    }

    /// The ports of the replicas serving `slot`.
    pub fn replicas_of_slot(&self, slot: u16) -> Vec<u16> {
        self.range_of(slot).replicas
    }

    /// The ports of the primaries, in slot order.
    pub fn primaries(&self) -> Vec<u16> {
        self.slots()
            .into_iter()
            .map(|range| range.primary)
            .collect()
    }

    /// The process id of a live node (to stop it with SIGSTOP, as a vanished host).
    pub fn pid(&mut self, port: u16) -> Option<u32> {
        self.node_mut(port).child.as_ref().and_then(Child::id)
    }

    /// Kills a node (SIGKILL).
    pub async fn kill(&mut self, port: u16) {
        self.node_mut(port).kill().await;
    }

    /// Waits until a live node other than `killed` serves `slot` and the cluster is whole again;
    /// returns that node's port.
    pub async fn await_promotion(&self, slot: u16, killed: u16) -> u16 {
        wait_until(
            &format!("the promotion of a replica for slot {slot} after killing {killed}"),
            PROMOTION_TIMEOUT,
            || {
                let slots = self.ready()?;
                let range = slots
                    .iter()
                    .find(|range| range.contains(slot))
                    .ok_or_else(|| Waiting(format!("slot {slot} is not served")))?;
                if range.primary == killed {
                    return Err(Waiting(format!("{killed} still serves slot {slot}")));
                }
                Ok(range.primary)
            },
        )
        .await
    }

    /// Kills the primary serving `slot` and waits for its replica's promotion.
    pub async fn fail_over(&mut self, slot: u16) -> Promotion {
        let killed = self.primary_of_slot(slot);
        let started = Instant::now();
        self.kill(killed).await;
        let promoted = self.await_promotion(slot, killed).await;
        Promotion {
            killed,
            promoted,
            took: started.elapsed(),
        }
    }

    /// Starts a killed node again on its ports with its `nodes.conf`; it rejoins as a replica of
    /// whoever took its slots. Returns once the cluster is whole with it.
    pub async fn restart(&mut self, port: u16) {
        let announce = self.announce;
        let node = self.node_mut(port);
        assert!(!node.alive(), "node {port} is running");
        let args = cluster_args(
            node.bus_port.expect("cluster nodes have a bus port"),
            announce,
        );
        let child = spawn_with(port, &node.dir, &args, &node.log)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        node.child = Some(child);
        wait_until(
            &format!("node {port} rejoining the cluster as a replica"),
            READY_TIMEOUT,
            || {
                let slots = self.ready()?;
                if slots.iter().any(|range| range.replicas.contains(&port)) {
                    Ok(())
                } else {
                    Err(Waiting(format!("{port} is not a replica yet: {slots:?}")))
                }
            },
        )
        .await;
    }
}

/// Waits until the replica on `port` finished its sync with its primary.
async fn await_sync(replica: u16) {
    wait_until("the replica's initial sync", READY_TIMEOUT, || {
        let info = replication_info(replica)?;
        match info_field(&info, "master_link_status") {
            Some("up") => Ok(()),
            _ => Err(Waiting(format!("replica {replica}:\n{info}"))),
        }
    })
    .await;
}

/// A standalone primary with one replica, no cluster; failed over by hand.
pub struct RedisPrimaryReplica {
    primary: Node,
    /// `None` once promoted.
    replica: Option<Node>,
    /// The primary that was killed, kept so its log stays where it was.
    killed: Vec<Node>,
    /// Where nodes keep their files, and their logs.
    root: PathBuf,
    log_dir: PathBuf,
}

impl RedisPrimaryReplica {
    /// Starts a primary and a replica of it and waits until the replica is in sync.
    pub async fn start(test: &str) -> RedisPrimaryReplica {
        let root = target_dir().join("redis-cluster").join(test);
        let log_dir = target_dir().join("test-logs").join(test);
        std::fs::create_dir_all(&log_dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", log_dir.display()));
        let primary = Node::start(root.join("primary"), &log_dir, false, |_, _| Vec::new()).await;
        let primary_port = primary.port.to_string();
        let replica = Node::start(root.join("replica"), &log_dir, false, |_, _| {
            ["--replicaof", "127.0.0.1", &primary_port]
                .map(String::from)
                .to_vec()
        })
        .await;
        let pair = RedisPrimaryReplica {
            primary,
            replica: Some(replica),
            killed: Vec::new(),
            root,
            log_dir,
        };
        await_sync(pair.replica_port()).await;
        pair
    }

    /// Starts a new replica of the current primary — after a promotion, as ElastiCache
    /// replaces a failed node — and waits until it is in sync; returns its port.
    pub async fn add_replica(&mut self) -> u16 {
        assert!(self.replica.is_none(), "the pair already has a replica");
        let primary_port = self.primary.port.to_string();
        let dir = self.root.join(format!("replica-{}", self.killed.len()));
        let replica = Node::start(dir, &self.log_dir, false, |_, _| {
            ["--replicaof", "127.0.0.1", &primary_port]
                .map(String::from)
                .to_vec()
        })
        .await;
        let port = replica.port;
        self.replica = Some(replica);
        await_sync(port).await;
        port
    }

    /// The primary's port.
    pub fn primary_port(&self) -> u16 {
        self.primary.port
    }

    /// The replica's port; panics once it was promoted.
    pub fn replica_port(&self) -> u16 {
        self.replica
            .as_ref()
            .expect("the replica has not been promoted")
            .port
    }

    /// `redis://127.0.0.1:{port}/{db}` of the primary.
    pub fn primary_url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.primary.port)
    }

    /// A command connection to the current primary.
    pub fn primary_connection(&self) -> redis::Connection {
        connect(self.primary.port).expect("the primary accepts a connection")
    }

    /// Kills the primary (SIGKILL); the replica keeps serving reads and waits to be promoted.
    pub async fn kill_primary(&mut self) {
        self.primary.kill().await;
    }

    /// Promotes the replica (`REPLICAOF NO ONE`) and waits until it says it is a primary;
    /// returns its port, the new [`primary_port`](Self::primary_port).
    pub async fn promote_replica(&mut self) -> u16 {
        let replica = self.replica_port();
        let () = on_node(replica, |connection| {
            redis::cmd("REPLICAOF")
                .arg("NO")
                .arg("ONE")
                .query(connection)
        })
        .expect("REPLICAOF NO ONE succeeds");
        wait_until("the replica becoming a primary", READY_TIMEOUT, || {
            let info = replication_info(replica)?;
            match info_field(&info, "role") {
                Some("master") => Ok(()),
                role => Err(Waiting(format!("replica {replica} has role {role:?}"))),
            }
        })
        .await;
        let promoted = self.replica.take().expect("checked above");
        let old = std::mem::replace(&mut self.primary, promoted);
        self.killed.push(old);
        replica
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_socket_call_is_told_apart_from_other_failures() {
        let interrupted_io =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::Interrupted));
        assert!(interrupted(&interrupted_io));
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!interrupted(&refused));
        let server = redis::RedisError::from((redis::ErrorKind::Client, "not an I/O error"));
        assert!(!interrupted(&server));
    }

    #[test]
    fn reads_redis_versions() {
        assert_eq!(
            parse_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"),
            Some((7, 0))
        );
        assert_eq!(parse_version("Redis server v=6.2.14 sha=0"), Some((6, 2)));
        assert!(parse_version("Redis server v=6.2.14").unwrap() < MIN_VERSION);
        assert_eq!(parse_version("redis-server: command not found"), None);
    }

    #[test]
    fn reads_info_fields() {
        let info = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n";
        assert_eq!(info_field(info, "role"), Some("slave"));
        assert_eq!(info_field(info, "master_link_status"), Some("up"));
        assert_eq!(info_field(info, "master"), None);
    }

    #[test]
    fn reads_cluster_nodes() {
        let text = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-b2]
b2 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922 16000
c3 127.0.0.1:7002@17002,host-c master,fail - 1 1 3 disconnected
d4 127.0.0.1:7003@17003 slave b2 0 1 2 connected
e5 127.0.0.1:7004@17004 slave a1 0 1 1 connected
f6 127.0.0.1:7005@17005 slave,fail? b2 0 1 2 connected
";
        let range = |start, end, primary, replicas: &[u16]| SlotRange {
            start,
            end,
            primary,
            replicas: replicas.to_vec(),
        };
        assert_eq!(
            parse_nodes(text),
            Some(vec![
                range(0, 5460, 7000, &[7004]),
                range(5461, 10922, 7001, &[7003]),
                range(16000, 16000, 7001, &[7003]),
            ])
        );
        assert_eq!(parse_nodes("garbage"), None);
    }
}
