//! Hubs and edges as separate `herald` processes on loopback, with port 0 everywhere: one hub
//! and its edges ([`Cluster`]), hubs through their Redis — one redis-server or a local Redis
//! Cluster ([`RegionRedis`]) — ([`Region`]), and any of them behind one interface ([`Topology`])
//! so a test body runs against each ([`on_both_topologies!`](crate::on_both_topologies),
//! [`on_every_topology!`](crate::on_every_topology)); a region test body runs over either Redis
//! with [`on_every_redis!`](crate::on_every_redis).

use crate::process::{HeraldProcess, Launch};
pub use crate::redis_region::{RedisKind, RegionRedis};

/// The app every test cluster serves.
/// Numeric, as Pusher issues them (the Python SDK accepts no other form).
pub const APP_ID: &str = "424242";
/// Its key.
pub const APP_KEY: &str = "test-key";
/// Its secret.
pub const APP_SECRET: &str = "test-secret";
/// The cluster key of test clusters.
pub const CLUSTER_KEY: &str = "test-cluster-key-0123456789";

/// A running hub.
pub struct Hub {
    /// The process.
    pub process: HeraldProcess,
    /// `host:port` of the HTTP API.
    pub http: String,
    /// `host:port` of the link (UDP).
    pub link: String,
    /// SHA-256 of the link certificate.
    pub cert_sha256: String,
    /// The hub's id (as edges report it in `/stats`).
    pub hub_id: String,
}

/// The flags that give a hub the test app and the test cluster key.
pub const HUB_APP_ARGS: [&str; 8] = [
    "--app-id",
    APP_ID,
    "--app-key",
    APP_KEY,
    "--app-secret",
    APP_SECRET,
    "--cluster-key",
    CLUSTER_KEY,
];

/// `herald edge` on free loopback ports with `cluster_key`, before its hubs and trust.
pub fn edge_base_args(cluster_key: &str) -> Vec<String> {
    [
        "edge",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--cluster-key",
        cluster_key,
    ]
    .map(String::from)
    .to_vec()
}

impl Hub {
    /// Starts `herald hub` with the test app.
    pub async fn start(test: &str, name: &str, env: &[(&str, &str)]) -> Self {
        Self::run(test, name, &HUB_APP_ARGS, env, None).await
    }

    /// Starts `herald hub` with the test app inside `netns`, listening on its address there.
    pub async fn start_in_netns(
        test: &str,
        name: &str,
        env: &[(&str, &str)],
        netns: &crate::netns::Netns,
    ) -> Self {
        Self::run(test, name, &HUB_APP_ARGS, env, Some(netns)).await
    }

    /// Starts `herald hub` with nothing but free ports on its command line: its apps and
    /// cluster key come from `env`.
    pub async fn start_from_env(test: &str, name: &str, env: &[(&str, &str)]) -> Self {
        Self::run(test, name, &[], env, None).await
    }

    /// Starts `herald hub` with the test app and these extra arguments.
    pub async fn start_with_args(test: &str, name: &str, extra: &[String]) -> Self {
        let mut args = HUB_APP_ARGS.to_vec();
        args.extend(extra.iter().map(String::as_str));
        Self::run(test, name, &args, &[], None).await
    }

    /// Starts `herald hub` with its apps and cluster key from a TOML file only.
    pub async fn start_with_config(test: &str, name: &str, config: &std::path::Path) -> Self {
        let config = config.to_str().expect("a UTF-8 path");
        Self::run(test, name, &["--config", config], &[], None).await
    }

