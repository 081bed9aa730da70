//! The port probe: tells a hub whose process is gone from one that is only quiet.
//!
//! When a hub process dies and its host stays up, the host's kernel answers every datagram to
//! the dead port with an ICMP "port unreachable". QUIC ignores those (its socket is not
//! connected, so the kernel does not report them), and only the silence deadline would notice.
//! The probe is a second UDP socket *connected* to the hub's link address: it sends an empty
//! datagram every few tens of milliseconds, which a live hub's QUIC endpoint drops, and the
//! kernel reports an ICMP answer on it as "connection refused". So a crashed or killed hub is
//! known gone within one probe interval, and the silence deadline only has to cover hosts that
//! vanish without a word — which lets it be long enough that a stalled hub keeps its edges.
//!
//! A hub that is merely stopped or slow still holds its port: no ICMP, no verdict.

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// A UDP socket connected to a hub's link address.
#[derive(Debug)]
pub struct PortProbe {
    socket: UdpSocket,
}

impl PortProbe {
    /// Opens a probe towards `hub` (the address the QUIC connection uses).
    pub async fn open(hub: SocketAddr) -> io::Result<Self> {
        let bind: SocketAddr = if hub.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .expect("a literal socket address");
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(hub).await?;
        Ok(Self { socket })
    }

    /// Sends one empty datagram (a UDP send does not wait); `false` when the kernel already
    /// reports the port closed.
    pub async fn poke(&self) -> bool {
        !matches!(self.socket.send(&[]).await, Err(error) if refused(&error))
    }

    /// Waits until the kernel reports the hub's port closed. Cancel-safe.
    ///
    /// The kernel flags the ICMP answer as a socket error (`EPOLLERR`, not readable), so this
    /// waits for error readiness and takes the error (`SO_ERROR`); another error is dropped and
    /// the wait goes on (the silence deadline covers whatever this cannot see).
    pub async fn closed(&self) {
        loop {
            if self.socket.ready(Interest::ERROR).await.is_err() {
                return std::future::pending().await;
            }
            let taken = self.socket.try_io(Interest::ERROR, || {
                self.socket
                    .take_error()?
                    .ok_or_else(|| io::ErrorKind::WouldBlock.into())
            });
            if matches!(taken, Ok(error) if refused(&error)) {
                return;
            }
        }
    }
}

fn refused(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::ConnectionRefused
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_live_port_is_never_reported_closed() {
        let hub = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let probe = PortProbe::open(hub.local_addr().unwrap()).await.unwrap();
        for _ in 0..5 {
            assert!(probe.poke().await);
        }
        let mut buf = [0u8; 8];
        assert_eq!(
            hub.recv(&mut buf).await.unwrap(),
            0,
            "the hub gets empty datagrams"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(200), probe.closed())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_after_a_poke() {
        let hub = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = hub.local_addr().unwrap();
        let probe = PortProbe::open(address).await.unwrap();
        drop(hub);
        assert!(probe.poke().await, "the first poke goes out");
        tokio::time::timeout(Duration::from_secs(5), probe.closed())
            .await
            .expect("the ICMP answer is reported");
    }
}
