//! A sharded pub/sub subscriber for Redis Cluster (`SSUBSCRIBE`, Redis ≥ 7): one connection per
//! primary that owns a wanted channel, following slot moves, failovers and lost connections.
//!
//! The region's bus uses it on a cluster ([`super::bus::run_cluster`]); it is also tested on its
//! own against a local Redis Cluster (`tests/tests/sharded_subscriber`). It exists because redis-rs 1.8's
//! `ClusterConnection::ssubscribe` cannot be used: that one treats the server's unsolicited `sunsubscribe`
//! push (sent when a slot moves away) as a reply — forgetting the subscription and, when a
//! request is in flight, handing the push to it as its answer — and it re-homes a dead primary's
//! subscriptions only after some unrelated command fails, with no signal when they are live.
//! This layer keeps redis-rs for everything it does well (connections, TLS, AUTH, RESP3 pushes,
//! the cluster's slot map) and adds only the bookkeeping of which channel lives where.
//!
//! # How
//! - One task owns everything: the slot map (`CLUSTER SHARDS`, asked through a
//!   `ClusterConnection` used for nothing else here), one RESP3 `MultiplexedConnection` per
//!   primary holding wanted channels (built from the configured `ConnectionInfo`, so TLS, AUTH and
//!   timeouts stay the crate's), and the set of wanted channels.
//! - The **pushes are the truth**: a channel is live when its `ssubscribe` push arrived from the
//!   node it was sent to; command replies only report errors.
//! - A channel is **re-homed** — topology refreshed, `SSUBSCRIBE` at the current owner — when its
//!   node's connection drops, when a `sunsubscribe` push arrives that no `SUNSUBSCRIBE` of ours
//!   asked for (then the whole node connection is replaced, since a reply may have been
//!   mismatched on it), or when subscribing fails.
//! - Every time channels become live — first subscription or re-homed — they are reported in
//!   [`Heard::Live`]: from then on their messages arrive, and whatever was published before must
//!   be read from history (pub/sub is at-most-once). That is the registry's "attach, then fetch"
//!   and its catch-up after a reconnect, per channel.
//! - Pushes from all node connections share one bounded queue. The connection's push callback
//!   must not block, so when the queue is full the push is dropped **and recorded**: the task
//!   then reports every live channel as [`Heard::Live`] again (back-fill covers the loss).
//!
//! # Left to do
//! - The task awaits its I/O inline (connecting, `SSUBSCRIBE` pipelines, pings): one slow node
//!   delays the others. Give each node link its own task and keep this one deciding.
//! - Re-homes are counted by the bus (`herald_hub_redis_shard_rehomes_total`); overflows and
//!   settle time are not measured yet.
//! - Subscribes on primaries only; replicas of the shard would work too (messages travel the
//!   shard) and could take the load off primaries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ProtocolVersion, PushInfo, PushKind,
    Value,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pushes waiting for the task, from all node connections together.
const PUSH_QUEUE: usize = 4096;
/// Want/unwant requests waiting for the task.
const COMMAND_QUEUE: usize = 1024;
/// How often channels without a home are tried again, and connections are pinged.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// How often node connections are pinged to notice a silent peer.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// The bound on connecting to a node and on each command.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The number of slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// What the subscriber hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A message on a wanted channel.
    Message {
        /// The shard channel.
        channel: String,
        /// The payload.
        payload: Vec<u8>,
    },
    /// These channels are subscribed from now on; whatever was published on them before must
    /// be read from history (after the last sequence seen).
    Live {
        /// The channels, each wanted.
        channels: Vec<String>,
    },
}

/// Whether every wanted channel is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Every wanted channel is subscribed at its slot's owner.
    Live,
    /// Some wanted channel is being (re)subscribed.
    Settling,
}

#[derive(Debug)]
enum Command {
    Want(String),
    Unwant(String),
}

/// A handle to the subscriber task.
#[derive(Debug, Clone)]
pub struct Subscriber {
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<State>,
}

impl Subscriber {
    /// Wants a channel: it will be subscribed (and re-subscribed) until unwanted.
    pub async fn want(&self, channel: impl Into<String>) {
        // The task only stops at shutdown; a request after that has nothing left to do.
        let _ = self.commands.send(Command::Want(channel.into())).await;
    }

