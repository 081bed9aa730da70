//! The command-line grammar.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::config::Override;
use crate::config::key::Meta;
use crate::config::keys;

/// `herald --version`: the package version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HERALD_COMMIT"),
    ")"
);

/// Herald: a Pusher-compatible real-time server for Laravel apps and every Pusher client.
#[derive(Debug, Parser)]
#[command(name = "herald", version = VERSION, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a hub: channel state, history, the Pusher HTTP API, the edge link endpoint.
    Hub(HubArgs),
    /// Run an edge: client WebSockets, linked to a hub.
    Edge(EdgeArgs),
    /// Run a hub and an edge in one process, with a default app: the quickest start.
    Dev(DevArgs),
    /// Print a signed curl command for the Pusher HTTP API.
    Sign(commands::sign::SignArgs),
    /// Manage the apps in the app store (app_store.url): list, add, update, remove,
    /// rotate-secret.
    Apps(commands::apps::AppsCommand),
    /// Inspect the configuration.
    Config(commands::config::ConfigCommand),
    /// Make a private CA and certificates it signs (the hub link, private listeners).
    Cert(commands::cert::CertCommand),
    /// Print the Redis endpoint of an ElastiCache replication group.
    RedisEndpoint(commands::redis_endpoint::RedisEndpointArgs),
    /// Health check through a real WebSocket upgrade and `pusher:connection_established`.
    Probe(commands::probe::ProbeArgs),
}

/// Where the app comes from: a configuration file and flags over it.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// App id (overrides app.id / REVERB_APP_ID).
    #[arg(long)]
    pub app_id: Option<String>,
    /// App key (overrides app.key / REVERB_APP_KEY).
    #[arg(long)]
    pub app_key: Option<String>,
    /// App secret (overrides app.secret / REVERB_APP_SECRET).
    #[arg(long)]
    pub app_secret: Option<String>,
}

/// Flags every server command takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The app.
    #[command(flatten)]
    pub app: AppArgs,
    /// Cluster key for link tokens (overrides cluster.key / HERALD_CLUSTER__KEY).
    #[arg(long)]
    pub cluster_key: Option<String>,
    /// Threads that run the process's tasks (runtime.worker_threads; default: the CPU count).
    #[arg(long)]
    pub worker_threads: Option<String>,
    /// Print one JSON line with the bound addresses on stdout once serving.
    #[arg(long)]
    pub ready_json: bool,
    /// Check the configuration (file, environment, flags) and exit without serving: 0 and
    /// `configuration ok`, or 64 naming every bad key.
    #[arg(long)]
    pub check: bool,
}

/// An edge's listening addresses.
#[derive(Debug, Args)]
pub struct EdgeListenArgs {
    /// WebSocket address (edge.listen); port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin address for /up and /stats (edge.admin_listen).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
}

/// `herald hub` flags.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// HTTP API address (hub.http_listen); port 0 picks a free port.
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// QUIC link address, UDP (hub.link_listen).
    #[arg(long)]
    pub link_listen: Option<SocketAddr>,
    /// Link certificate chain, PEM (hub.tls_cert).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// Link private key, PEM (hub.tls_key).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Join a region of hubs through this Redis (redis.url).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Prefix of every Redis key and channel (redis.prefix).
    #[arg(long)]
    pub redis_prefix: Option<String>,
}

/// `herald edge` flags.
#[derive(Debug, Args)]
pub struct EdgeArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Listening addresses.
    #[command(flatten)]
    pub addresses: EdgeListenArgs,
    /// A hub link address host:port (edge.hubs); repeat for several.
    #[arg(long = "hub", value_name = "HOST:PORT")]
    pub hubs: Vec<String>,
    /// CA certificate the hub certificates chain to, PEM (edge.hub_ca).
    #[arg(long)]
    pub hub_ca: Option<PathBuf>,
    /// SHA-256 pin of a hub certificate (edge.hub_cert_sha256); repeat for several.
    #[arg(long = "hub-cert-sha256", value_name = "HEX")]
    pub hub_cert_sha256: Vec<String>,
}

