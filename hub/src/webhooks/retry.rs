//! When to retry a failed request, and when to give up (Pusher: "retry … with exponential
//! backoff, for 5 minutes"). Pure: time and randomness are passed in.

use std::time::Duration;

use tokio::time::Instant;

/// How requests are timed out and retried. [`RetryPolicy::default`] is Pusher's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// A request without a 2xx answer within this long failed (Pusher: 4 s).
    pub timeout: Duration,
    /// How long after its first attempt a batch is retried before it is dropped (5 minutes).
    pub retry_for: Duration,
    /// The wait after the first failure; it doubles with each further failure.
    pub backoff_min: Duration,
    /// The longest wait between two attempts.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(4),
            retry_for: Duration::from_secs(5 * 60),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (≥ 1): the exponential step, of which a random
    /// half (`jitter` in `[0, 1)`) is kept, so endpoints recovering together are not hit in
    /// lockstep by every hub's retries.
    pub fn backoff(&self, failures: u32, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let step = self
            .backoff_min
            .saturating_mul(1 << doublings)
            .min(self.backoff_max);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// When to try again after `failures` failed attempts of a batch first tried at `first`,
    /// or `None` when that would be past the retry window: the batch is dropped.
    pub fn next_attempt(
        &self,
        first: Instant,
        now: Instant,
        failures: u32,
        jitter: f64,
    ) -> Option<Instant> {
        let at = now + self.backoff(failures, jitter);
        (at <= first + self.retry_for).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_half_jitter() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_secs(4));
        assert_eq!(policy.backoff(10, 1.0), Duration::from_secs(60));
        assert_eq!(policy.backoff(u32::MAX, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn gives_up_once_the_window_is_over() {
        let policy = RetryPolicy::default();
        let first = Instant::now();
        assert_eq!(
            policy.next_attempt(first, first, 1, 1.0),
            Some(first + Duration::from_secs(1))
        );
        let late = first + Duration::from_secs(299);
        assert_eq!(policy.next_attempt(first, late, 9, 1.0), None);
        assert_eq!(
            policy.next_attempt(first, late, 1, 0.0),
            Some(late + Duration::from_millis(500))
        );
    }

    #[test]
    fn a_default_schedule_retries_for_five_minutes() {
        let policy = RetryPolicy::default();
        let first = Instant::now();
        let (mut now, mut failures) = (first, 0);
        loop {
            failures += 1;
            match policy.next_attempt(first, now, failures, 1.0) {
                Some(at) => now = at,
                None => break,
            }
        }
        // Waits of 1, 2, 4, 8, 16, 32 s, then a minute at a time while within 5 minutes: the
        // tenth attempt (at 243 s) is the last.
        assert_eq!(failures, 10);
        assert!(now - first <= policy.retry_for);
        assert!(now - first > policy.retry_for - policy.backoff_max);
    }
}
