//! The WebSocket frames the edge sends (RFC 6455 §5.2): final, unmasked, of one opcode, with the
//! shortest length form. Fan-out makes each event's frame once, header included
//! ([`TextFrame`]), and writes it whole to sockets that take it at once; the socket task makes
//! headers on the stack and writes them beside queued payloads, so no payload is copied per
//! socket.

use bytes::{Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The longest header: FIN + opcode, the 64-bit length marker and the length.
pub const MAX_HEADER: usize = 10;

/// The first header byte of a final text frame.
pub const TEXT: u8 = 0x81;
/// The first header byte of a (final) pong.
pub const PONG: u8 = 0x8A;
/// The first header byte of a (final) close frame.
pub const CLOSE: u8 = 0x88;

/// The header of an unmasked frame whose first byte (FIN, opcode) is `first` and whose payload
/// is `len` bytes, and how much of it is used.
pub fn header(first: u8, len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut out = [0; MAX_HEADER];
    out[0] = first;
    let used = if len < 126 {
        // Fits: `len` < 126.
        out[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (out, used)
}

/// The header of a final text frame of `len` payload bytes.
pub fn text_header(len: usize) -> ([u8; MAX_HEADER], usize) {
    header(TEXT, len)
}

/// The whole length of a text frame of `len` payload bytes, header included.
pub fn text_frame_len(len: usize) -> usize {
    text_header(len).1 + len
}

/// A text frame made once for every socket it goes to: the whole frame as it goes on the wire
/// (header, then payload) in one buffer, so that a write to an idle socket is one plain `send`,
/// and the payload alone, a view of the same bytes, for the queues (whose writer makes headers
/// of its own for a batch).
#[derive(Debug, Clone)]
pub struct TextFrame {
    wire: Bytes,
    payload: Utf8Bytes,
}

impl TextFrame {
    /// Frames `payload`.
    pub fn new(payload: &str) -> Self {
        let (header, used) = text_header(payload.len());
        let mut wire = BytesMut::with_capacity(used + payload.len());
        wire.extend_from_slice(&header[..used]);
        wire.extend_from_slice(payload.as_bytes());
        let wire = wire.freeze();
        // The bytes after the header are `payload`'s, which is UTF-8: the check cannot fail,
        // and a copy would do where it did.
        let payload = Utf8Bytes::try_from(wire.slice(used..))
            .unwrap_or_else(|_| Utf8Bytes::from(payload.to_string()));
        Self { wire, payload }
    }

    /// The whole frame, header first.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The payload (the frame without its header).
    pub fn payload(&self) -> &Utf8Bytes {
        &self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_carry_their_opcode() {
        assert_eq!(header(PONG, 2).0[..2], [0x8A, 2]);
        assert_eq!(header(CLOSE, 0).0[..2], [0x88, 0]);
    }

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(text_header(0).0[..2], [0x81, 0]);
        assert_eq!(text_header(125).0[..2], [0x81, 125]);
        assert_eq!(text_header(126).0[..4], [0x81, 126, 0, 126]);
        assert_eq!(text_header(65_535).0[..4], [0x81, 126, 0xff, 0xff]);
        assert_eq!(text_header(65_536).0, [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            (
                text_frame_len(3),
                text_frame_len(300),
                text_frame_len(70_000)
            ),
            (5, 304, 70_010)
        );
    }

    #[test]
    fn a_text_frame_is_its_header_then_its_payload_in_one_buffer() {
        for len in [0, 125, 126, 70_000] {
            let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
            let frame = TextFrame::new(&text);
            let (header, used) = text_header(text.len());
            assert_eq!(frame.wire()[..used], header[..used]);
            assert_eq!(&frame.wire()[used..], text.as_bytes());
            assert_eq!(frame.payload().as_str(), text);
            assert_eq!(frame.wire().len(), text_frame_len(text.len()));
        }
    }
}
