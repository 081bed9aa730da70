//! Framing: a 4-byte big-endian length, then the frame in postcard encoding.
//!
//! [`encode`] returns prefix and payload together so one encoding can be written to many
//! streams. [`decode_frame`] is its inverse over a receive buffer, and the only frame reader:
//! each side's I/O layer (a `tokio_util` decoder in the edge and in the hub) only moves bytes
//! from a QUIC stream into the buffer and calls it, so the limit ([`MAX_FRAME_BYTES`]) and the
//! decoding are the same on both sides.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame either side accepts, in bytes (an app table with many apps fits easily).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// A frame that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum LinkCodecError {
    /// The bytes are not a valid frame of the expected type.
    #[error("malformed link frame: {0}")]
    Malformed(#[from] postcard::Error),
    /// The length prefix announces a frame above [`MAX_FRAME_BYTES`].
    #[error("link frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes")]
    TooLarge(usize),
}

/// The length prefix's size in bytes.
const PREFIX: usize = 4;

/// Encodes a frame with its length prefix.
pub fn encode<T: Serialize>(frame: &T) -> Bytes {
    let payload = postcard::to_stdvec(frame).expect("link frames always serialize");
    let mut buf = BytesMut::with_capacity(4 + payload.len());
    buf.put_u32(u32::try_from(payload.len()).expect("link frames are far below 4 GiB"));
    buf.put_slice(&payload);
    buf.freeze()
}

/// Decodes one frame's payload (without its length prefix).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, LinkCodecError> {
    Ok(postcard::from_bytes(payload)?)
}

/// Takes the next whole frame off the front of `buf` and decodes it. `Ok(None)` while `buf` holds
/// only part of a frame (room for the rest is reserved); an announced length above
/// [`MAX_FRAME_BYTES`] is an error before any of the frame is buffered.
pub fn decode_frame<T: DeserializeOwned>(buf: &mut BytesMut) -> Result<Option<T>, LinkCodecError> {
    let Some(prefix) = buf.get(..PREFIX) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(prefix.try_into().expect("the prefix is 4 bytes")) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(LinkCodecError::TooLarge(len));
    }
    if buf.len() < PREFIX + len {
        buf.reserve(PREFIX + len - buf.len());
        return Ok(None);
    }
    buf.advance(PREFIX);
    let payload = buf.split_to(len);
    decode(&payload).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{ChannelKey, ChannelName};
    use crate::event::{EventData, EventName};
    use crate::ids::{AppId, SocketId};
    use crate::link::{EdgeToHub, Event, HubToEdge, Interest};

    #[test]
    fn frames_round_trip() {
        let event = HubToEdge::Event(Event {
            key: ChannelKey::new(AppId::new("1"), ChannelName::parse("orders").unwrap()),
            seq: 42,
            name: EventName::parse("created").unwrap(),
            data: EventData::from_string("{\"id\":1}"),
            exclude: Some(SocketId { high: 1, low: 2 }),
            user_id: None,
            accepted_micros: 1_700_000_000_000_000,
        });
        let bytes = encode(&event);
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 4);
        assert_eq!(decode::<HubToEdge>(&bytes[4..]).unwrap(), event);

        let interest = EdgeToHub::Interest(Interest {
            key: ChannelKey::new(AppId::new("1"), ChannelName::parse("orders").unwrap()),
            subscribers: 3,
            generation: 1,
            version: 1,
            resume_after: None,
        });
        assert_eq!(
            decode::<EdgeToHub>(&encode(&interest)[4..]).unwrap(),
            interest
        );
    }

    fn interest(n: u32) -> EdgeToHub {
        EdgeToHub::Interest(Interest {
            key: ChannelKey::new(AppId::new("1"), ChannelName::parse("orders").unwrap()),
            subscribers: n,
            generation: 1,
            version: 1,
            resume_after: None,
        })
    }

    #[test]
    fn the_reader_takes_whole_frames_whatever_the_chunking() {
        let mut wire = BytesMut::new();
        for n in 1..=3 {
            wire.extend_from_slice(&encode(&interest(n)));
        }
        let wire = wire.freeze();
        for chunk in 1..=wire.len() {
            let mut buf = BytesMut::new();
            let mut read = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(frame) = decode_frame::<EdgeToHub>(&mut buf).unwrap() {
                    read.push(frame);
                }
            }
            assert_eq!(read, vec![interest(1), interest(2), interest(3)], "{chunk}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn the_reader_refuses_an_oversized_length_before_buffering_it() {
        let mut buf = BytesMut::new();
        buf.put_u32(MAX_FRAME_BYTES as u32 + 1);
        assert!(matches!(
            decode_frame::<EdgeToHub>(&mut buf),
            Err(LinkCodecError::TooLarge(len)) if len == MAX_FRAME_BYTES + 1
        ));
        let mut buf = BytesMut::new();
        buf.put_u32(MAX_FRAME_BYTES as u32);
        assert!(decode_frame::<EdgeToHub>(&mut buf).unwrap().is_none());
    }

    #[test]
    fn the_reader_reports_a_malformed_payload() {
        let mut buf = BytesMut::new();
        buf.put_u32(3);
        buf.put_slice(b"\xff\xff\xff");
        assert!(matches!(
            decode_frame::<HubToEdge>(&mut buf),
            Err(LinkCodecError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for garbage in [&b""[..], b"\xff\xff\xff", b"\x01\x02", &[0x07; 64]] {
            assert!(decode::<HubToEdge>(garbage).is_err());
            assert!(decode::<EdgeToHub>(garbage).is_err());
        }
    }

    #[test]
    fn invalid_names_inside_frames_are_rejected() {
        let interest = EdgeToHub::Interest(Interest {
            key: ChannelKey::new(AppId::new("1"), ChannelName::parse("ok").unwrap()),
            subscribers: 1,
            generation: 1,
            version: 1,
            resume_after: None,
        });
        let mut bytes = encode(&interest)[4..].to_vec();
        let at = bytes.windows(2).position(|w| w == b"ok").unwrap();
        bytes[at] = b' ';
        assert!(decode::<EdgeToHub>(&bytes).is_err());
    }
}
