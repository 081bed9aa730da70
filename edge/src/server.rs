//! Starting and stopping an edge: binds nothing itself (the caller passes listeners), spawns the
//! accept loop, the index shards, the link and the admin server, and drains on shutdown.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState};
use crate::config::EdgeConfig;
use crate::index::{Board, IndexHandle};
use crate::link::{LinkState, LinkTask};
use crate::metrics::Render;
use crate::quota::Quotas;
use crate::socket::{self, ConnectionRate, SocketContext};
use crate::stats::EdgeStats;

/// What the process hands an edge: the listeners it serves, bound by the caller (with a large
/// backlog), and the process's metrics for `/metrics`.
pub struct EdgeListeners {
    /// The client WebSocket port.
    pub websocket: TcpListener,
    /// Serve `wss://` on the WebSocket port with this configuration (`ws://` when `None`).
    /// Its certificate resolver may swap certificates at any time: open connections keep the
    /// one they were made with, new ones get the new one.
    pub websocket_tls: Option<Arc<rustls::ServerConfig>>,
    /// The admin HTTP port (`/up`, `/stats`, `/metrics`).
    pub admin: TcpListener,
    /// Renders the process's metrics (the process installed the recorder).
    pub metrics: Render,
}

/// A running edge.
#[derive(Debug)]
pub struct RunningEdge {
    /// Where clients connect.
    pub websocket_addr: std::net::SocketAddr,
    /// Where `/up` and `/stats` are served.
    pub admin_addr: std::net::SocketAddr,
    link: watch::Receiver<LinkState>,
    shutdown: CancellationToken,
    sockets: TaskTracker,
    background: TaskTracker,
    stop_background: CancellationToken,
    drain_timeout: Duration,
    stats: Arc<EdgeStats>,
}

/// Starts an edge. It drains and stops when `shutdown` is cancelled; await
/// [`RunningEdge::stopped`] for the end.
pub fn start(
    config: EdgeConfig,
    listeners: EdgeListeners,
    shutdown: CancellationToken,
) -> std::io::Result<RunningEdge> {
    let websocket_addr = listeners.websocket.local_addr()?;
    let admin_addr = listeners.admin.local_addr()?;
    let stats = Arc::new(EdgeStats::default());
    let board = Arc::new(Board::default());
    let background = TaskTracker::new();
    let stop_background = CancellationToken::new();
    let index = IndexHandle::start(
        config.index_shards.get(),
        board.clone(),
        stats.clone(),
        &background,
    );
    let (apps_tx, apps_rx) = watch::channel(None);
    let (link_tx, link_rx) = watch::channel(LinkState::Down);
    let (failure_tx, failure_rx) = watch::channel(None);
    let quotas = Quotas::new(config.max_connections);
    let link = LinkTask {
        config: config.link.clone(),
        edge_id: config.edge_id,
        board,
        index: index.clone(),
        apps: apps_tx,
        state: link_tx,
        failure: failure_tx,
        stats: stats.clone(),
        quotas: quotas.clone(),
    };
    background.spawn(link.run(stop_background.clone()));

    let admin_state = AdminState {
        edge_id: config.edge_id,
        link: link_rx.clone(),
        link_failure: failure_rx,
        drain: shutdown.clone(),
        stats: stats.clone(),
        index: index.clone(),
        metrics: listeners.metrics,
        access: Arc::new(config.admin.clone()),
        quotas: quotas.clone(),
    };
    let stop_admin = stop_background.clone();
    background.spawn(async move {
        let served = axum::serve(listeners.admin, admin::router(admin_state))
            .with_graceful_shutdown(stop_admin.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(message = "Admin server failed.", %error);
        }
    });

    let context = Arc::new(SocketContext {
        apps: apps_rx,
        index,
        limits: config.sockets,
        edge_id: config.edge_id,
        next_socket: AtomicU64::new(1),
        drain: shutdown.clone(),
        stats: stats.clone(),
        tls: listeners.websocket_tls,
        quotas,
        rate: config.connection_rate.as_ref().map(ConnectionRate::new),
    });
    if context.rate.is_some() {
        background.spawn(forget_idle_addresses(
            context.clone(),
            stop_background.clone(),
        ));
    }
    let sockets = TaskTracker::new();
    background.spawn(accept_loop(
        listeners.websocket,
        context,
        sockets.clone(),
        stop_background.clone(),
    ));
    Ok(RunningEdge {
        websocket_addr,
        admin_addr,
        link: link_rx,
        shutdown,
        sockets,
        background,
        stop_background,
        drain_timeout: config.drain_timeout,
        stats,
    })
}

/// Every minute, drops the rate limiter's addresses that are back to a full allowance, so its
/// table stays as small as the recent clients.
async fn forget_idle_addresses(context: Arc<SocketContext>, stop: CancellationToken) {
    let mut minutes = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = minutes.tick() => {}
        }
        if let Some(rate) = &context.rate {
            rate.forget_idle();
        }
    }
}

/// Accepts until the edge stops — through the drain too: a connection that arrives while the
/// edge drains (before the load balancer has seen `/up` turn 503) gets an HTTP 503 it can act
/// on, which a closed port (a reset, a 502 from the load balancer) would not say.
async fn accept_loop(
    listener: TcpListener,
    context: Arc<SocketContext>,
    sockets: TaskTracker,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Boxed: a socket's future is large (it holds every state of its connection), and
                // tokio moves a task's future by value a few times while spawning it and once
                // when it ends; a box is moved instead.
                sockets.spawn(Box::pin(socket::serve(stream, peer.ip(), context.clone())));
            }
            Err(error) => {
                // Typically EMFILE: back off briefly instead of spinning on the error.
                tracing::warn!(message = "Accept failed.", %error);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl RunningEdge {
    /// Waits until the edge is linked to a hub (it serves clients from then on).
    pub async fn linked(&mut self) {
        let _ = self
            .link
            .wait_for(|state| matches!(state, LinkState::Up(_)))
            .await;
    }

    /// Waits for shutdown, drains the sockets (up to the drain timeout), then stops the link
    /// and the admin server.
    pub async fn stopped(self) {
        self.shutdown.cancelled().await;
        crate::metrics::draining();
        tracing::info!(
            message = "Draining.",
            connections = self.stats.snapshot().connections
        );
        self.sockets.close();
        if tokio::time::timeout(self.drain_timeout, self.sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                message = "Drain timeout reached; closing the remaining connections.",
                connections = self.stats.snapshot().connections
            );
        }
        self.stop_background.cancel();
        self.background.close();
        self.background.wait().await;
        tracing::info!(message = "Edge stopped.");
    }
}
