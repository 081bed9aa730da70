//! Binding listening sockets.
//!
//! TCP listeners are bound through `TcpSocket` with a backlog of [`LISTEN_BACKLOG`]: tokio's
//! `TcpListener::bind` (like std) listens with 128, which makes the kernel's `somaxconn` moot and
//! turns a reconnect burst into SYN retries of a second and more.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use herald_shared::limits::LISTEN_BACKLOG;

/// Binds a TCP listener with the large backlog.
pub fn tcp(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds the UDP socket of a QUIC endpoint.
pub fn udp(address: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    std::net::UdpSocket::bind(address)
}