    /// Starts `herald hub` on free ports with `settings` added to its arguments: on loopback, or
    /// on the address of `netns` inside it.
    async fn run(
        test: &str,
        name: &str,
        settings: &[&str],
        env: &[(&str, &str)],
        netns: Option<&crate::netns::Netns>,
    ) -> Self {
        let listen = match netns {
            Some(netns) => format!("{}:0", netns.inner_ip()),
            None => "127.0.0.1:0".to_string(),
        };
        let mut args = vec![
            "hub",
            "--ready-json",
            "--http-listen",
            &listen,
            "--link-listen",
            &listen,
        ];
        args.extend_from_slice(settings);
        let launcher = netns.map(|netns| netns.launcher());
        let launcher: &[&str] = launcher.as_ref().map_or(&[], |l| l.as_slice());
        let process = Launch::herald(test, name, &args)
            .under(launcher)
            .env(env)
            .start()
            .await;
        Self {
            http: process.ready_field("http"),
            link: process.ready_field("link"),
            cert_sha256: process.ready_field("cert_sha256"),
            hub_id: process.ready_field("hub_id"),
            process,
        }
    }

    /// An API client for the test app on this hub.
    pub fn api(&self) -> crate::api::Api {
        crate::api::Api::new(&self.http)
    }

    /// The arguments that link an edge to this hub with `cluster_key`.
    pub fn edge_args(&self, cluster_key: &str) -> Vec<String> {
        let mut args = edge_base_args(cluster_key);
        args.extend(
            ["--hub", &self.link, "--hub-cert-sha256", &self.cert_sha256].map(String::from),
        );
        args
    }
}

/// A running edge.
pub struct Edge {
    /// The process.
    pub process: HeraldProcess,
    /// `host:port` of the WebSocket listener.
    pub websocket: String,
    /// `host:port` of the admin listener.
    pub admin: String,
}

impl Edge {
    /// Starts `herald edge` linked to `hub`, and waits until it serves.
    pub async fn start(test: &str, name: &str, hub: &Hub, env: &[(&str, &str)]) -> Self {
        let mut args = hub.edge_args(CLUSTER_KEY);
        args.push("--ready-json".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::run(test, name, &args, env).await
    }

    /// Starts `herald edge` knowing every hub of a region, hub `i` in zone `z{i}`, itself in
    /// zone `z{preferred}` (so it links to that hub first and fails over to the others).
    pub async fn start_in_region(
        test: &str,
        name: &str,
        hubs: &[Hub],
        preferred: usize,
        env: &[(&str, &str)],
    ) -> Self {
        let zone = format!("z{preferred}");
        let mut args = edge_base_args(CLUSTER_KEY);
        args.push("--ready-json".into());
        for (index, hub) in hubs.iter().enumerate() {
            args.extend(["--hub".to_string(), format!("z{index}={}", hub.link)]);
            args.extend(["--hub-cert-sha256".to_string(), hub.cert_sha256.clone()]);
        }
        let mut env = env.to_vec();
        env.push(("HERALD_EDGE__ZONE", &zone));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::run(test, name, &args, &env).await
    }

    async fn run(test: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let process = HeraldProcess::start(test, name, args, env).await;
        Self {
            websocket: process.ready_field("websocket"),
            admin: process.ready_field("admin"),
            process,
        }
    }

    /// The id of the hub this edge is linked to now (from its `/stats`).
    pub async fn linked_hub(&self) -> Option<String> {
        let stats = self.stats().await;
        stats["link"]["hub_id"].as_str().map(str::to_string)
    }

    /// The edge's `/stats` document.
    pub async fn stats(&self) -> serde_json::Value {
        crate::api::Api::new(&self.admin)
            .raw("GET", "/stats", "")
            .await
            .body
    }

    /// The Pusher WebSocket URL of the test app on this edge.
    pub fn url(&self) -> String {
        format!(
            "ws://{}/app/{APP_KEY}?protocol=7&client=herald-tests&version=1",
            self.websocket
        )
    }
}

/// One hub and `edges` edges.
pub struct Cluster {
    /// The hub.
    pub hub: Hub,
    /// The edges.
    pub edges: Vec<Edge>,
}

impl Cluster {
    /// Starts a hub and its edges.
    pub async fn start(test: &str, edges: usize, edge_env: &[(&str, &str)]) -> Self {
        Self::start_with(test, edges, &[], edge_env).await
    }

