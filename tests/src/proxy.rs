//! A TCP proxy in front of edges, standing for a client's network path: it forwards each
//! connection to the first edge that accepts it (starting with a preferred one, as a load
//! balancer would after an edge died), and can cut the path — drop the connections it carries
//! and refuse new ones for a while, as a phone losing its network does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// How long the proxy waits for one edge to accept before it tries the next.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Path {
    upstreams: Vec<String>,
    prefer: usize,
    refuse_until: Mutex<Option<Instant>>,
    /// Bumped by every cut: the connections carried so far end.
    cuts: watch::Sender<u64>,
}

/// A running proxy; it stops (with every connection it carries) when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// `127.0.0.1:port`, where clients connect.
    pub address: String,
    path: Arc<Path>,
    accept: AbortHandle,
}

impl Proxy {
    /// Starts a proxy to `upstreams` (`host:port`), trying `upstreams[prefer]` first.
    pub async fn start(upstreams: Vec<String>, prefer: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address")
            .to_string();
        let path = Arc::new(Path {
            upstreams,
            prefer,
            refuse_until: Mutex::new(None),
            cuts: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept(listener, path.clone())).abort_handle();
        Self {
            address,
            path,
            accept,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.address
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("the proxy's address ends with its port")
    }

    /// Drops every connection the proxy carries and refuses new ones for `outage`.
    pub fn cut(&self, outage: Duration) {
        *self.path.refuse_until.lock().expect("proxy lock") = Some(Instant::now() + outage);
        self.path.cuts.send_modify(|cuts| *cuts += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts until aborted; the connections' tasks live in a `JoinSet` that aborts them with it.
async fn accept(listener: TcpListener, path: Arc<Path>) {
    let mut carried = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let refusing = path
                    .refuse_until
                    .lock()
                    .expect("proxy lock")
                    .is_some_and(|until| Instant::now() < until);
                if refusing {
                    drop(client);
                    continue;
                }
                carried.spawn(carry(client, path.clone()));
            }
            Some(_) = carried.join_next(), if !carried.is_empty() => {}
        }
    }
}

/// Forwards one connection to the first edge that accepts it, until either side closes or the
/// path is cut.
async fn carry(mut client: TcpStream, path: Arc<Path>) {
    let mut cuts = path.cuts.subscribe();
    cuts.mark_unchanged();
    let count = path.upstreams.len();
    let mut upstream = None;
    for offset in 0..count {
        let address = &path.upstreams[(path.prefer + offset) % count];
        if let Ok(Ok(stream)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await
        {
            upstream = Some(stream);
            break;
        }
    }
    let Some(mut upstream) = upstream else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut upstream) => {}
        _ = cuts.changed() => {}
    }
}
