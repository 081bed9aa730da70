//! Hubs and edges as separate `herald` processes on loopback, with port 0 everywhere.

use crate::process::HeraldProcess;

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

impl Hub {
    /// Starts `herald hub` with the test app.
    pub async fn start(test: &str, name: &str, env: &[(&str, &str)]) -> Self {
        let app = [
            "--app-id",
            APP_ID,
            "--app-key",
            APP_KEY,
            "--app-secret",
            APP_SECRET,
            "--cluster-key",
            CLUSTER_KEY,
        ];
        Self::run(test, name, &app, env).await
    }

    /// Starts `herald hub` with its apps and cluster key from a TOML file only.
    pub async fn start_with_config(test: &str, name: &str, config: &std::path::Path) -> Self {
        let config = config.to_str().expect("a UTF-8 path");
        Self::run(test, name, &["--config", config], &[]).await
    }

    /// Starts `herald hub` on free loopback ports with `settings` added to its arguments.
    async fn run(test: &str, name: &str, settings: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args = vec![
            "hub",
            "--ready-json",
            "--http-listen",
            "127.0.0.1:0",
            "--link-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(settings);
        let process = HeraldProcess::start(test, name, &args, env).await;
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
        [
            "edge",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--hub",
            &self.link,
            "--hub-cert-sha256",
            &self.cert_sha256,
            "--cluster-key",
            cluster_key,
        ]
        .map(String::from)
        .to_vec()
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
        let mut args: Vec<String> = [
            "edge",
            "--ready-json",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--cluster-key",
            CLUSTER_KEY,
        ]
        .map(String::from)
        .to_vec();
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
        let stats = crate::api::Api::new(&self.admin)
            .raw("GET", "/stats", "")
            .await
            .body;
        stats["link"]["hub_id"].as_str().map(str::to_string)
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

/// Hubs linked through one real redis-server, and edges spread over them.
pub struct Region {
    /// The Redis of the region.
    pub redis: crate::redis::RedisServer,
    /// The hubs.
    pub hubs: Vec<Hub>,
    /// The edges; edge `i` prefers hub `i % hubs`.
    pub edges: Vec<Edge>,
}

impl Region {
    /// Starts a redis-server, `hubs` hubs (key prefix `prefix`) and `edges` edges.
    pub async fn start(
        test: &str,
        hubs: usize,
        edges: usize,
        hub_env: &[(&str, &str)],
        edge_env: &[(&str, &str)],
    ) -> Self {
        let redis = crate::redis::RedisServer::start().await;
        let url = redis.url(0);
        let mut env = vec![("HERALD_REDIS__URL", url.as_str())];
        env.extend_from_slice(hub_env);
        let mut started = Vec::new();
        for index in 0..hubs {
            started.push(Hub::start(test, &format!("hub-{index}"), &env).await);
        }
        let mut edge_list = Vec::new();
        for index in 0..edges {
            let edge = Edge::start_in_region(
                test,
                &format!("edge-{index}"),
                &started,
                index % hubs,
                edge_env,
            )
            .await;
            edge_list.push(edge);
        }
        Self {
            redis,
            hubs: started,
            edges: edge_list,
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
