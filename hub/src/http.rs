//! The HTTP API's listener: accepts connections (over TLS when configured), and bounds what a
//! client can hold without sending requests, so a scan or a stuck proxy cannot exhaust the
//! hub's descriptors.
//!
//! - A new connection must send a complete request head within `header_timeout` (TLS
//!   handshake included), or it is closed.
//! - A keep-alive connection with no request for `idle_timeout` is closed (hyper's header-read
//!   timer, which runs from the end of one response to the end of the next request head).
//! - At most `max_connections` are served at once; one beyond that is answered `503` with
//!   `Retry-After` (plain HTTP) or closed (TLS), and counted.
//!
//! Connections are served by hyper's HTTP/1.1 server, each in a tracked task; on shutdown they
//! finish their request in flight and close (hyper-util's graceful shutdown).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::stats::HubStats;

/// Limits of the HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// How long a new connection has to complete its TLS handshake and first request head.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// What the listener serves.
pub struct HttpServer {
    /// The bound listener.
    pub listener: TcpListener,
    /// TLS configuration; plain HTTP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The routes.
    pub router: Router,
    /// Limits.
    pub settings: HttpSettings,
    /// Where connections are counted.
    pub stats: Arc<HubStats>,
}

/// What a client over the connection cap gets before the connection closes.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 45\r\nConnection: close\r\n\r\nThe hub serves too many connections; retry.\n";

impl HttpServer {
    /// Accepts and serves until `shutdown`, then lets requests in flight finish (up to the
    /// grace period).
    pub async fn run(self, shutdown: CancellationToken) {
        let Self {
            listener,
            tls,
            router,
            settings,
            stats,
        } = self;
        let tls = tls.map(TlsAcceptor::from);
        let slots = Arc::new(Semaphore::new(settings.max_connections));
        let graceful = GracefulShutdown::new();
        let connections = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Typically EMFILE: back off briefly instead of spinning on the error.
                    tracing::warn!(message = "HTTP accept failed.", %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                stats
                    .http_connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                refuse(stream, tls.is_some());
                continue;
            };
            let connection = Connection {
                slot,
                stats: stats.clone(),
                settings,
            };
            let service = TowerToHyperService::new(router.clone());
            let watcher = graceful.watcher();
            let tls = tls.clone();
            connections.spawn(async move {
                connection.serve(stream, tls, service, watcher).await;
            });
        }
        drop(listener);
        connections.close();
        if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(message = "HTTP requests still in flight at shutdown; closing them.");
        }
        connections.wait().await;
    }
}

/// Over capacity: a short answer when it can be written at once, then the connection closes.
fn refuse(stream: TcpStream, tls: bool) {
    if !tls {
        // A fresh socket's send buffer is empty: the answer fits, or the client is gone.
        let _ = stream.try_write(OVER_CAPACITY);
    }
}

/// One served connection, holding its slot under the cap until it closes.
struct Connection {
    slot: OwnedSemaphorePermit,
    stats: Arc<HubStats>,
    settings: HttpSettings,
}

impl Connection {
    async fn serve(
        self,
        stream: TcpStream,
        tls: Option<TlsAcceptor>,
        service: TowerToHyperService<Router>,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let _ = stream.set_nodelay(true);
        self.stats.http_connections.fetch_add(1, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + self.settings.header_timeout;
        let served = async {
            match tls {
                None => {
                    self.http(TokioIo::new(stream), service, watcher, deadline)
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            self.http(TokioIo::new(stream), service, watcher, deadline)
                                .await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(message = "HTTP TLS handshake failed.", %error);
                        }
                        Err(_) => {
                            tracing::debug!(message = "HTTP TLS handshake timed out.");
                        }
                    }
                }
            }
        };
        served.await;
        self.stats.http_connections.fetch_sub(1, Ordering::Relaxed);
        drop(self.slot);
    }

    /// Serves HTTP/1.1 on an established stream; closes it if no request head is complete by
    /// `deadline`.
    async fn http<I>(
        &self,
        io: TokioIo<I>,
        service: TowerToHyperService<Router>,
        watcher: hyper_util::server::graceful::Watcher,
        deadline: tokio::time::Instant,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let first_request = Arc::new(tokio::sync::Notify::new());
        let seen = first_request.clone();
        let service = hyper::service::service_fn(move |request| {
            seen.notify_one();
            hyper::service::Service::call(&service, request)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.settings.idle_timeout)
            .keep_alive(true);
        let connection = watcher.watch(builder.serve_connection(io, service));
        tokio::pin!(connection);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    // hyper's own header timer (the idle timeout) fired first: a task that ran
                    // late on a busy machine finds both timers due. Either way no request head
                    // came in time.
                    if error.is_timeout() {
                        tracing::debug!(message = "No request head in time; closing the connection.");
                        self.stats.http_header_timeouts.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tracing::debug!(message = "HTTP connection ended with an error.", %error);
                    }
                }
                return;
            }
            () = first_request.notified() => {}
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(message = "No request head in time; closing the connection.");
                self.stats.http_header_timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Err(error) = connection.await {
            tracing::debug!(message = "HTTP connection ended with an error.", %error);
        }
    }
}
