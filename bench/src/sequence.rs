//! Sequence accounting: which events each subscriber received, against which were triggered.
//!
//! Every event carries its sequence number. A subscriber's [`Tracker`] notes each arrival in a
//! bit set, so duplicates and gaps are exact rather than inferred from counts; at the end the
//! events it lacks are the accepted triggers (a [`SeqSet`] the trigger loop fills) minus the
//! ones it saw.
//!
//! "Out of order" is relative to the order the triggers were *sent*; triggers in flight at the
//! same time may be accepted by the server in either order, so only a run with
//! `--max-in-flight 1` makes it a fault. What must hold regardless is that every subscriber sees
//! the server's one order: each tracker folds its first arrivals into an order fingerprint, and
//! the report counts the distinct fingerprints among subscribers that received everything. With
//! events spread over several channels (event `seq` on channel `seq % channels`) the server
//! orders each channel on its own, so the fingerprint is taken per channel and then combined:
//! events of two channels may interleave differently for two subscribers without a fault.

/// A set of sequence numbers below a fixed bound, one bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    words: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// An empty set able to hold `0..bound`.
    pub fn with_bound(bound: u64) -> Self {
        let words = usize::try_from(bound.div_ceil(64)).unwrap_or(usize::MAX);
        Self {
            words: vec![0; words],
            len: 0,
        }
    }

    /// The exclusive upper bound of what the set can hold.
    pub fn bound(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    /// Adds `seq`; true when it was not there yet. Panics on a seq at or past the bound (callers
    /// check [`SeqSet::bound`] first: a seq comes from the wire).
    pub fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        let mask = 1u64 << bit;
        let fresh = self.words[word] & mask == 0;
        self.words[word] |= mask;
        self.len += u64::from(fresh);
        fresh
    }

    /// How many numbers the set holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set holds no number.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many numbers of `self` are not in `other`.
    pub fn count_missing_from(&self, other: &SeqSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, word)| {
                let theirs = other.words.get(i).copied().unwrap_or(0);
                u64::from((word & !theirs).count_ones())
            })
            .sum()
    }
}

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First time this sequence number arrived, after every lower one seen so far.
    InOrder,
    /// First time, but a higher number had already arrived.
    OutOfOrder,
    /// Seen before.
    Duplicate,
    /// A number this run never triggers (past the planned count): not our event.
    Foreign,
}

/// One subscriber's view of the event sequence.
#[derive(Debug, Clone)]
pub struct Tracker {
    seen: SeqSet,
    highest: Option<u64>,
    /// Arrivals seen twice or more.
    pub duplicates: u64,
    /// First arrivals below the highest number seen.
    pub out_of_order: u64,
    /// Per channel (`seq % orders.len()`), a fingerprint of the order of first arrivals (FNV-1a
    /// over the sequence numbers).
    orders: Vec<u64>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Tracker {
    /// A tracker for a run that triggers sequence numbers `0..planned` over `channels`
    /// channels (at least 1).
    pub fn new(planned: u64, channels: usize) -> Self {
        Self {
            seen: SeqSet::with_bound(planned),
            highest: None,
            duplicates: 0,
            out_of_order: 0,
            orders: vec![FNV_OFFSET; channels.max(1)],
        }
    }

    /// A fingerprint of the order of first arrivals within each channel: equal for two
    /// subscribers that saw every channel's events in the same order.
    pub fn order(&self) -> u64 {
        self.orders.iter().fold(FNV_OFFSET, |hash, &order| {
            (hash ^ order).wrapping_mul(FNV_PRIME)
        })
    }

    /// Notes an arrival.
    pub fn record(&mut self, seq: u64) -> Arrival {
        if seq >= self.seen.bound() {
            return Arrival::Foreign;
        }
        if !self.seen.insert(seq) {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        let channel = (seq % self.orders.len() as u64) as usize;
        self.orders[channel] = (self.orders[channel] ^ seq).wrapping_mul(FNV_PRIME);
        match self.highest {
            Some(highest) if seq < highest => {
                self.out_of_order += 1;
                Arrival::OutOfOrder
            }
            _ => {
                self.highest = Some(seq);
                Arrival::InOrder
            }
        }
    }

    /// Distinct events received.
    pub fn unique(&self) -> u64 {
        self.seen.len()
    }

    /// Accepted events this subscriber never received.
    pub fn lost(&self, accepted: &SeqSet) -> u64 {
        accepted.count_missing_from(&self.seen)
    }

    /// Events received that were not among the accepted ones (their trigger failed or timed
    /// out, yet the server delivered them).
    pub fn unconfirmed(&self, accepted: &SeqSet) -> u64 {
        self.seen.count_missing_from(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(bound: u64, members: &[u64]) -> SeqSet {
        let mut set = SeqSet::with_bound(bound);
        for &seq in members {
            set.insert(seq);
        }
        set
    }

    #[test]
    fn set_counts_and_differences() {
        let a = set(200, &[0, 1, 63, 64, 130]);
        let b = set(200, &[1, 64]);
        assert_eq!(a.len(), 5);
        assert!(!a.clone().insert(130) && a.clone().insert(131));
        assert_eq!(a.count_missing_from(&b), 3);
        assert_eq!(b.count_missing_from(&a), 0);
        assert_eq!(a.bound(), 256);
    }

    #[test]
    fn classifies_every_arrival() {
        let mut tracker = Tracker::new(10, 1);
        let arrivals: Vec<Arrival> = [0, 2, 1, 2, 3, 99]
            .iter()
            .map(|&s| tracker.record(s))
            .collect();
        assert_eq!(
            arrivals,
            [
                Arrival::InOrder,
                Arrival::InOrder,
                Arrival::OutOfOrder,
                Arrival::Duplicate,
                Arrival::InOrder,
                Arrival::Foreign,
            ]
        );
        assert_eq!(
            (tracker.unique(), tracker.duplicates, tracker.out_of_order),
            (4, 1, 1)
        );
    }

    #[test]
    fn the_order_fingerprint_tells_orders_apart() {
        let fingerprint = |channels: usize, seqs: &[u64]| {
            let mut tracker = Tracker::new(10, channels);
            for &seq in seqs {
                tracker.record(seq);
            }
            tracker.order()
        };
        assert_eq!(
            fingerprint(1, &[0, 2, 1]),
            fingerprint(1, &[0, 2, 2, 1, 99])
        );
        assert_ne!(fingerprint(1, &[0, 2, 1]), fingerprint(1, &[0, 1, 2]));
        // Two channels (even and odd): interleaving them differently is no different order,
        // reordering within one is.
        assert_eq!(fingerprint(2, &[0, 1, 2, 3]), fingerprint(2, &[1, 3, 0, 2]));
        assert_ne!(fingerprint(2, &[0, 1, 2, 3]), fingerprint(2, &[2, 1, 0, 3]));
    }

    #[test]
    fn lost_is_accepted_minus_received() {
        let mut tracker = Tracker::new(8, 1);
        for seq in [0, 1, 3, 6] {
            tracker.record(seq);
        }
        // Trigger 6 failed at the HTTP level yet was delivered; 2, 4 and 5 never arrived.
        let accepted = set(8, &[0, 1, 2, 3, 4, 5]);
        assert_eq!(tracker.lost(&accepted), 3);
        assert_eq!(tracker.unconfirmed(&accepted), 1);
    }
}
