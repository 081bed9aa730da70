//! Starting and stopping a hub: the registry, the link endpoint and the HTTP API, on listeners
//! the caller bound.

use std::sync::Arc;

use quinn::{Endpoint, EndpointConfig, TokioRuntime, TransportConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, ApiRates, ApiState};
use crate::cluster::{Cluster, ClusterSetup};
use crate::config::HubConfig;
use crate::connections::Connections;
use crate::console::{Console, ConsoleFeed, ConsoleState};
use crate::http::HttpServer;
use crate::link::{self, LinkContext, TlsConfigError};
use crate::metrics::Render;
use crate::region::relay::NoRelay;
use crate::region::{self, Online, Pending, Relay, Retention, Store, memory};
use crate::registry::{self, Outlets, RegionPort, Registry};
use crate::stats::HubStats;
use crate::watchlist::{self, WatchlistRegion};
use crate::webhooks;

/// The region as the rest of the hub uses it, whichever implementation was chosen.
type RegionParts = (Arc<dyn Store>, Arc<dyn Online>, Retention, Arc<dyn Relay>);

/// What the process hands a hub: the sockets it serves, bound by the caller, and the process's
/// metrics for `/metrics`.
pub struct HubListeners {
    /// The HTTP API (and `/up`, `/stats`, `/metrics`).
    pub http: TcpListener,
    /// Serve `https://` on the HTTP port with this configuration (plain HTTP when `None`).
    /// Its certificate resolver may swap certificates at any time.
    pub http_tls: Option<Arc<rustls::ServerConfig>>,
    /// The QUIC link endpoint's UDP socket.
    pub link: std::net::UdpSocket,
    /// Renders the process's metrics (the process installed the recorder).
    pub metrics: Render,
}

