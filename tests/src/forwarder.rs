//! A TCP forwarder standing for a DNS name that moves — ElastiCache's primary endpoint, which
//! points at the promoted replica after a failover (cluster mode disabled). Clients connect to
//! the forwarder; each connection is carried to the current target. [`Forwarder::point_to`]
//! moves the name and ends the connections carried so far (their server died or was demoted).
//! While the target is down a connection is refused: the forwarder accepts it and closes it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

/// How long the forwarder waits for its target to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A running forwarder; it stops (with every connection it carries) when dropped.
#[derive(Debug)]
pub struct Forwarder {
    /// `127.0.0.1:port`, where clients connect.
    pub address: String,
    target: Arc<watch::Sender<String>>,
    accept: AbortHandle,
}

impl Forwarder {
    /// Starts a forwarder to `target` (`host:port`).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the forwarder binds a loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address")
            .to_string();
        let target = Arc::new(watch::Sender::new(target));
        let accept = tokio::spawn(accept(listener, target.clone())).abort_handle();
        Self {
            address,
            target,
            accept,
        }
    }

    /// Points the name at `target` from now on and ends every connection carried so far.
    pub fn point_to(&self, target: String) {
        self.target.send_replace(target);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts until aborted; the connections' tasks live in a `JoinSet` that aborts them with it.
async fn accept(listener: TcpListener, target: Arc<watch::Sender<String>>) {
    let mut carried = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                carried.spawn(carry(client, target.subscribe()));
            }
            Some(_) = carried.join_next(), if !carried.is_empty() => {}
        }
    }
}

/// Carries one connection to the current target until either side closes or the name moves.
async fn carry(mut client: TcpStream, mut target: watch::Receiver<String>) {
    let address = target.borrow_and_update().clone();
    let Ok(Ok(mut upstream)) =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await
    else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut upstream) => {}
        _ = target.changed() => {}
    }
}
