//! A socket's single heartbeat deadline (Pusher protocol, "Ping and pong"): after
//! `activity_timeout` without a message from the client the server sends `pusher:ping`; without
//! any message in the following `pong_timeout` it closes with 4201.

use std::time::Duration;

use tokio::time::Instant;

/// What the deadline asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Send `pusher:ping`.
    Ping,
    /// The client did not answer: close with 4201.
    TimedOut,
}

/// Heartbeat state of one socket.
#[derive(Debug)]
pub struct Heartbeat {
    activity_timeout: Duration,
    pong_timeout: Duration,
    awaiting_pong: bool,
    deadline: Instant,
}

impl Heartbeat {
    /// Starts counting at `now`.
    pub fn new(now: Instant, activity_timeout: Duration, pong_timeout: Duration) -> Self {
        Self {
            activity_timeout,
            pong_timeout,
            awaiting_pong: false,
            deadline: now + activity_timeout,
        }
    }

    /// When the heartbeat next needs attention.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The client sent something (any message counts as a pong).
    pub fn on_activity(&mut self, now: Instant) {
        self.awaiting_pong = false;
        self.deadline = now + self.activity_timeout;
    }

    /// The deadline passed.
    pub fn on_deadline(&mut self, now: Instant) -> Beat {
        if self.awaiting_pong {
            Beat::TimedOut
        } else {
            self.awaiting_pong = true;
            self.deadline = now + self.pong_timeout;
            Beat::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_then_silent_times_out() {
        let start = Instant::now();
        let mut heartbeat =
            Heartbeat::new(start, Duration::from_secs(120), Duration::from_secs(30));
        assert_eq!(heartbeat.deadline(), start + Duration::from_secs(120));
        let at = heartbeat.deadline();
        assert_eq!(heartbeat.on_deadline(at), Beat::Ping);
        assert_eq!(heartbeat.deadline(), at + Duration::from_secs(30));
        assert_eq!(heartbeat.on_deadline(heartbeat.deadline()), Beat::TimedOut);
    }

    #[test]
    fn any_message_answers_the_ping() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, Duration::from_secs(10), Duration::from_secs(5));
        assert_eq!(
            heartbeat.on_deadline(start + Duration::from_secs(10)),
            Beat::Ping
        );
        heartbeat.on_activity(start + Duration::from_secs(12));
        assert_eq!(heartbeat.deadline(), start + Duration::from_secs(22));
        assert_eq!(heartbeat.on_deadline(heartbeat.deadline()), Beat::Ping);
    }
}
