//! Wall-clock time as Herald stamps it: time since 1970.
//!
//! Link tokens and API signatures carry seconds, the region's hub scores milliseconds, channel
//! sequence seeds microseconds. [`UnixTime`] is the one conversion from a [`SystemTime`] the
//! caller read (this crate reads no clock), so every process rounds and handles a clock set
//! before 1970 the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock instant as the time elapsed since 1970-01-01 00:00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(Duration);

impl UnixTime {
    /// `now` as time since 1970; a clock set before 1970 counts as 1970.
    pub fn from_system(now: SystemTime) -> Self {
        Self(now.duration_since(UNIX_EPOCH).unwrap_or_default())
    }

    /// Whole seconds since 1970.
    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Whole milliseconds since 1970.
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whole microseconds since 1970.
    pub fn as_micros(self) -> u64 {
        u64::try_from(self.0.as_micros()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_each_unit_from_one_instant() {
        let at = UnixTime::from_system(UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456));
        assert_eq!(at.as_secs(), 1_700_000_000);
        assert_eq!(at.as_millis(), 1_700_000_000_123);
        assert_eq!(at.as_micros(), 1_700_000_000_123_456);
    }

    #[test]
    fn a_clock_before_1970_reads_as_1970() {
        let at = UnixTime::from_system(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(at.as_micros(), 0);
    }
}
