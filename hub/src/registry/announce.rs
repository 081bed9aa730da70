//! The subscription-count announcement policy: which channels announce
//! `pusher_internal:subscription_count`, and when.
//!
//! A channel announces when its app enables subscription-count events and it is not a user's
//! own channel. Each durable change of a count recorded by this hub asks for an announcement;
//! the first goes out at once, later ones at most once per interval (a burst of subscriptions is
//! announced once, with the count after it). The region makes the announcement for every hub at
//! once — Redis through a short lock, so a channel is announced at most once per interval across
//! the region, and a hub that finds the lock taken tries again when it expires (the other hub may
//! have read the count before this hub's change).

use std::time::Duration;

use crate::apps::Apps;
use herald_shared::channel::{ChannelKey, ChannelKind};
use tokio::time::Instant;

/// Whether a channel's subscribers are told its subscription count: its app enables
/// subscription-count events and it is not a user's own channel. Pusher's current reference
/// sends counts on every other kind of channel, presence included.
pub fn announces_counts(apps: &Apps, key: &ChannelKey) -> bool {
    key.channel.kind() != ChannelKind::ServerToUser
        && apps
            .by_id(key.app.as_str())
            .is_some_and(|app| app.settings.subscription_count_events)
}

/// One channel's announcement state. Pure: time is passed in.
#[derive(Debug, Default)]
pub struct Announcer {
    /// A count changed since the last announcement was asked for.
    wanted: bool,
    /// An announcement was asked of the region and not answered yet.
    in_flight: bool,
    /// No announcement before this.
    not_before: Option<Instant>,
}

impl Announcer {
    /// A count of the channel changed durably.
    pub fn changed(&mut self) {
        self.wanted = true;
    }

    /// Whether to ask for an announcement now; if so, it is in flight from now on.
    pub fn due(&mut self, now: Instant, interval: Duration) -> bool {
        if !self.wanted || self.in_flight || self.not_before.is_some_and(|at| at > now) {
            return false;
        }
        self.wanted = false;
        self.in_flight = true;
        self.not_before = Some(now + interval);
        true
    }

    /// The region answered: announced, or another hub announced within the interval and this
    /// one tries again after `retry_after`.
    pub fn answered(&mut self, retry_after: Option<Duration>, now: Instant) {
        self.in_flight = false;
        if let Some(retry) = retry_after {
            self.wanted = true;
            self.not_before = Some(now + retry);
        }
    }

    /// When the next announcement is due, if one is wanted.
    pub fn next(&self, _interval: Duration) -> Option<Instant> {
        (self.wanted && !self.in_flight)
            .then_some(self.not_before)
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_change_is_announced_at_once_and_a_burst_once_more_after_the_interval() {
        let start = Instant::now();
        let mut announcer = Announcer::default();
        assert!(!announcer.due(start, INTERVAL), "nothing changed");
        announcer.changed();
        assert!(announcer.due(start, INTERVAL));
        announcer.changed();
        assert!(!announcer.due(start, INTERVAL), "one in flight");
        announcer.answered(None, start);
        announcer.changed();
        assert_eq!(announcer.next(INTERVAL), Some(start + INTERVAL));
        assert!(!announcer.due(start + INTERVAL / 2, INTERVAL));
        assert!(announcer.due(start + INTERVAL, INTERVAL));
        announcer.answered(None, start + INTERVAL);
        assert_eq!(announcer.next(INTERVAL), None, "nothing left to announce");
    }

    #[test]
    fn a_taken_lock_is_tried_again_when_it_expires() {
        let start = Instant::now();
        let mut announcer = Announcer::default();
        announcer.changed();
        assert!(announcer.due(start, INTERVAL));
        announcer.answered(Some(Duration::from_millis(300)), start);
        let retry = start + Duration::from_millis(300);
        assert_eq!(announcer.next(INTERVAL), Some(retry));
        assert!(announcer.due(retry, INTERVAL));
    }
}