    /// No longer wants a channel.
    pub async fn unwant(&self, channel: impl Into<String>) {
        let _ = self.commands.send(Command::Unwant(channel.into())).await;
    }

    /// The current state, to watch.
    pub fn state(&self) -> watch::Receiver<State> {
        self.state.clone()
    }
}

/// The slot of a key or channel: CRC16 (XMODEM) of its hash tag, as Redis Cluster computes it.
pub fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &bytes[open + 1..];
            let close = rest.iter().position(|b| *b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(bytes);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS
}

/// A node, as the cluster announces it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
}

/// Which primary serves each range of slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotMap {
    ranges: Vec<(u16, u16, Node)>,
}

impl SlotMap {
    /// The primary serving `slot`, if a healthy one does.
    pub fn owner(&self, slot: u16) -> Option<&Node> {
        self.ranges
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, node)| node)
    }

    /// Every primary serving slots, each once, in slot order.
    pub fn primaries(&self) -> Vec<Node> {
        let mut nodes: Vec<Node> = Vec::new();
        for (_, _, node) in &self.ranges {
            if !nodes.contains(node) {
                nodes.push(node.clone());
            }
        }
        nodes
    }

    /// Reads a `CLUSTER SHARDS` reply (RESP2 or RESP3): each shard's slot ranges and its healthy
    /// primary (`role` master, `health` online), named by `endpoint` (the address or host name
    /// the cluster tells clients to use) and `port` (or `tls-port`). A node that names no
    /// endpoint (`""` — a node that never met another, as in a cluster of one — or `"?"`) is
    /// reached at its `ip`, and without one at `unnamed_host`: the host of the configured URL,
    /// as Redis tells clients to do.
    pub fn from_shards(reply: &Value, unnamed_host: &str) -> Option<SlotMap> {
        let mut ranges = Vec::new();
        for shard in as_list(reply)? {
            let shard = fields(shard)?;
            let slots = as_list(shard.get("slots")?)?;
            let primary = as_list(shard.get("nodes")?)?.iter().find_map(|node| {
                let node = fields(node).filter(|node| {
                    text(node.get("role")) == Some("master")
                        && text(node.get("health")) == Some("online")
                })?;
                let port = int(node.get("tls-port")).or_else(|| int(node.get("port")))?;
                let named =
                    |field: &str| text(node.get(field)).filter(|host| !matches!(*host, "" | "?"));
                let host = named("endpoint")
                    .or_else(|| named("ip"))
                    .unwrap_or(unnamed_host);
                Some(Node {
                    host: host.to_owned(),
                    port: u16::try_from(port).ok()?,
                })
            });
            let Some(primary) = primary else { continue };
            for pair in slots.chunks(2) {
                let [start, end] = pair else { return None };
                let start = u16::try_from(int(Some(start))?).ok()?;
                let end = u16::try_from(int(Some(end))?).ok()?;
                ranges.push((start, end, primary.clone()));
            }
        }
        Some(SlotMap { ranges })
    }
}

fn as_list(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// The named fields of a RESP3 map or a RESP2 flat array of name/value pairs.
struct Fields<'a>(HashMap<String, &'a Value>);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).copied()
    }
}

/// A RESP3 map, or a RESP2 flat array of name/value pairs.
fn fields(value: &Value) -> Option<Fields<'_>> {
    let pairs: Vec<(&Value, &Value)> = match value {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    pairs
        .into_iter()
        .map(|(k, v)| Some((text(Some(k))?.to_owned(), v)))
        .collect::<Option<HashMap<_, _>>>()
        .map(Fields)
}

fn text(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

fn int(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Int(n) => Some(*n),
        other => text(Some(other))?.parse().ok(),
    }
}

/// A push from a node connection of one generation.
struct Tagged {
    node: Node,
    generation: u64,
    push: PushInfo,
}

/// The push callback of one node connection: never blocks, records overflow.
struct PushSink {
    node: Node,
    generation: u64,
    queue: mpsc::Sender<Tagged>,
    overflowed: Arc<AtomicBool>,
}

impl AsyncPushSender for PushSink {
    fn send(&self, push: PushInfo) -> Result<(), SendError> {
        let tagged = Tagged {
            node: self.node.clone(),
            generation: self.generation,
            push,
        };
        match self.queue.try_send(tagged) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Release);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError),
        }
    }
}

