//! A client connection's byte stream: plain TCP (`ws://`) or TLS over TCP (`wss://`), one type
//! so the handshake and the socket task are written once.
//!
//! A plain connection's `TcpStream` is shared: fan-out writes to it directly while the socket task
//! has nothing queued ([`crate::index::Outbox`]), and it lives in its outbox's allocation
//! ([`PlainStream`]). Both sides use the stream through `&self` (readiness, then a non-blocking
//! read or write); the outbox decides which of them writes.

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::index::PlainStream;

/// A client connection.
#[derive(Debug)]
pub enum ClientStream {
    /// `ws://`; shared with fan-out, which writes to it while nothing is queued.
    Plain(PlainStream),
    /// `wss://`.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Why a TLS handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TlsAcceptError {
    /// The handshake failed (not TLS, no common version or cipher, the peer left).
    #[error("TLS handshake failed: {0}")]
    Handshake(#[from] io::Error),
    /// The handshake did not complete in time.
    #[error("TLS handshake timed out")]
    Timeout,
}

impl ClientStream {
    /// Wraps an accepted TCP connection, completing the TLS handshake within `timeout` when the
    /// listener serves TLS.
    pub async fn accept(
        tcp: TcpStream,
        tls: Option<TlsAcceptor>,
        timeout: Duration,
    ) -> Result<Self, TlsAcceptError> {
        match tls {
            None => Ok(Self::Plain(PlainStream::new(tcp))),
            Some(acceptor) => tokio::time::timeout(timeout, acceptor.accept(tcp))
                .await
                .map_err(|_| TlsAcceptError::Timeout)?
                .map(|stream| Self::Tls(Box::new(stream)))
                .map_err(TlsAcceptError::Handshake),
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => poll_io(stream, Interest::Read, cx, |tcp| {
                let read = tcp.try_read(buf.initialize_unfilled())?;
                buf.advance(read);
                Ok(())
            }),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => poll_io(stream, Interest::Write, cx, |tcp| tcp.try_write(buf)),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(_) => Poll::Ready(Ok(())),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => {
                Poll::Ready(socket2::SockRef::from(&**stream).shutdown(Shutdown::Write))
            }
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => poll_io(stream, Interest::Write, cx, |tcp| {
                tcp.try_write_vectored(bufs)
            }),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(_) => true,
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

/// Which readiness a shared stream's operation waits for.
#[derive(Debug, Clone, Copy)]
enum Interest {
    Read,
    Write,
}

/// Runs `operation` on a shared stream once it is ready for `interest`, until it does not find
/// the stream blocked (readiness can be stale: another write took the room, or the event was
/// already consumed).
fn poll_io<T>(
    tcp: &TcpStream,
    interest: Interest,
    cx: &mut Context<'_>,
    mut operation: impl FnMut(&TcpStream) -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match interest {
            Interest::Read => ready!(tcp.poll_read_ready(cx))?,
            Interest::Write => ready!(tcp.poll_write_ready(cx))?,
        }
        match operation(tcp) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            done => return Poll::Ready(done),
        }
    }
}
