//! Waiting for a state the system reaches on its own (a health flip, a process exit, a Redis
//! key), with a deadline: the one polling loop every test uses.
//!
//! Polling is for states with no event to wait on. Where the system sends something (a frame, a
//! log line), wait for that instead: [`crate::client`], [`crate::process::HeraldProcess::wait_for_log`].

use std::fmt;
use std::time::{Duration, Instant};

/// How long `eventually` pauses between two looks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// What `eventually` saw when the deadline passed without the state it waited for.
pub struct Unmet<T> {
    /// What it waited for, as the caller named it.
    pub what: String,
    /// How long it waited.
    pub waited: Duration,
    /// How many times it looked.
    pub looks: u32,
    /// The last value it observed.
    pub last: T,
}

impl<T: fmt::Debug> fmt::Debug for Unmet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waited {:?} ({} looks) for {}; last observed: {:?}",
            self.waited, self.looks, self.what, self.last
        )
    }
}

impl<T: fmt::Debug> fmt::Display for Unmet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Looks at `probe` until `done` accepts what it returns, for at most `within`.
///
/// Returns the accepted value, or [`Unmet`] naming `what` and holding the last value observed
/// (so `.unwrap()` prints both). It always looks at least once, and once more at the deadline.
///
/// ```no_run
/// # async fn demo(api: herald_tests::api::Api) {
/// use std::time::Duration;
/// use herald_tests::eventually::eventually;
/// eventually("/up to answer 503", Duration::from_secs(1), async || {
///     api.raw("GET", "/up", "").await.status
/// }, |status| *status == 503)
/// .await
/// .unwrap();
/// # }
/// ```
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> T,
    mut done: impl FnMut(&T) -> bool,
) -> Result<T, Unmet<T>> {
    let started = Instant::now();
    let deadline = started + within;
    let mut looks = 0;
    loop {
        let value = probe().await;
        looks += 1;
        if done(&value) {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Unmet {
                what: what.to_string(),
                waited: now - started,
                looks,
                last: value,
            });
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_accepted_value() {
        let mut count = 0;
        let value = eventually(
            "three",
            Duration::from_secs(5),
            async || {
                count += 1;
                count
            },
            |n| *n == 3,
        )
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn reports_what_it_waited_for_and_the_last_value() {
        let unmet = eventually(
            "the sky to fall",
            Duration::from_millis(60),
            async || "blue",
            |sky| *sky == "falling",
        )
        .await
        .unwrap_err();
        assert_eq!(unmet.last, "blue");
        assert!(unmet.looks >= 2, "it looked again at the deadline");
        assert!(unmet.waited >= Duration::from_millis(60));
        let message = format!("{unmet:?}");
        assert!(
            message.contains("the sky to fall") && message.contains("\"blue\""),
            "{message}"
        );
    }
}
