//! The data string each benchmark event carries: `hb:{seq}:{sent_unix_micros}:` padded with `x`
//! to the requested size.
//!
//! Plain ASCII with nothing JSON must escape, so the server forwards it byte for byte and the
//! receiver can borrow it straight out of the frame. The send time is wall-clock microseconds
//! (not an `Instant`) so that subscribers in other processes of the same machine can measure
//! end-to-end latency against it.

use std::time::SystemTime;

use herald_shared::time::UnixTime;

const PREFIX: &str = "hb:";

/// What a received event says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The event's sequence number, from 0.
    pub seq: u64,
    /// When the trigger was sent, in microseconds since the Unix epoch.
    pub sent_us: u64,
}

/// Microseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_us() -> u64 {
    UnixTime::from_system(SystemTime::now()).as_micros()
}

/// The data string for `stamp`, padded with `x` to `size` bytes (never truncated: a `size`
/// smaller than the header gives just the header).
pub fn encode(stamp: Stamp, size: usize) -> String {
    let mut data = format!("{PREFIX}{}:{}:", stamp.seq, stamp.sent_us);
    if data.len() < size {
        data.extend(std::iter::repeat_n('x', size - data.len()));
    }
    data
}

/// Reads the stamp back; `None` for data this benchmark did not send.
pub fn decode(data: &str) -> Option<Stamp> {
    let rest = data.strip_prefix(PREFIX)?;
    let mut fields = rest.splitn(3, ':');
    let seq = fields.next()?.parse().ok()?;
    let sent_us = fields.next()?.parse().ok()?;
    fields.next()?;
    Some(Stamp { seq, sent_us })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads_to_size() {
        let stamp = Stamp {
            seq: 42,
            sent_us: 1_700_000_000_123_456,
        };
        let data = encode(stamp, 200);
        assert_eq!(data.len(), 200);
        assert!(data.starts_with("hb:42:1700000000123456:xx"));
        assert_eq!(decode(&data), Some(stamp));
    }

    #[test]
    fn never_truncates_the_header() {
        let stamp = Stamp {
            seq: 7,
            sent_us: 99,
        };
        assert_eq!(encode(stamp, 0), "hb:7:99:");
        assert_eq!(decode("hb:7:99:"), Some(stamp));
    }

    #[test]
    fn rejects_foreign_data() {
        for data in [
            "",
            "{\"a\":1}",
            "hb:",
            "hb:1",
            "hb:1:2",
            "hb:x:2:",
            "hb:1:-2:",
            "xb:1:2:",
        ] {
            assert_eq!(decode(data), None, "{data:?}");
        }
    }

    #[test]
    fn the_clock_is_after_2020() {
        assert!(now_us() > 1_577_836_800_000_000);
    }
}
