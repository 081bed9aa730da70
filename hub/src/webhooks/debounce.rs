//! The delay before `channel_vacated` and `member_removed` (Pusher "Webhook request delay"):
//! they wait [`DELAY`] and are not sent at all when the channel is occupied again / the user
//! is back within it — nor is the `channel_occupied` / `member_added` that undoes them, so a
//! page reload does not flap the app.
//!
//! Pure: time is passed in. A hub alone keeps this state in memory; in a region the same rules
//! run in Redis (`redis.rs`), so a pending removal survives the hub that scheduled it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use herald_shared::channel::ChannelKey;
use tokio::time::Instant;

/// Pusher's delay: "up to three seconds".
pub const DELAY: Duration = Duration::from_secs(3);

/// A delayed event waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Delayed {
    /// `channel_vacated`.
    Vacated(ChannelKey),
    /// `member_removed` of a user.
    Removed(ChannelKey, String),
}

/// What to do with a `channel_occupied` or `member_added`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Send it.
    Send,
    /// It undoes a pending removal: send neither.
    Cancelled,
}

/// The delayed events of one hub alone.
#[derive(Debug)]
pub struct Debounce {
    delay: Duration,
    by_due: BTreeMap<(Instant, u64), Delayed>,
    due_of: HashMap<Delayed, (Instant, u64)>,
    next: u64,
}

impl Default for Debounce {
    fn default() -> Self {
        Self::new(DELAY)
    }
}

impl Debounce {
    /// Delays removals by `delay`.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            by_due: BTreeMap::new(),
            due_of: HashMap::new(),
            next: 0,
        }
    }

    /// A removal happened: it becomes due after the delay (an identical one already waiting
    /// keeps its time).
    pub fn leave(&mut self, delayed: Delayed, now: Instant) {
        if self.due_of.contains_key(&delayed) {
            return;
        }
        let at = (now + self.delay, self.next);
        self.next += 1;
        self.by_due.insert(at, delayed.clone());
        self.due_of.insert(delayed, at);
    }

    /// An arrival happened; `undoes` is the removal it would cancel.
    pub fn arrive(&mut self, undoes: &Delayed) -> Arrival {
        match self.due_of.remove(undoes) {
            Some(at) => {
                self.by_due.remove(&at);
                Arrival::Cancelled
            }
            None => Arrival::Send,
        }
    }

    /// The removals due at `now`, in the order they happened.
    pub fn due(&mut self, now: Instant) -> Vec<Delayed> {
        let later = self.by_due.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut self.by_due, later);
        due.into_values()
            .inspect(|delayed| {
                self.due_of.remove(delayed);
            })
            .collect()
    }

    /// When the next removal is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.by_due.keys().next().map(|(at, _)| *at)
    }

    /// How many removals wait.
    pub fn len(&self) -> usize {
        self.by_due.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.by_due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::channel::ChannelName;
    use herald_shared::ids::AppId;

    fn key(name: &str) -> ChannelKey {
        ChannelKey::new(AppId::new("1"), ChannelName::parse(name).unwrap())
    }

    #[test]
    fn a_removal_is_due_after_the_delay() {
        let t0 = Instant::now();
        let mut debounce = Debounce::default();
        debounce.leave(Delayed::Vacated(key("a")), t0);
        assert_eq!(debounce.next_due(), Some(t0 + DELAY));
        assert!(
            debounce
                .due(t0 + DELAY - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(debounce.due(t0 + DELAY), vec![Delayed::Vacated(key("a"))]);
        assert!(debounce.is_empty());
        assert_eq!(debounce.next_due(), None);
    }

    #[test]
    fn coming_back_within_the_delay_cancels_both() {
        let t0 = Instant::now();
        let mut debounce = Debounce::default();
        let vacated = Delayed::Vacated(key("a"));
        debounce.leave(vacated.clone(), t0);
        assert_eq!(debounce.arrive(&vacated), Arrival::Cancelled);
        assert!(debounce.due(t0 + DELAY * 2).is_empty());
        // Nothing pending: the next arrival is sent.
        assert_eq!(debounce.arrive(&vacated), Arrival::Send);
    }

    #[test]
    fn members_are_debounced_per_user() {
        let t0 = Instant::now();
        let mut debounce = Debounce::default();
        let alice = Delayed::Removed(key("presence-a"), "alice".into());
        let bob = Delayed::Removed(key("presence-a"), "bob".into());
        debounce.leave(alice.clone(), t0);
        debounce.leave(bob.clone(), t0 + Duration::from_millis(10));
        assert_eq!(debounce.arrive(&alice), Arrival::Cancelled);
        assert_eq!(debounce.due(t0 + DELAY * 2), vec![bob]);
    }

    #[test]
    fn due_removals_come_in_the_order_they_happened_and_keep_their_first_time() {
        let t0 = Instant::now();
        let mut debounce = Debounce::default();
        let (a, b) = (Delayed::Vacated(key("a")), Delayed::Vacated(key("b")));
        debounce.leave(a.clone(), t0);
        debounce.leave(b.clone(), t0);
        debounce.leave(a.clone(), t0 + Duration::from_secs(1));
        assert_eq!(debounce.len(), 2);
        assert_eq!(debounce.due(t0 + DELAY), vec![a, b]);
    }
}