/// `herald dev` flags. Addresses default to loopback: 8080 (WebSocket), 9080 (admin), 8081 (API).
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Listening addresses of the edge.
    #[command(flatten)]
    pub addresses: EdgeListenArgs,
    /// HTTP API address.
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// Run a local region of this many hub processes instead (needs --redis above 1). Hub i's
    /// API listens on the --http-listen port + 2i, edge i's WebSocket on the --listen port + 2i
    /// and its /up on the --admin-listen port + i: 8081, 8083… / 8080, 8082… / 9080, 9081….
    #[arg(long, default_value_t = 1)]
    pub hubs: usize,
    /// With --hubs, or alone: run this many edge processes.
    #[arg(long, default_value_t = 1)]
    pub edges: usize,
    /// Redis URL the hubs of the local region share.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
}

/// Turns `(key, flag, value)` triples into overrides, skipping flags not given.
pub fn overrides_of<const N: usize>(
    items: [(&'static Meta, &'static str, Option<String>); N],
) -> Vec<Override> {
    items
        .into_iter()
        .filter_map(|(key, flag, value)| value.map(|value| Override { key, value, flag }))
        .collect()
}

fn text<T: ToString>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(ToString::to_string)
}

fn path(value: &Option<PathBuf>) -> Option<String> {
    value.as_ref().map(|p| p.display().to_string())
}

fn list(values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| values.join(","))
}

impl AppArgs {
    /// The configuration keys these flags set.
    pub fn overrides(&self) -> Vec<Override> {
        overrides_of([
            (&keys::APP_ID.meta, "--app-id", self.app_id.clone()),
            (&keys::APP_KEY.meta, "--app-key", self.app_key.clone()),
            (
                &keys::APP_SECRET.meta,
                "--app-secret",
                self.app_secret.clone(),
            ),
        ])
    }
}

impl CommonArgs {
    /// The configuration keys these flags set.
    pub fn overrides(&self) -> Vec<Override> {
        let mut all = self.app.overrides();
        all.extend(overrides_of([
            (
                &keys::CLUSTER_KEY.meta,
                "--cluster-key",
                self.cluster_key.clone(),
            ),
            (
                &keys::RUNTIME_WORKER_THREADS.meta,
                "--worker-threads",
                self.worker_threads.clone(),
            ),
        ]));
        all
    }
}

impl EdgeListenArgs {
    /// The configuration keys these flags set.
    pub fn overrides(&self) -> Vec<Override> {
        overrides_of([
            (&keys::EDGE_LISTEN.meta, "--listen", text(&self.listen)),
            (
                &keys::EDGE_ADMIN_LISTEN.meta,
                "--admin-listen",
                text(&self.admin_listen),
            ),
        ])
    }
}

impl HubArgs {
    /// The configuration keys these flags set.
    pub fn overrides(&self) -> Vec<Override> {
        let mut all = self.common.overrides();
        all.extend(overrides_of([
            (
                &keys::HUB_HTTP_LISTEN.meta,
                "--http-listen",
                text(&self.http_listen),
            ),
            (
                &keys::HUB_LINK_LISTEN.meta,
                "--link-listen",
                text(&self.link_listen),
            ),
            (&keys::HUB_TLS_CERT.meta, "--tls-cert", path(&self.tls_cert)),
            (&keys::HUB_TLS_KEY.meta, "--tls-key", path(&self.tls_key)),
            (&keys::REDIS_URL.meta, "--redis", self.redis.clone()),
            (
                &keys::REDIS_PREFIX.meta,
                "--redis-prefix",
                self.redis_prefix.clone(),
            ),
        ]));
        all
    }
}

impl EdgeArgs {
    /// The configuration keys these flags set.
    pub fn overrides(&self) -> Vec<Override> {
        let mut all = self.common.overrides();
        all.extend(self.addresses.overrides());
        all.extend(overrides_of([
            (&keys::EDGE_HUBS.meta, "--hub", list(&self.hubs)),
            (&keys::EDGE_HUB_CA.meta, "--hub-ca", path(&self.hub_ca)),
            (
                &keys::EDGE_HUB_CERT_SHA256.meta,
                "--hub-cert-sha256",
                list(&self.hub_cert_sha256),
            ),
        ]));
        all
    }
}

impl DevArgs {
    /// The configuration keys these flags set.
    pub fn overrides(&self) -> Vec<Override> {
        let mut all = self.common.overrides();
        all.extend(self.addresses.overrides());
        all.extend(overrides_of([(
            &keys::HUB_HTTP_LISTEN.meta,
            "--http-listen",
            text(&self.http_listen),
        )]));
        all
    }
}
