//! A channel's recent events, bounded by count and age, for resume and backfill (R-HA-2).
//!
//! Entries are the encoded link frames, so a replay writes the very bytes that were sent live.
//! Pure: time is passed in.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// How much history each channel keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Most events kept per channel.
    pub max_events: usize,
    /// Oldest event kept.
    pub max_age: Duration,
}

/// What history holds after a given sequence.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay<'a> {
    /// Every event after the sequence, oldest first.
    Complete(Vec<&'a Bytes>),
    /// Some events after the sequence are gone; these are the ones left, which follow
    /// `resume_after`.
    Truncated {
        /// The last sequence that is missing.
        resume_after: u64,
        /// The events still held.
        events: Vec<&'a Bytes>,
    },
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    at: Instant,
    frame: Bytes,
}

/// One channel's history.
#[derive(Debug, Default)]
pub struct History {
    entries: VecDeque<Entry>,
}

impl History {
    /// Records the event `seq`: usually the newest, but an older one fetched from Redis finds
    /// its place in order (a sequence already held is kept as it is).
    pub fn push(&mut self, seq: u64, frame: Bytes, now: Instant, limits: HistoryLimits) {
        let entry = Entry {
            seq,
            at: now,
            frame,
        };
        match self.entries.back() {
            None => self.entries.push_back(entry),
            Some(last) if last.seq < seq => self.entries.push_back(entry),
            Some(_) => {
                if let Err(position) = self.entries.binary_search_by_key(&seq, |e| e.seq) {
                    self.entries.insert(position, entry);
                }
            }
        }
        while self.entries.len() > limits.max_events {
            self.entries.pop_front();
        }
        self.expire(now, limits);
    }

    /// Drops entries older than the age limit.
    pub fn expire(&mut self, now: Instant, limits: HistoryLimits) {
        while self
            .entries
            .front()
            .is_some_and(|entry| now.saturating_duration_since(entry.at) > limits.max_age)
        {
            self.entries.pop_front();
        }
    }

    /// When the newest event held expires by age (`None` when nothing is held): from then on
    /// the history is empty.
    pub fn expires_at(&self, limits: HistoryLimits) -> Option<Instant> {
        self.entries.back().map(|entry| entry.at + limits.max_age)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The events after `after`, up to the channel's current sequence `current`.
    pub fn after(&self, after: u64, current: u64) -> Replay<'_> {
        let start = self.entries.partition_point(|entry| entry.seq <= after);
        let events: Vec<&Bytes> = self
            .entries
            .range(start..)
            .map(|entry| &entry.frame)
            .collect();
        if self.covers(after, current) {
            Replay::Complete(events)
        } else {
            Replay::Truncated {
                resume_after: self.first_after(after, current) - 1,
                events,
            }
        }
    }

    fn first_after(&self, after: u64, current: u64) -> u64 {
        let start = self.entries.partition_point(|entry| entry.seq <= after);
        self.entries
            .get(start)
            .map_or(current + 1, |entry| entry.seq)
    }

    /// Whether every event after `after` up to `current` is held.
    pub fn covers(&self, after: u64, current: u64) -> bool {
        after >= current || self.first_after(after, current) == after + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HistoryLimits = HistoryLimits {
        max_events: 3,
        max_age: Duration::from_secs(60),
    };

    fn frame(seq: u64) -> Bytes {
        Bytes::from(seq.to_string())
    }

    fn filled(now: Instant, seqs: std::ops::RangeInclusive<u64>) -> History {
        let mut history = History::default();
        for seq in seqs {
            history.push(seq, frame(seq), now, LIMITS);
        }
        history
    }

    #[test]
    fn replays_everything_after_a_held_sequence() {
        let history = filled(Instant::now(), 1..=3);
        assert_eq!(
            history.after(1, 3),
            Replay::Complete(vec![&frame(2), &frame(3)])
        );
        assert_eq!(history.after(3, 3), Replay::Complete(vec![]));
        assert_eq!(history.after(9, 3), Replay::Complete(vec![]));
    }

    #[test]
    fn reports_what_the_count_bound_dropped() {
        let history = filled(Instant::now(), 1..=5);
        assert_eq!(
            history.after(1, 5),
            Replay::Truncated {
                resume_after: 2,
                events: vec![&frame(3), &frame(4), &frame(5)]
            }
        );
        assert_eq!(
            history.after(2, 5),
            Replay::Complete(vec![&frame(3), &frame(4), &frame(5)])
        );
    }

    #[test]
    fn older_events_find_their_place() {
        let now = Instant::now();
        let mut history = filled(now, 3..=4);
        history.push(2, frame(2), now, LIMITS);
        history.push(3, frame(99), now, LIMITS);
        assert_eq!(
            history.after(1, 4),
            Replay::Complete(vec![&frame(2), &frame(3), &frame(4)])
        );
    }

    #[test]
    fn expires_by_age() {
        let start = Instant::now();
        let mut history = filled(start, 1..=2);
        history.expire(start + Duration::from_secs(61), LIMITS);
        assert!(history.is_empty());
        assert_eq!(
            history.after(0, 2),
            Replay::Truncated {
                resume_after: 2,
                events: vec![]
            }
        );
    }
}
