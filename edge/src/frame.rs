//! The headers of the WebSocket frames the edge sends (RFC 6455 §5.2): final, unmasked, of one
//! opcode, with the shortest length form. Made on the stack and written beside the payload, so
//! a frame's bytes are never copied to be sent; both writers use them — fan-out writing to an
//! idle socket directly (the index's outboxes) and the socket task.

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
}