    /// Starts a hub (with extra environment, e.g. app settings) and its edges.
    pub async fn start_with(
        test: &str,
        edges: usize,
        hub_env: &[(&str, &str)],
        edge_env: &[(&str, &str)],
    ) -> Self {
        let hub = Hub::start(test, "hub", hub_env).await;
        let mut started = Vec::new();
        for index in 0..edges {
            started.push(Edge::start(test, &format!("edge-{index}"), &hub, edge_env).await);
        }
        Self {
            hub,
            edges: started,
        }
    }

    /// An API client for the test app on this cluster's hub.
    pub fn api(&self) -> crate::api::Api {
        crate::api::Api::new(&self.hub.http)
    }
}

/// Hubs linked through their Redis — one redis-server or a local Redis Cluster
/// ([`RegionRedis`]) — and edges spread over them.
pub struct Region {
    /// The name its processes' logs go under (`target/test-logs/<name>/`).
    pub name: String,
    /// The Redis of the region.
    pub redis: RegionRedis,
    /// The hubs.
    pub hubs: Vec<Hub>,
    /// The edges; edge `i` prefers hub `i % hubs`.
    pub edges: Vec<Edge>,
}

impl Region {
    /// Starts a redis-server, `hubs` hubs on it and `edges` edges; logs go under `test`.
    pub async fn start(
        test: &str,
        hubs: usize,
        edges: usize,
        hub_env: &[(&str, &str)],
        edge_env: &[(&str, &str)],
    ) -> Self {
        let redis = RegionRedis::start(RedisKind::Standalone, test).await;
        Self::start_on(test, redis, hubs, edges, hub_env, edge_env).await
    }

    /// Starts a Redis of `kind`, `hubs` hubs on it and `edges` edges; logs go under
    /// `{test}-{kind.label()}` ([`RedisKind::name`]), so both variants of a test
    /// ([`on_every_redis!`](crate::on_every_redis)) run side by side.
    pub async fn start_over(
        kind: RedisKind,
        test: &str,
        hubs: usize,
        edges: usize,
        hub_env: &[(&str, &str)],
        edge_env: &[(&str, &str)],
    ) -> Self {
        let name = kind.name(test);
        let redis = RegionRedis::start(kind, &name).await;
        Self::start_on(&name, redis, hubs, edges, hub_env, edge_env).await
    }

    /// Starts `hubs` hubs on `redis` (its URL first in their environment, then `hub_env`) and
    /// `edges` edges; logs go under `name`.
    pub async fn start_on(
        name: &str,
        redis: RegionRedis,
        hubs: usize,
        edges: usize,
        hub_env: &[(&str, &str)],
        edge_env: &[(&str, &str)],
    ) -> Self {
        let url = redis.url();
        let mut env = vec![("HERALD_REDIS__URL", url.as_str())];
        env.extend_from_slice(hub_env);
        let hubs = start_hubs(name, hubs, &env).await;
        Self::with_edges(name, redis, hubs, edges, edge_env).await
    }

    /// A region of hubs already started on `redis`, with `edges` edges (edge `i` prefers hub
    /// `i % hubs`).
    pub async fn with_edges(
        name: &str,
        redis: RegionRedis,
        hubs: Vec<Hub>,
        edges: usize,
        edge_env: &[(&str, &str)],
    ) -> Self {
        let edges = start_edges(name, &hubs, edges, edge_env).await;
        Self {
            name: name.to_string(),
            redis,
            hubs,
            edges,
        }
    }

