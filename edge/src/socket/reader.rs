//! The read half of a client socket: WebSocket frames (RFC 6455 §5) parsed straight from the
//! stream, with no buffer held between messages.
//!
//! A plain socket that is not reading holds an empty [`BytesMut`] (no allocation). When the
//! client sends, a buffer of the read size is taken, filled, parsed and let go as soon as every
//! byte in it belongs to a message handed out: an idle socket costs the few dozen bytes of this
//! struct, not a read buffer (tungstenite keeps its read buffer for the connection's lifetime).
//! A TLS socket keeps its buffer (see [`FrameReader::poll_next`]). Only what
//! a server reads is handled: masked client frames, fragmented text and binary messages,
//! ping/pong/close; no extensions (none is negotiated, so a reserved bit is a protocol error).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::io::poll_read_buf;

use super::stream::ClientStream;

/// A message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message (Pusher clients send none).
    Binary,
    /// A ping; the pong carries this payload back.
    Ping(BytesMut),
    /// A pong.
    Pong,
    /// The client closes, with this status code if it gave one.
    Close(Option<u16>),
}

/// Why the client's frames could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading from the connection failed.
    #[error("reading from the client failed: {0}")]
    Io(#[from] io::Error),
    /// The client closed the connection without a close frame.
    #[error("the client closed the connection")]
    Eof,
    /// A frame or message is longer than the largest read at all.
    #[error("message of {size} bytes is over the limit of {max_size}")]
    TooLong {
        /// The frame's or message's length so far.
        size: usize,
        /// The limit.
        max_size: usize,
    },
    /// A text message is not UTF-8.
    #[error("text message is not valid UTF-8")]
    Utf8,
    /// The frames break RFC 6455.
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
}

const FIN: u8 = 0x80;
const RESERVED: u8 = 0x70;
const MASKED: u8 = 0x80;

/// Frame opcodes (RFC 6455 §5.2).
mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header bytes, mask included.
    len: usize,
    payload: usize,
}

/// Parses the header at the start of `bytes`; `None` when more bytes are needed.
fn parse_header(bytes: &[u8], max_size: usize) -> Result<Option<Header>, ReadError> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & RESERVED != 0 {
        return Err(ReadError::Protocol(
            "reserved bits set without an extension",
        ));
    }
    if second & MASKED == 0 {
        return Err(ReadError::Protocol("client frames must be masked"));
    }
    let opcode = first & 0x0F;
    let fin = first & FIN != 0;
    let (extended, at) = match second & 0x7F {
        126 => (2, 2),
        127 => (8, 2),
        short => (0, usize::from(short)),
    };
    let Some(rest) = bytes.get(2..2 + extended + 4) else {
        return Ok(None);
    };
    let payload = match extended {
        0 => at as u64,
        2 => u64::from(u16::from_be_bytes([rest[0], rest[1]])),
        _ => u64::from_be_bytes(rest[..8].try_into().unwrap_or_default()),
    };
    let payload = usize::try_from(payload).unwrap_or(usize::MAX);
    match opcode {
        opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {}
        opcode::CLOSE | opcode::PING | opcode::PONG => {
            if !fin || payload > 125 {
                return Err(ReadError::Protocol(
                    "control frames must be final and short",
                ));
            }
        }
        _ => return Err(ReadError::Protocol("reserved opcode")),
    }
    if payload > max_size {
        return Err(ReadError::TooLong {
            size: payload,
            max_size,
        });
    }
    let mut mask = [0; 4];
    mask.copy_from_slice(&rest[extended..]);
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        len: 2 + extended + 4,
        payload,
    }))
}

/// Removes the client's mask (RFC 6455 §5.3).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (byte, key) in payload.iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// The read state of one client socket.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes read and not yet handed out: part of a frame, or frames after the last one
    /// returned. No allocation while empty.
    pending: BytesMut,
    /// A fragmented message in progress: its opcode and the payload so far.
    fragments: Option<(u8, BytesMut)>,
}

