//! Framing: a 4-byte big-endian length, then the frame in postcard encoding.
//!
//! The length prefix is the one `tokio_util::codec::LengthDelimitedCodec` reads by default, so
//! readers use that codec (with [`MAX_FRAME_BYTES`]) and hand each payload to [`decode`].
//! [`encode`] returns prefix and payload together so one encoding can be written to many streams.

use bytes::{BufMut, Bytes, BytesMut};
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
}

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
        });
        let bytes = encode(&event);
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 4);
        assert_eq!(decode::<HubToEdge>(&bytes[4..]).unwrap(), event);

        let interest = EdgeToHub::Interest(Interest {
            key: ChannelKey::new(AppId::new("1"), ChannelName::parse("orders").unwrap()),
            subscribers: 3,
            generation: 1,
            resume_after: None,
        });
        assert_eq!(
            decode::<EdgeToHub>(&encode(&interest)[4..]).unwrap(),
            interest
        );
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
            resume_after: None,
        });
        let mut bytes = encode(&interest)[4..].to_vec();
        let at = bytes.windows(2).position(|w| w == b"ok").unwrap();
        bytes[at] = b' ';
        assert!(decode::<EdgeToHub>(&bytes).is_err());
    }
}
