//! Reconnect back-off: how long to wait after failures in a row.
//!
//! An edge re-linking to its hubs and a hub re-subscribing to Redis pub/sub back off the same
//! way, so the rule lives here once. Pure: the caller passes the randomness (a uniform number in
//! `[0, 1)`, e.g. `fastrand::f64()`), so the function is deterministic under test.

use std::time::Duration;

/// The pause after the first failure, before jitter.
pub const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// Exponential back-off: [`FIRST_PAUSE`] doubled for each further failure in a row, capped at
/// `cap`, then scaled by a factor in `[0.5, 1.5)` taken from `unit` so peers that failed together
/// do not retry in step. `failures` counts from 0 (the first retry waits about 100 ms).
pub fn backoff(failures: u32, cap: Duration, unit: f64) -> Duration {
    let base = FIRST_PAUSE.saturating_mul(1 << failures.min(10));
    base.min(cap).mul_f64(0.5 + unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter() {
        let cap = Duration::from_secs(3);
        for failures in 0..40 {
            for unit in [0.0, 0.5, 0.999] {
                let pause = backoff(failures, cap, unit);
                assert!(pause <= cap.mul_f64(1.5), "{failures}: {pause:?}");
                assert!(pause >= FIRST_PAUSE / 2, "{failures}: {pause:?}");
            }
        }
        assert_eq!(backoff(0, cap, 0.5), Duration::from_millis(100));
        assert_eq!(backoff(1, cap, 0.5), Duration::from_millis(200));
        assert!(backoff(1, cap, 0.999) < Duration::from_millis(301));
        assert_eq!(backoff(12, cap, 0.0), Duration::from_millis(1500));
        assert_eq!(backoff(12, cap, 0.5), cap);
    }

    #[test]
    fn out_of_range_randomness_stays_within_the_jitter() {
        let cap = Duration::from_secs(1);
        assert_eq!(backoff(0, cap, -3.0), Duration::from_millis(50));
        assert_eq!(backoff(0, cap, 7.0), Duration::from_millis(150));
    }
}