/// One node's connection.
struct NodeLink {
    generation: u64,
    connection: MultiplexedConnection,
}

/// Where a wanted channel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Home {
    /// Not subscribed anywhere: to (re)subscribe.
    Homeless,
    /// `SSUBSCRIBE` sent to this node; live once its push arrives.
    Pending(Node),
    /// Subscribed at this node.
    Live(Node),
}

/// Starts the subscriber on `tracker`; what it hears goes to `heard`. It stops at `shutdown`.
pub fn spawn(
    control: ClusterConnection,
    template: ConnectionInfo,
    heard: mpsc::Sender<Heard>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Subscriber {
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let (state_tx, state) = watch::channel(State::Live);
    let (push_tx, pushes) = mpsc::channel(PUSH_QUEUE);
    let task = Task {
        control,
        template,
        heard,
        state: state_tx,
        push_tx,
        overflowed: Arc::new(AtomicBool::new(false)),
        slots: SlotMap::default(),
        links: HashMap::new(),
        generation: 0,
        wanted: HashMap::new(),
        unsubscribing: HashMap::new(),
    };
    tracker.spawn(task.run(commands, pushes, shutdown));
    Subscriber {
        commands: commands_tx,
        state,
    }
}

struct Task {
    control: ClusterConnection,
    template: ConnectionInfo,
    heard: mpsc::Sender<Heard>,
    state: watch::Sender<State>,
    push_tx: mpsc::Sender<Tagged>,
    overflowed: Arc<AtomicBool>,
    slots: SlotMap,
    links: HashMap<Node, NodeLink>,
    generation: u64,
    wanted: HashMap<String, Home>,
    /// `SUNSUBSCRIBE`s sent and not yet confirmed, per node and channel.
    unsubscribing: HashMap<(Node, String), u32>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut pushes: mpsc::Receiver<Tagged>,
        shutdown: CancellationToken,
    ) {
        let mut retry = tokio::time::interval(RETRY_INTERVAL);
        let mut ping = tokio::time::interval(PING_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                command = commands.recv() => match command {
                    Some(Command::Want(channel)) => {
                        if let std::collections::hash_map::Entry::Vacant(entry) =
                            self.wanted.entry(channel)
                        {
                            entry.insert(Home::Homeless);
                            self.home_the_homeless().await;
                        }
                    }
                    Some(Command::Unwant(channel)) => self.unwant(channel).await,
                    None => return,
                },
                Some(tagged) = pushes.recv() => self.on_push(tagged).await,
                _ = retry.tick() => self.home_the_homeless().await,
                _ = ping.tick() => self.ping().await,
            }
            if self.overflowed.swap(false, Ordering::AcqRel) {
                // A push was dropped, of some channel: every live channel may have a hole.
                let live: Vec<String> = self
                    .wanted
                    .iter()
                    .filter(|(_, home)| matches!(home, Home::Live(_)))
                    .map(|(channel, _)| channel.clone())
                    .collect();
                self.report(Heard::Live { channels: live }).await;
            }
            let settled = self
                .wanted
                .values()
                .all(|home| matches!(home, Home::Live(_)));
            self.state.send_if_modified(|state| {
                let next = if settled {
                    State::Live
                } else {
                    State::Settling
                };
                std::mem::replace(state, next) != next
            });
        }
    }

    async fn report(&self, heard: Heard) {
        if matches!(&heard, Heard::Live { channels } if channels.is_empty()) {
            return;
        }
        // Awaiting here is the back-pressure: pushes queue up meanwhile, and an overflow turns
        // into a gap rather than a silent loss.
        let _ = self.heard.send(heard).await;
    }

    async fn unwant(&mut self, channel: String) {
        let Some(home) = self.wanted.remove(&channel) else {
            return;
        };
        if let Home::Pending(node) | Home::Live(node) = home
            && let Some(link) = self.links.get_mut(&node)
        {
            *self
                .unsubscribing
                .entry((node.clone(), channel.clone()))
                .or_default() += 1;
            let sent: redis::RedisResult<Value> = redis::cmd("SUNSUBSCRIBE")
                .arg(&channel)
                .query_async(&mut link.connection)
                .await;
            if sent.is_err() {
                self.drop_link(&node);
            }
        }
        self.close_idle_links();
    }

    async fn on_push(
        &mut self,
        Tagged {
            node,
            generation,
            push,
        }: Tagged,
    ) {
        let current = self
            .links
            .get(&node)
            .is_some_and(|link| link.generation == generation);
        if !current {
            return; // from a connection already replaced
        }
        let channel = push.data.first().and_then(|value| text(Some(value)));
        match (push.kind, channel) {
            (PushKind::SMessage, Some(channel)) => {
                if matches!(self.wanted.get(channel), Some(Home::Live(_))) {
                    let payload = match push.data.get(1) {
                        Some(Value::BulkString(bytes)) => bytes.clone(),
                        _ => return,
                    };
                    let channel = channel.to_owned();
                    self.report(Heard::Message { channel, payload }).await;
                }
            }
            (PushKind::SSubscribe, Some(channel)) => {
                let channel = channel.to_owned();
                if self.wanted.get(&channel) == Some(&Home::Pending(node.clone())) {
                    self.wanted.insert(channel.clone(), Home::Live(node));
                    self.report(Heard::Live {
                        channels: vec![channel],
                    })
                    .await;
                }
            }
            (PushKind::SUnsubscribe, Some(channel)) => {
                let asked = (node.clone(), channel.to_owned());
                if let Some(count) = self.unsubscribing.get_mut(&asked) {
                    *count -= 1;
                    if *count == 0 {
                        self.unsubscribing.remove(&asked);
                    }
                    return;
                }
                let channel = asked.1;
                if self.wanted.contains_key(&channel) {
                    // The slot moved away (or the node was demoted): nobody asked for this. The
                    // connection may have matched it to a reply; replace it.
                    self.drop_link(&node);
                    self.home_the_homeless().await;
                }
            }
            (PushKind::Disconnection, _) => {
                self.drop_link(&node);
                self.home_the_homeless().await;
            }
            _ => {}
        }
    }

    /// Forgets a node's connection; its channels become homeless.
    fn drop_link(&mut self, node: &Node) {
        self.links.remove(node);
        for home in self.wanted.values_mut() {
            if matches!(home, Home::Pending(n) | Home::Live(n) if n == node) {
                *home = Home::Homeless;
            }
        }
        self.unsubscribing.retain(|(n, _), _| n != node);
    }

    fn close_idle_links(&mut self) {
        let used: HashSet<&Node> = self
            .wanted
            .values()
            .filter_map(|home| match home {
                Home::Pending(node) | Home::Live(node) => Some(node),
                Home::Homeless => None,
            })
            .collect();
        let idle: Vec<Node> = self
            .links
            .keys()
            .filter(|node| !used.contains(node))
            .cloned()
            .collect();
        for node in idle {
            self.links.remove(&node);
        }
    }

    async fn refresh_slots(&mut self) -> bool {
        let shards = self
            .control
            .route_command(
                redis::cmd("CLUSTER").arg("SHARDS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await;
        let unnamed_host = url_host(&self.template);
        match shards
            .ok()
            .and_then(|reply| SlotMap::from_shards(&reply, unnamed_host))
        {
            Some(slots) => {
                self.slots = slots;
                true
            }
            None => false,
        }
    }

    /// Subscribes every homeless channel at its slot's current owner.
    async fn home_the_homeless(&mut self) {
        let homeless: Vec<String> = self
            .wanted
            .iter()
            .filter(|(_, home)| **home == Home::Homeless)
            .map(|(channel, _)| channel.clone())
            .collect();
        if homeless.is_empty() || !self.refresh_slots().await {
            return;
        }
        let mut by_node: HashMap<Node, Vec<String>> = HashMap::new();
        for channel in homeless {
            if let Some(owner) = self.slots.owner(slot(&channel)) {
                by_node.entry(owner.clone()).or_default().push(channel);
            }
        }
        for (node, channels) in by_node {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for channel in &channels {
                pipe.cmd("SSUBSCRIBE").arg(channel);
            }
            let Some(link) = self.link(&node).await else {
                continue;
            };
            let sent: redis::RedisResult<Vec<redis::RedisResult<Value>>> =
                pipe.query_async(&mut link.connection).await;
            match sent {
                // Live once each channel's push arrives (the task reads pushes after this).
                Ok(replies) => {
                    for (channel, reply) in channels.into_iter().zip(replies) {
                        // MOVED: the slot map was stale; tried again at the next round.
                        let home = if reply.is_err() {
                            Home::Homeless
                        } else {
                            Home::Pending(node.clone())
                        };
                        self.wanted.insert(channel, home);
                    }
                }
                Err(_) => self.drop_link(&node),
            }
        }
    }

    /// The connection to `node`, opened if needed.
    async fn link(&mut self, node: &Node) -> Option<&mut NodeLink> {
        if !self.links.contains_key(node) {
            self.generation += 1;
            let sink = PushSink {
                node: node.clone(),
                generation: self.generation,
                queue: self.push_tx.clone(),
                overflowed: self.overflowed.clone(),
            };
            let info = node_info(&self.template, node);
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(IO_TIMEOUT))
                .set_response_timeout(Some(IO_TIMEOUT))
                .set_push_sender(sink);
            let connection = redis::Client::open(info)
                .ok()?
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .ok()?;
            self.links.insert(
                node.clone(),
                NodeLink {
                    generation: self.generation,
                    connection,
                },
            );
        }
        self.links.get_mut(node)
    }

    async fn ping(&mut self) {
        let nodes: Vec<Node> = self.links.keys().cloned().collect();
        for node in nodes {
            let Some(link) = self.links.get_mut(&node) else {
                continue;
            };
            let pong: redis::RedisResult<Value> =
                redis::cmd("PING").query_async(&mut link.connection).await;
            if pong.is_err() {
                self.drop_link(&node);
            }
        }
    }
}

