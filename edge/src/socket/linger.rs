//! The lingering close: how every socket Herald closes after an answer (a WebSocket close frame,
//! an HTTP error) lets the client read that answer.
//!
//! Dropping a TCP socket with unread input makes the kernel send a reset, and a reset makes the
//! client discard what it had received but not yet read. A client that is still sending — a
//! frame far over the limit is refused at its header, megabytes before its end — would see an
//! abrupt 1006 instead of the `pusher:error` and the close code. So the socket first sends its
//! FIN (the answer is complete), then reads and throws away what still comes until the client
//! closes its side, for a bounded time and byte count, as web servers do (Apache's and nginx's
//! lingering close).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a closing socket keeps reading what the client still sends.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(5);
/// How many bytes a closing socket reads and discards at most before it lets go anyway.
pub const LINGER_BYTES: usize = 64 << 20;

/// Ends the write side (FIN after everything written), then reads and discards until the
/// client closes, [`LINGER_TIMEOUT`] passes or [`LINGER_BYTES`] were read; the caller drops the
/// stream afterwards. Returns how many bytes were discarded.
pub async fn linger<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> usize {
    let mut discarded = 0;
    let lingering = async {
        stream.shutdown().await?;
        let mut buffer = vec![0u8; 64 * 1024];
        while discarded < LINGER_BYTES {
            match stream.read(&mut buffer).await? {
                0 => break,
                read => discarded += read,
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(LINGER_TIMEOUT, lingering).await;
    discarded
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A peer that writes `sending` bytes without reading, then reads everything it was sent.
    #[tokio::test]
    async fn a_peer_still_sending_reads_the_answer_in_full() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let sending = 8 << 20;
        let peer = tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream.write_all(&vec![b'x'; sending]).await.unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            answer
        });
        let (mut server, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 16];
        server.read_exact(&mut head).await.unwrap();
        server.write_all(b"refused\n").await.unwrap();
        let discarded = linger(&mut server).await;
        drop(server);
        assert_eq!(peer.await.unwrap(), b"refused\n");
        assert_eq!(discarded, sending - head.len());
    }
}