impl FrameReader {
    /// A reader that starts with the bytes the client sent after its upgrade request.
    pub fn with_leftover(leftover: &[u8]) -> Self {
        Self {
            pending: BytesMut::from(leftover),
            fragments: None,
        }
    }

    /// The next message or control frame from `stream`: frames at most `max_size` bytes long,
    /// messages at most `max_size` in all, reading at most `read_size` bytes per read.
    pub fn poll_next(
        &mut self,
        stream: &mut ClientStream,
        max_size: usize,
        read_size: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ClientFrame, ReadError>> {
        // A TLS stream keeps its buffer: it holds rustls's own buffers anyway, and cannot be
        // asked for readiness first (rustls may hold decrypted bytes the socket does not show),
        // so giving the buffer back would cost an allocation on every wake.
        let release = matches!(stream, ClientStream::Plain(_));
        loop {
            if let Some(frame) = self.parse(max_size)? {
                if release {
                    self.release_if_empty();
                }
                return Poll::Ready(Ok(frame));
            }
            let read = match stream {
                // A plain socket is asked for readiness before a buffer is taken, so that waking
                // for another reason costs neither an allocation nor a read.
                ClientStream::Plain(tcp) => match tcp.poll_read_ready(cx) {
                    Poll::Pending => None,
                    Poll::Ready(ready) => {
                        ready?;
                        self.pending.reserve(read_size.max(1));
                        match tcp.try_read_buf(&mut self.pending) {
                            // The readiness was stale: ask again.
                            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                            read => Some(read?),
                        }
                    }
                },
                ClientStream::Tls(_) => {
                    self.pending.reserve(read_size.max(1));
                    match poll_read_buf(Pin::new(&mut *stream), cx, &mut self.pending) {
                        Poll::Pending => None,
                        Poll::Ready(read) => Some(read?),
                    }
                }
            };
            let Some(read) = read else {
                if release {
                    self.release_if_empty();
                }
                return Poll::Pending;
            };
            if read == 0 {
                self.release_if_empty();
                return Poll::Ready(Err(ReadError::Eof));
            }
        }
    }

    /// Gives the buffer back when nothing in it is left to parse.
    fn release_if_empty(&mut self) {
        if self.pending.is_empty() {
            self.pending = BytesMut::new();
        }
    }

    /// Takes the next complete message or control frame out of the bytes read so far.
    fn parse(&mut self, max_size: usize) -> Result<Option<ClientFrame>, ReadError> {
        loop {
            let Some(header) = parse_header(&self.pending, max_size)? else {
                return Ok(None);
            };
            if self.pending.len() < header.len + header.payload {
                // Room for the whole frame at once: one allocation instead of doublings.
                self.pending
                    .reserve(header.len + header.payload - self.pending.len());
                return Ok(None);
            }
            self.pending.advance(header.len);
            let mut payload = self.pending.split_to(header.payload);
            unmask(&mut payload, header.mask);
            if let Some(frame) = self.on_frame(header, payload, max_size)? {
                return Ok(Some(frame));
            }
        }
    }

    /// What one whole frame gives: a control frame, a complete message, or nothing yet (a
    /// fragment).
    fn on_frame(
        &mut self,
        header: Header,
        payload: BytesMut,
        max_size: usize,
    ) -> Result<Option<ClientFrame>, ReadError> {
        let (opcode, message) = match (header.opcode, self.fragments.take()) {
            (opcode::CLOSE, fragments) => {
                self.fragments = fragments;
                let code = payload
                    .get(..2)
                    .map(|code| u16::from_be_bytes([code[0], code[1]]));
                return Ok(Some(ClientFrame::Close(code)));
            }
            (opcode::PING, fragments) => {
                self.fragments = fragments;
                return Ok(Some(ClientFrame::Ping(payload)));
            }
            (opcode::PONG, fragments) => {
                self.fragments = fragments;
                return Ok(Some(ClientFrame::Pong));
            }
            (opcode::CONTINUATION, None) => {
                return Err(ReadError::Protocol("continuation frame without a message"));
            }
            (opcode::CONTINUATION, Some((opcode, mut message))) => {
                let size = message.len() + payload.len();
                if size > max_size {
                    return Err(ReadError::TooLong { size, max_size });
                }
                message.unsplit(payload);
                (opcode, message)
            }
            (_, Some(_)) => {
                return Err(ReadError::Protocol("new message inside a fragmented one"));
            }
            (opcode, None) => (opcode, payload),
        };
        if !header.fin {
            self.fragments = Some((opcode, message));
            return Ok(None);
        }
        if opcode == opcode::BINARY {
            return Ok(Some(ClientFrame::Binary));
        }
        let text = Utf8Bytes::try_from(message.freeze()).map_err(|_| ReadError::Utf8)?;
        Ok(Some(ClientFrame::Text(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::PlainStream;

    const MAX: usize = 1 << 16;

    /// A masked client frame.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        match payload.len() {
            len @ 0..=125 => out.push(MASKED | len as u8),
            len @ 126..=65_535 => {
                out.push(MASKED | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(MASKED | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        let mut masked = payload.to_vec();
        unmask(&mut masked, mask);
        out.extend_from_slice(&masked);
        out
    }

    fn reader(bytes: &[u8]) -> FrameReader {
        FrameReader::with_leftover(bytes)
    }

    fn text(value: &str) -> Option<ClientFrame> {
        Some(ClientFrame::Text(Utf8Bytes::from(value)))
    }

    #[test]
    fn frames_come_out_one_at_a_time() {
        let mut bytes = frame(FIN | opcode::TEXT, b"{\"event\":\"a\"}");
        bytes.extend(frame(FIN | opcode::PING, b"hi"));
        bytes.extend(frame(FIN | opcode::TEXT, &[b'x'; 300]));
        let mut reader = reader(&bytes);
        assert_eq!(reader.parse(MAX).unwrap(), text("{\"event\":\"a\"}"));
        assert_eq!(
            reader.parse(MAX).unwrap(),
            Some(ClientFrame::Ping(BytesMut::from(&b"hi"[..])))
        );
        assert_eq!(reader.parse(MAX).unwrap(), text(&"x".repeat(300)));
        assert_eq!(reader.parse(MAX).unwrap(), None);
    }

    #[test]
    fn a_frame_split_anywhere_waits_for_the_rest() {
        let bytes = frame(FIN | opcode::TEXT, &[b'y'; 70_000]);
        for cut in [1, 2, 5, 9, 13, 14, 15, 1_000, bytes.len() - 1] {
            let mut reader = reader(&bytes[..cut]);
            assert_eq!(reader.parse(1 << 20).unwrap(), None, "cut at {cut}");
            reader.pending.extend_from_slice(&bytes[cut..]);
            assert_eq!(
                reader.parse(1 << 20).unwrap(),
                text(&"y".repeat(70_000)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn fragments_make_one_message_and_control_frames_may_come_between() {
        let mut bytes = frame(opcode::TEXT, b"{\"ev");
        bytes.extend(frame(FIN | opcode::PING, b""));
        bytes.extend(frame(opcode::CONTINUATION, "ent\":\"é".as_bytes()));
        bytes.extend(frame(FIN | opcode::CONTINUATION, b"\"}"));
        let mut reader = reader(&bytes);
        assert_eq!(
            reader.parse(MAX).unwrap(),
            Some(ClientFrame::Ping(BytesMut::new()))
        );
        assert_eq!(reader.parse(MAX).unwrap(), text("{\"event\":\"é\"}"));
    }

    #[test]
    fn a_character_split_across_fragments_is_valid() {
        let bytes = "é".as_bytes();
        let mut all = frame(opcode::TEXT, &bytes[..1]);
        all.extend(frame(FIN | opcode::CONTINUATION, &bytes[1..]));
        assert_eq!(reader(&all).parse(MAX).unwrap(), text("é"));
    }

    #[test]
    fn binary_pong_and_close_are_told_apart() {
        let mut bytes = frame(FIN | opcode::BINARY, &[0, 1, 2]);
        bytes.extend(frame(FIN | opcode::PONG, b"p"));
        bytes.extend(frame(FIN | opcode::CLOSE, &[0x03, 0xe8]));
        let mut reader = reader(&bytes);
        assert_eq!(reader.parse(MAX).unwrap(), Some(ClientFrame::Binary));
        assert_eq!(reader.parse(MAX).unwrap(), Some(ClientFrame::Pong));
        assert_eq!(
            reader.parse(MAX).unwrap(),
            Some(ClientFrame::Close(Some(1000)))
        );
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_at_its_header() {
        let bytes = frame(FIN | opcode::TEXT, &[b'z'; 2_000]);
        let error = reader(&bytes[..8]).parse(1_000).unwrap_err();
        assert!(matches!(
            error,
            ReadError::TooLong {
                size: 2_000,
                max_size: 1_000
            }
        ));
    }

    #[test]
    fn a_fragmented_message_over_the_limit_is_refused() {
        let mut bytes = frame(opcode::TEXT, &[b'a'; 600]);
        bytes.extend(frame(FIN | opcode::CONTINUATION, &[b'a'; 600]));
        let error = reader(&bytes).parse(1_000).unwrap_err();
        assert!(matches!(
            error,
            ReadError::TooLong {
                size: 1_200,
                max_size: 1_000
            }
        ));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let bytes = frame(FIN | opcode::TEXT, &[0xff, 0xfe]);
        assert!(matches!(
            reader(&bytes).parse(MAX).unwrap_err(),
            ReadError::Utf8
        ));
    }

    #[test]
    fn frames_that_break_the_protocol_are_refused() {
        let unmasked = [FIN | opcode::TEXT, 1, b'a'];
        let mut long_ping = frame(FIN | opcode::PING, &[0; 126]);
        let fragmented_ping = frame(opcode::PING, b"");
        let reserved_bit = frame(FIN | 0x40 | opcode::TEXT, b"a");
        let reserved_opcode = frame(FIN | 0x3, b"a");
        let lone_continuation = frame(FIN | opcode::CONTINUATION, b"a");
        let mut interleaved = frame(opcode::TEXT, b"a");
        interleaved.extend(frame(FIN | opcode::TEXT, b"b"));
        long_ping.truncate(8);
        for bytes in [
            &unmasked[..],
            &long_ping,
            &fragmented_ping,
            &reserved_bit,
            &reserved_opcode,
            &lone_continuation,
            &interleaved,
        ] {
            assert!(
                matches!(reader(bytes).parse(MAX), Err(ReadError::Protocol(_))),
                "{bytes:?}"
            );
        }
    }

    #[tokio::test]
    async fn reading_from_a_socket_releases_the_buffer_between_messages() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut server = ClientStream::Plain(PlainStream::new(listener.accept().await.unwrap().0));
        let mut reader = FrameReader::default();
        for round in 0..3 {
            let message = format!("{{\"round\":{round}}}");
            client
                .write_all(&frame(FIN | opcode::TEXT, message.as_bytes()))
                .await
                .unwrap();
            let got = std::future::poll_fn(|cx| reader.poll_next(&mut server, MAX, 64, cx))
                .await
                .unwrap();
            assert_eq!(got, ClientFrame::Text(Utf8Bytes::from(message)));
            assert_eq!(reader.pending.capacity(), 0);
        }
        drop(client);
        let end = std::future::poll_fn(|cx| reader.poll_next(&mut server, MAX, 64, cx)).await;
        assert!(matches!(end, Err(ReadError::Eof)));
    }
}