/// The connection settings of `node`: the template's (TLS, AUTH, protocol), with the node's
/// address.
pub fn node_address(template: &ConnectionInfo, node: &Node) -> ConnectionInfo {
    let addr = match template.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: node.host.clone(),
            port: node.port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(node.host.clone(), node.port),
    };
    template.clone().set_addr(addr)
}

/// The host of the configured URL (`template`'s address).
fn url_host(template: &ConnectionInfo) -> &str {
    match template.addr() {
        ConnectionAddr::TcpTls { host, .. } | ConnectionAddr::Tcp(host, _) => host,
        _ => "localhost",
    }
}

/// The connection settings of `node`: the template's, with the node's address and RESP3.
fn node_info(template: &ConnectionInfo, node: &Node) -> ConnectionInfo {
    let info = node_address(template, node);
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    info.set_redis_settings(settings)
}

/// Every primary the cluster names now (`CLUSTER SHARDS`, asked of any node `control` knows;
/// tried a few times, since a dead node may be the one asked); empty when none answers. A node
/// that names no address is taken to be at the host of `template` (the configured URL).
pub async fn primaries(control: &mut ClusterConnection, template: &ConnectionInfo) -> Vec<Node> {
    for _ in 0..3 {
        let shards = control
            .route_command(
                redis::cmd("CLUSTER").arg("SHARDS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await;
        let parsed = shards
            .ok()
            .and_then(|reply| SlotMap::from_shards(&reply, url_host(template)));
        if let Some(slots) = parsed {
            return slots.primaries();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_hash_tags() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot("foo{}{bar}"), slot("foo{}{bar}"));
        assert_eq!(
            slot("{}x"),
            crc16::State::<crc16::XMODEM>::calculate(b"{}x") % SLOTS
        );
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// One shard of a `CLUSTER SHARDS` reply, as RESP2 flat arrays of names and values.
    fn shard(slots: &[i64], nodes: &[(&str, i64, &str, &str)]) -> Value {
        let nodes = nodes
            .iter()
            .map(|(endpoint, port, role, health)| {
                Value::Array(vec![
                    bulk("endpoint"),
                    bulk(endpoint),
                    bulk("port"),
                    Value::Int(*port),
                    bulk("role"),
                    bulk(role),
                    bulk("health"),
                    bulk(health),
                ])
            })
            .collect();
        Value::Array(vec![
            bulk("slots"),
            Value::Array(slots.iter().map(|s| Value::Int(*s)).collect()),
            bulk("nodes"),
            Value::Array(nodes),
        ])
    }

    fn node(host: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn a_slot_map_names_each_ranges_healthy_primary() {
        let reply = Value::Array(vec![
            shard(
                &[0, 5460, 16000, 16383],
                &[
                    ("10.0.0.1", 7000, "master", "online"),
                    ("10.0.0.4", 7003, "replica", "online"),
                ],
            ),
            shard(
                &[5461, 10922],
                &[
                    ("10.0.0.2", 7001, "master", "fail"),
                    ("10.0.0.5", 7004, "master", "online"),
                ],
            ),
            // A shard whose primary is not healthy serves nothing (yet): its slots are homeless.
            shard(&[10923, 15999], &[("10.0.0.3", 7002, "master", "loading")]),
        ]);
        let map = SlotMap::from_shards(&reply, "url.example").expect("a readable reply");
        assert_eq!(map.owner(0), Some(&node("10.0.0.1", 7000)));
        assert_eq!(map.owner(16383), Some(&node("10.0.0.1", 7000)));
        assert_eq!(map.owner(5461), Some(&node("10.0.0.5", 7004)));
        assert_eq!(map.owner(12000), None);
    }

    #[test]
    fn a_node_that_names_no_endpoint_is_reached_at_its_ip_or_the_urls_host() {
        let reply = Value::Array(vec![
            // A node that never met another (a cluster of one) names neither endpoint nor ip.
            shard(&[0, 5000], &[("", 7000, "master", "online")]),
            shard(&[5001, 16383], &[("?", 7001, "master", "online")]),
        ]);
        let map = SlotMap::from_shards(&reply, "url.example").expect("a readable reply");
        assert_eq!(map.owner(0), Some(&node("url.example", 7000)));
        assert_eq!(map.owner(6000), Some(&node("url.example", 7001)));

        let with_ip = Value::Array(vec![Value::Array(vec![
            bulk("slots"),
            Value::Array(vec![Value::Int(0), Value::Int(16383)]),
            bulk("nodes"),
            Value::Array(vec![Value::Array(vec![
                bulk("endpoint"),
                bulk("?"),
                bulk("ip"),
                bulk("10.0.0.7"),
                bulk("port"),
                Value::Int(7002),
                bulk("role"),
                bulk("master"),
                bulk("health"),
                bulk("online"),
            ])]),
        ])]);
        let map = SlotMap::from_shards(&with_ip, "url.example").expect("a readable reply");
        assert_eq!(map.owner(1), Some(&node("10.0.0.7", 7002)));
    }

    #[test]
    fn a_slot_map_reads_resp3_maps_and_prefers_the_tls_port() {
        let node_map = Value::Map(vec![
            (bulk("endpoint"), bulk("node-a")),
            (bulk("port"), Value::Int(6379)),
            (bulk("tls-port"), Value::Int(6380)),
            (bulk("role"), bulk("master")),
            (bulk("health"), bulk("online")),
        ]);
        let reply = Value::Array(vec![Value::Map(vec![
            (
                bulk("slots"),
                Value::Array(vec![Value::Int(0), Value::Int(16383)]),
            ),
            (bulk("nodes"), Value::Array(vec![node_map])),
        ])]);
        let map = SlotMap::from_shards(&reply, "url.example").expect("a readable reply");
        assert_eq!(map.owner(8000), Some(&node("node-a", 6380)));
    }

    #[test]
    fn an_unreadable_shards_reply_is_no_map() {
        assert_eq!(SlotMap::from_shards(&bulk("nonsense"), "url.example"), None);
        let odd = Value::Array(vec![shard(&[0], &[("a", 1, "master", "online")])]);
        assert_eq!(
            SlotMap::from_shards(&odd, "url.example"),
            None,
            "a range without its end"
        );
    }

    #[test]
    fn node_connections_keep_the_templates_tls_and_speak_resp3() {
        let template: ConnectionInfo = "rediss://user:pass@configuration.example:6379/0"
            .parse()
            .expect("a URL");
        let info = node_info(&template, &node("10.0.0.9", 7009));
        assert!(matches!(
            info.addr(),
            ConnectionAddr::TcpTls { host, port: 7009, .. } if host == "10.0.0.9"
        ));
        assert_eq!(info.redis_settings().protocol(), ProtocolVersion::RESP3);
        assert_eq!(info.redis_settings().username(), Some("user"));
        let plain: ConnectionInfo = "redis://127.0.0.1:6379".parse().expect("a URL");
        assert!(matches!(
            node_info(&plain, &node("127.0.0.1", 7001)).addr(),
            ConnectionAddr::Tcp(host, 7001) if host == "127.0.0.1"
        ));
    }
}
