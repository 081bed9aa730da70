//! Sequence accounting for the channels the edge receives: exactly-once, in-order delivery.
//!
//! For each wanted channel the tracker remembers the interest generation and the last sequence
//! delivered. An event at `last + 1` is delivered; one at or below `last` is a duplicate (after a
//! resume or a backfill) and dropped; one above `last + 1` reveals a gap: it is dropped and a
//! backfill of everything after `last` is requested once, which brings it back in order. Pure
//! state, no I/O: the link session applies the verdicts.

use std::collections::HashMap;

use herald_shared::channel::ChannelKey;
use herald_shared::link::Interest;

use crate::index::Desired;

#[derive(Debug, Clone, Copy)]
struct Track {
    generation: u32,
    /// `None` until the hub confirms the interest.
    last_seq: Option<u64>,
    backfill_requested: bool,
}

/// What to do with an incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it.
    Deliver,
    /// Already delivered; drop it.
    Duplicate,
    /// Events are missing before it; drop it and, if `Some`, request a backfill after that seq.
    Gap(Option<u64>),
    /// The channel is not wanted (or not confirmed yet); drop it.
    Unwanted,
}

/// Per-channel sequence state, kept across link sessions (sequences never go backwards, so
/// they stay comparable whichever hub answers).
#[derive(Debug, Default)]
pub struct Tracker {
    channels: HashMap<ChannelKey, Track>,
}

impl Tracker {
    /// Starts a link session: backfills asked of the previous hub will not be answered.
    pub fn begin_session(&mut self) {
        for track in self.channels.values_mut() {
            track.backfill_requested = false;
        }
    }

    /// The frame for a change of interest during a session.
    pub fn interest(&mut self, key: ChannelKey, desired: Desired) -> Interest {
        if desired.subscribers == 0 {
            self.channels.remove(&key);
        } else {
            let track = self.channels.entry(key.clone()).or_insert(Track {
                generation: desired.generation,
                last_seq: None,
                backfill_requested: false,
            });
            if track.generation != desired.generation {
                // A new subscription after the channel was left: start fresh, never replay.
                *track = Track {
                    generation: desired.generation,
                    last_seq: None,
                    backfill_requested: false,
                };
            }
        }
        Interest {
            key,
            subscribers: desired.subscribers,
            generation: desired.generation,
            version: desired.version,
            resume_after: None,
        }
    }

    /// The frame re-sending a wanted channel at the start of a session, resuming after the last
    /// delivered sequence when there is one.
    pub fn resume(&mut self, key: ChannelKey, desired: Desired) -> Interest {
        let mut interest = self.interest(key, desired);
        interest.resume_after = self.channels.get(&interest.key).and_then(|t| t.last_seq);
        interest
    }

    /// The hub confirmed a generation at `seq`; returns whether it is the current one.
    pub fn subscribed(&mut self, key: &ChannelKey, generation: u32, seq: u64) -> bool {
        match self.channels.get_mut(key) {
            Some(track) if track.generation == generation => {
                track.last_seq = Some(seq);
                track.backfill_requested = false;
                true
            }
            _ => false,
        }
    }

    /// Judges an event.
    pub fn event(&mut self, key: &ChannelKey, seq: u64) -> Verdict {
        let Some(track) = self.channels.get_mut(key) else {
            return Verdict::Unwanted;
        };
        let Some(last) = track.last_seq else {
            return Verdict::Unwanted;
        };
        if seq <= last {
            Verdict::Duplicate
        } else if seq == last + 1 {
            track.last_seq = Some(seq);
            track.backfill_requested = false;
            Verdict::Deliver
        } else if track.backfill_requested {
            Verdict::Gap(None)
        } else {
            track.backfill_requested = true;
            Verdict::Gap(Some(last))
        }
    }

    /// History could not fill a gap; continue after `resume_after`. Returns how many events
    /// were lost.
    pub fn truncated(&mut self, key: &ChannelKey, resume_after: u64) -> u64 {
        let Some(track) = self.channels.get_mut(key) else {
            return 0;
        };
        let last = track.last_seq.unwrap_or(resume_after);
        track.backfill_requested = false;
        if resume_after > last {
            track.last_seq = Some(resume_after);
            resume_after - last
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::channel::ChannelName;
    use herald_shared::ids::AppId;

    fn key() -> ChannelKey {
        ChannelKey::new(AppId::new("1"), ChannelName::parse("a").unwrap())
    }

    fn wanted(generation: u32) -> Desired {
        Desired {
            subscribers: 1,
            generation,
            version: 1,
        }
    }

    fn confirmed_at(seq: u64) -> Tracker {
        let mut tracker = Tracker::default();
        tracker.begin_session();
        tracker.interest(key(), wanted(1));
        assert!(tracker.subscribed(&key(), 1, seq));
        tracker
    }

    #[test]
    fn delivers_in_order_and_drops_duplicates() {
        let mut tracker = confirmed_at(10);
        assert_eq!(tracker.event(&key(), 11), Verdict::Deliver);
        assert_eq!(tracker.event(&key(), 11), Verdict::Duplicate);
        assert_eq!(tracker.event(&key(), 5), Verdict::Duplicate);
        assert_eq!(tracker.event(&key(), 12), Verdict::Deliver);
    }

    #[test]
    fn a_gap_requests_one_backfill_and_waits_for_it() {
        let mut tracker = confirmed_at(10);
        assert_eq!(tracker.event(&key(), 13), Verdict::Gap(Some(10)));
        assert_eq!(tracker.event(&key(), 14), Verdict::Gap(None));
        for seq in 11..=14 {
            assert_eq!(tracker.event(&key(), seq), Verdict::Deliver);
        }
    }

    #[test]
    fn events_before_confirmation_or_after_leaving_are_unwanted() {
        let mut tracker = Tracker::default();
        tracker.begin_session();
        assert_eq!(tracker.event(&key(), 1), Verdict::Unwanted);
        tracker.interest(key(), wanted(1));
        assert_eq!(tracker.event(&key(), 1), Verdict::Unwanted);
        tracker.subscribed(&key(), 1, 0);
        tracker.interest(
            key(),
            Desired {
                subscribers: 0,
                generation: 1,
                version: 2,
            },
        );
        assert_eq!(tracker.event(&key(), 1), Verdict::Unwanted);
    }

    #[test]
    fn resume_sends_the_last_sequence_to_any_hub() {
        let mut tracker = confirmed_at(10);
        tracker.event(&key(), 11);
        assert_eq!(tracker.event(&key(), 13), Verdict::Gap(Some(11)));
        tracker.begin_session();
        assert_eq!(tracker.resume(key(), wanted(1)).resume_after, Some(11));
        assert_eq!(
            tracker.event(&key(), 13),
            Verdict::Gap(Some(11)),
            "asks the new hub again"
        );
    }

    #[test]
    fn a_new_generation_never_replays() {
        let mut tracker = confirmed_at(10);
        tracker.interest(
            key(),
            Desired {
                subscribers: 0,
                generation: 1,
                version: 2,
            },
        );
        tracker.interest(key(), wanted(2));
        assert_eq!(tracker.resume(key(), wanted(2)).resume_after, None);
        assert!(!tracker.subscribed(&key(), 1, 20), "stale generation");
    }

    #[test]
    fn truncation_skips_ahead_and_counts_the_loss() {
        let mut tracker = confirmed_at(10);
        assert_eq!(tracker.event(&key(), 30), Verdict::Gap(Some(10)));
        assert_eq!(tracker.truncated(&key(), 25), 15);
        assert_eq!(tracker.event(&key(), 26), Verdict::Deliver);
    }
}