/// Why a hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The link certificate is unusable.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// The Redis settings are unusable.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Webhooks cannot start.
    #[error(transparent)]
    Webhooks(#[from] crate::webhooks::WebhookError),
    /// A socket could not be used.
    #[error("cannot use the listening sockets: {0}")]
    Io(#[from] std::io::Error),
}

/// A running hub.
#[derive(Debug)]
pub struct RunningHub {
    /// Where the HTTP API listens.
    pub http_addr: std::net::SocketAddr,
    /// Where edges link (UDP).
    pub link_addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Starts a hub; it stops when `shutdown` is cancelled (await [`RunningHub::stopped`]).
pub fn start(
    config: HubConfig,
    listeners: HubListeners,
    shutdown: CancellationToken,
) -> Result<RunningHub, StartError> {
    let http_addr = listeners.http.local_addr()?;
    let link_addr = listeners.link.local_addr()?;
    let stats = Arc::new(HubStats::default());
    let tasks = TaskTracker::new();
    let (watchlist, watchlist_queue) = watchlist::channel();
    let (occupancy, occupancy_queue) = registry::occupancy();
    let pending = Arc::new(Pending::default());
    let (inboxes, mailboxes) = region::inboxes(config.registry.shards);
    let lifetimes = config.registry.lifetimes;
    // Webhooks first: the region reports what it decides to them.
    let webhooks = webhooks::start(
        config.webhooks.clone(),
        &config.apps,
        config
            .cluster
            .as_ref()
            .map(|settings| webhooks::RedisSetup::new(settings, config.hub_id))
            .transpose()
            .map_err(crate::cluster::ClusterError::from)?,
        stats.clone(),
        shutdown.clone(),
        &tasks,
    )?;
    let decisions: Arc<dyn region::Decisions> = Arc::new(webhooks.clone());
    // The one place that decides between a hub alone and a hub in a region.
    let (store, online, retention, relay): RegionParts = match &config.cluster {
        Some(settings) => {
            let setup = ClusterSetup {
                hub_id: config.hub_id,
                history: lifetimes.history,
                cache_ttl: lifetimes.cache_ttl,
                pending: pending.clone(),
                inboxes,
                decisions,
            };
            let cluster = Cluster::start(settings, setup, &tasks, shutdown.clone())?;
            (
                Arc::new(cluster.clone()),
                Arc::new(cluster.clone()),
                settings.retention(),
                Arc::new(cluster.relay()),
            )
        }
        None => {
            let (store, task) = memory::memory();
            tasks.spawn(memory::run(
                task,
                pending.clone(),
                inboxes,
                lifetimes.cache_ttl,
                decisions,
                shutdown.clone(),
            ));
            (
                Arc::new(store.clone()),
                Arc::new(store),
                memory::retention(),
                Arc::new(NoRelay),
            )
        }
    };
    let console = Console::new(
        config.console_token.clone(),
        ConsoleFeed::new(config.hub_id, relay),
    );
    let registry = Registry::start(
        config.registry,
        config.apps.clone(),
        stats.clone(),
        Outlets {
            occupancy,
            webhooks: webhooks.clone(),
        },
        RegionPort {
            pending,
            inboxes: mailboxes.shards,
            retention,
        },
        shutdown.clone(),
        &tasks,
    );
    tasks.spawn(watchlist::run(
        watchlist_queue,
        WatchlistRegion {
            occupancy: occupancy_queue,
            store: store.clone(),
            online,
            told: mailboxes.watchlist,
        },
        registry.clone(),
        config.apps.clone(),
        shutdown.clone(),
    ));

    let mut server = quinn::ServerConfig::with_crypto(Arc::new(link::server_config(&config.tls)?));
    let mut transport = TransportConfig::default();
    transport.max_idle_timeout(config.link.idle_timeout.try_into().ok());
    transport.keep_alive_interval(Some(config.link.idle_timeout / 3));
    transport.max_concurrent_uni_streams(0u8.into());
    transport.max_concurrent_bidi_streams(1u8.into());
    server.transport_config(Arc::new(transport));
    let endpoint = Endpoint::new(
        EndpointConfig::default(),
        Some(server),
        listeners.link,
        Arc::new(TokioRuntime),
    )?;
    let connections = Connections::new(config.hub_id);
    tasks.spawn(crate::connections::run(
        connections.clone(),
        store.clone(),
        shutdown.clone(),
    ));
    let context = Arc::new(LinkContext {
        hub_id: config.hub_id,
        apps: config.apps.clone(),
        cache_ttl: config.registry.lifetimes.cache_ttl,
        cluster_key: config.cluster_key.clone(),
        settings: config.link,
        registry: registry.clone(),
        store: store.clone(),
        webhooks,
        watchlist,
        stats: stats.clone(),
        console: console.feed.clone(),
        connections: connections.clone(),
    });
    tasks.spawn(link::accept(
        endpoint,
        context,
        TaskTracker::new(),
        shutdown.clone(),
    ));

    let http_stats = stats.clone();
    let state = ApiState {
        hub_id: config.hub_id,
        apps: config.apps,
        store,
        registry,
        stats,
        draining: shutdown.clone(),
        metrics: listeners.metrics,
        access: Arc::new(config.admin),
        console: console.feed.clone(),
        rates: Arc::new(ApiRates::default()),
    };
    let console = ConsoleState {
        hub_id: config.hub_id,
        apps: state.apps.clone(),
        store: state.store.clone(),
        draining: shutdown.clone(),
        connections,
        console,
    };
    let http = HttpServer {
        listener: listeners.http,
        tls: listeners.http_tls,
        router: api::router(state, config.api).merge(crate::console::router(console)),
        settings: config.http,
        stats: http_stats,
    };
    tasks.spawn(http.run(shutdown.clone()));
    tasks.close();
    Ok(RunningHub {
        http_addr,
        link_addr,
        shutdown,
        tasks,
    })
}

impl RunningHub {
    /// Waits for shutdown and for the API and the link to stop.
    pub async fn stopped(self) {
        self.shutdown.cancelled().await;
        self.tasks.wait().await;
        tracing::info!(message = "Hub stopped.");
    }
}
