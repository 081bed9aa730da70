//! A token bucket: a socket's client-event budget (Pusher: 10 per second by default).
//! A burst up to the rate passes; beyond it events are refused until tokens refill.

use tokio::time::Instant;

/// One socket's budget.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `per_second`.
    pub fn new(per_second: u32, now: Instant) -> Self {
        let rate = f64::from(per_second.max(1));
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes a token if one is left.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_up_to_the_rate_passes_then_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, start);
        assert!((0..10).all(|_| bucket.try_take(start)));
        assert!(!bucket.try_take(start));
        assert!(bucket.try_take(start + Duration::from_millis(100)));
        assert!(!bucket.try_take(start + Duration::from_millis(100)));
        let later = start + Duration::from_secs(5);
        assert_eq!(
            (0..20).filter(|_| bucket.try_take(later)).count(),
            10,
            "never above the rate"
        );
    }
}