    /// One client per edge, each subscribed to `channel`.
    pub async fn subscribers(&self, channel: &str) -> Vec<crate::client::PusherClient> {
        let mut clients = Vec::new();
        for edge in &self.edges {
            let mut client = crate::client::PusherClient::connect(&edge.url()).await;
            client.subscribe(channel).await;
            clients.push(client);
        }
        clients
    }
}

/// Starts `count` hubs `hub-{i}` with the test app and `env` (which names their Redis), one
/// after the other (a hub's first start may set up a shared app store); returns them in order.
pub async fn start_hubs(test: &str, count: usize, env: &[(&str, &str)]) -> Vec<Hub> {
    let mut hubs = Vec::new();
    for index in 0..count {
        hubs.push(Hub::start(test, &format!("hub-{index}"), env).await);
    }
    hubs
}

/// Starts `count` edges `edge-{i}` knowing every one of `hubs`, edge `i` preferring hub
/// `i % hubs` ([`Edge::start_in_region`]), all at once; returns them in order.
pub async fn start_edges(
    test: &str,
    hubs: &[Hub],
    count: usize,
    env: &[(&str, &str)],
) -> Vec<Edge> {
    let names: Vec<String> = (0..count).map(|index| format!("edge-{index}")).collect();
    futures_util::future::join_all(
        names
            .iter()
            .enumerate()
            .map(|(index, name)| Edge::start_in_region(test, name, hubs, index % hubs.len(), env)),
    )
    .await
}

/// The shapes a deployment takes, for tests that must hold in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One hub alone (no Redis) and [`EDGES`] edges.
    OneHub,
    /// Two hubs sharing one redis-server, and [`EDGES`] edges spread over them.
    Region,
    /// Two hubs sharing a local Redis Cluster, and [`EDGES`] edges spread over them.
    ClusterRegion,
}

impl Shape {
    /// `one-hub`, `region` or `cluster-region`: the suffix of a [`Topology`]'s log directory.
    pub fn label(self) -> &'static str {
        match self {
            Shape::OneHub => "one-hub",
            Shape::Region => "region",
            Shape::ClusterRegion => "cluster-region",
        }
    }
}

/// How many edges a [`Topology`] starts, whatever its shape.
pub const EDGES: usize = 3;
/// How many hubs a [`Shape::Region`] topology starts.
pub const REGION_HUBS: usize = 2;

/// A running deployment of either [`Shape`]: one test body, two deployments
/// ([`on_both_topologies!`](crate::on_both_topologies)).
///
/// A body connects its clients to edges by index and asks a hub *other than the one a client's
/// edge is linked to* ([`Topology::other_hub`]): in a region that is the hub that did not see
/// the subscription, which is what a Laravel app behind a load balancer gets; alone, it is the
/// only hub.
pub enum Topology {
    /// One hub and its edges.
    OneHub {
        /// The log directory name: the test's name and the shape.
        name: String,
        /// The hub and its edges.
        cluster: Cluster,
    },
    /// Two hubs through Redis — one redis-server ([`Shape::Region`]) or a local Redis Cluster
    /// ([`Shape::ClusterRegion`]) — and the edges spread over them (edge `i` prefers hub
    /// `i % 2`).
    Region {
        /// The log directory name: the test's name and the shape.
        name: String,
        /// The Redis, the hubs and the edges.
        region: Region,
    },
}

impl Topology {
    /// Starts `shape` for the test `test`.
    pub async fn start(shape: Shape, test: &str) -> Self {
        Self::start_with(shape, test, &[], &[]).await
    }

    /// Starts `shape` with extra environment for every hub and every edge.
    pub async fn start_with(
        shape: Shape,
        test: &str,
        hub_env: &[(&str, &str)],
        edge_env: &[(&str, &str)],
    ) -> Self {
        let name = format!("{test}-{}", shape.label());
        match shape {
            Shape::OneHub => {
                let cluster = Cluster::start_with(&name, EDGES, hub_env, edge_env).await;
                Topology::OneHub { name, cluster }
            }
            Shape::Region | Shape::ClusterRegion => {
                let kind = if shape == Shape::Region {
                    RedisKind::Standalone
                } else {
                    RedisKind::Cluster
                };
                let region =
                    Region::start_over(kind, test, REGION_HUBS, EDGES, hub_env, edge_env).await;
                Topology::Region {
                    name: region.name.clone(),
                    region,
                }
            }
        }
    }

    /// Which shape this is.
    pub fn shape(&self) -> Shape {
        match self {
            Topology::OneHub { .. } => Shape::OneHub,
            Topology::Region { region, .. } => match region.redis.kind() {
                RedisKind::Standalone => Shape::Region,
                RedisKind::Cluster => Shape::ClusterRegion,
            },
        }
    }

    /// The name logs and client scripts go under (`target/test-logs/<name>/`).
    pub fn name(&self) -> &str {
        match self {
            Topology::OneHub { name, .. } | Topology::Region { name, .. } => name,
        }
    }

    /// Every hub.
    pub fn hubs(&self) -> &[Hub] {
        match self {
            Topology::OneHub { cluster, .. } => std::slice::from_ref(&cluster.hub),
            Topology::Region { region, .. } => &region.hubs,
        }
    }

    /// Every edge.
    pub fn edges(&self) -> &[Edge] {
        match self {
            Topology::OneHub { cluster, .. } => &cluster.edges,
            Topology::Region { region, .. } => &region.edges,
        }
    }

    /// Every edge, to kill or stop one.
    pub fn edges_mut(&mut self) -> &mut [Edge] {
        match self {
            Topology::OneHub { cluster, .. } => &mut cluster.edges,
            Topology::Region { region, .. } => &mut region.edges,
        }
    }

    /// A Pusher client connected to edge `edge`.
    pub async fn connect(&self, edge: usize) -> crate::client::PusherClient {
        crate::client::PusherClient::connect(&self.edges()[edge].url()).await
    }

    /// The hub edge `edge` is linked to now (asked from the edge's `/stats`).
    pub async fn hub_of(&self, edge: usize) -> &Hub {
        let linked = self.edges()[edge].linked_hub().await;
        self.hubs()
            .iter()
            .find(|hub| Some(&hub.hub_id) == linked.as_ref())
            .unwrap_or_else(|| panic!("edge {edge} is linked to {linked:?}, not to a hub we run"))
    }

    /// A hub other than the one edge `edge` is linked to: in a region, one that learns of that
    /// edge's clients only through Redis; alone, the only hub.
    pub async fn other_hub(&self, edge: usize) -> &Hub {
        let linked = &self.hub_of(edge).await.hub_id;
        match self {
            Topology::OneHub { cluster, .. } => &cluster.hub,
            Topology::Region { .. } => self
                .hubs()
                .iter()
                .find(|hub| &hub.hub_id != linked)
                .expect("a region has a second hub"),
        }
    }

    /// An API client for the test app on [`other_hub`](Self::other_hub)`(edge)`.
    pub async fn api_for_other_hub(&self, edge: usize) -> crate::api::Api {
        self.other_hub(edge).await.api()
    }

    /// An API client for the test app on the first hub.
    pub fn api(&self) -> crate::api::Api {
        self.hubs()[0].api()
    }
}

/// As [`on_both_topologies!`](crate::on_both_topologies), plus `NAME::cluster_region`: the
/// region over a local Redis Cluster ([`Shape::ClusterRegion`]). Attributes given before `NAME`
/// apply to both region variants.
#[macro_export]
macro_rules! on_every_topology {
    ($(#[$region:meta])* $name:ident) => {
        mod $name {
            #[tokio::test]
            async fn one_hub() {
                super::$name($crate::topology::Shape::OneHub).await;
            }

            #[tokio::test]
            $(#[$region])*
            async fn region() {
                super::$name($crate::topology::Shape::Region).await;
            }

            #[tokio::test]
            $(#[$region])*
            async fn cluster_region() {
                super::$name($crate::topology::Shape::ClusterRegion).await;
            }
        }
    };
}

/// Runs the async test body `async fn NAME(shape: Shape)` (defined beside it) as two tests,
/// `NAME::one_hub` and `NAME::region`; attributes given before `NAME` apply to the region
/// variant only (an `#[ignore = "why"]` while the region falls short).
///
/// ```ignore
/// on_both_topologies!(channel_counts_are_exact);
/// async fn channel_counts_are_exact(shape: Shape) {
///     let topology = Topology::start(shape, "channel_counts_are_exact").await;
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! on_both_topologies {
    ($(#[$region:meta])* $name:ident) => {
        mod $name {
            #[tokio::test]
            async fn one_hub() {
                super::$name($crate::topology::Shape::OneHub).await;
            }

            #[tokio::test]
            $(#[$region])*
            async fn region() {
                super::$name($crate::topology::Shape::Region).await;
            }
        }
    };
}
