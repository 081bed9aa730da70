//! The board of what registry shards ask of the region, kept as state rather than a queue.
//!
//! A shard decides synchronously and never waits on the region: it records here the channels
//! it follows ([`Follow`]) and the writes it decided ([`Op`]), in the order it decided them. The
//! region's implementation takes everything recorded since its last take and applies it — in one
//! Redis pipeline (group commit), or in memory — then answers each shard through its inbox.
//!
//! Order is kept per channel, so the region never sees an answer that contradicts itself: a
//! count rises before the presence join it includes is recorded, and falls only after the
//! presence leave it excludes. Consecutive counts of the same edge coalesce into the latest (so
//! the board holds at most one count per edge between two presence changes), a repeated leave or
//! announcement is recorded once, and following requests coalesce to the latest per channel: the
//! board stays bounded by the channels, edges and presence sockets the hub holds, however slow
//! the region is.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use herald_shared::channel::ChannelKey;
use herald_shared::ids::SocketId;
use herald_shared::presence::Member;
use tokio::sync::Notify;

use super::Counter;

/// A write a shard decided, for one channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// An edge's subscriber count of the channel, as of `version`.
    Count {
        /// Whose count.
        counter: Counter,
        /// Its subscribers on the channel (0: none any more).
        count: u32,
        /// The edge's interest generation (echoed in the answer).
        generation: u32,
        /// The count's version; answered with [`super::Heard::Counted`].
        version: u64,
    },
    /// A socket joins the presence channel; answered with [`super::Heard::Joined`].
    Join {
        /// The socket.
        socket: SocketId,
        /// Echoed in the answer.
        join_id: u64,
        /// Who joins.
        member: Member,
        /// The app's member limit.
        limit: usize,
    },
    /// A socket this hub already holds is recorded again (the region may have lost it), without
    /// announcing anything and without an answer.
    Reassert {
        /// The socket.
        socket: SocketId,
        /// Who it is.
        member: Member,
    },
    /// A socket this hub holds leaves the presence channel.
    Leave {
        /// The socket.
        socket: SocketId,
    },
    /// Announce the channel's subscription count to its subscribers, unless some hub did within
    /// `interval`; answered with [`super::Heard::Announced`].
    Announce {
        /// At most one announcement per interval, region-wide.
        interval: Duration,
    },
}

/// Whether a shard follows a channel (receives its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Start following, then read the channel's sequence, its history after `after` and its
    /// cache; answered with [`super::Heard::Fetched`].
    Attach {
        /// History is wanted after this sequence.
        after: Option<u64>,
    },
    /// Read the channel's sequence, history after `after` and cache again (a gap, a resume
    /// beyond the registry's history, or a catch-up after a reconnect).
    Fetch {
        /// History is wanted after this sequence.
        after: Option<u64>,
    },
    /// Stop following.
    Detach,
}

/// Writes taken from the board, per channel in the order they were decided.
pub type Taken = Vec<(ChannelKey, Vec<Op>)>;

#[derive(Debug, Default)]
struct State {
    ops: HashMap<ChannelKey, Vec<Op>>,
    follows: HashMap<ChannelKey, Follow>,
}

/// Shared by the registry shards (writers) and the region's implementation (reader).
#[derive(Debug, Default)]
pub struct Pending {
    state: Mutex<State>,
    ops_changed: Notify,
    follows_changed: Notify,
}

/// Appends `op` to a channel's list, coalescing it with what is already there.
fn push(ops: &mut Vec<Op>, op: Op) {
    match &op {
        Op::Count { counter, .. } => {
            if let Some(Op::Count { counter: last, .. }) = ops.last_mut()
                && last == counter
            {
                *ops.last_mut().expect("just matched") = op;
                return;
            }
        }
        Op::Leave { socket } => {
            let last_join = ops.iter().rposition(|op| match op {
                Op::Join { socket: joined, .. } | Op::Reassert { socket: joined, .. } => {
                    joined == socket
                }
                _ => false,
            });
            let already = ops.iter().enumerate().any(|(at, op)| {
                matches!(op, Op::Leave { socket: left } if left == socket)
                    && last_join.is_none_or(|join| at > join)
            });
            if already {
                return;
            }
        }
        Op::Announce { .. } => {
            if ops.iter().any(|op| matches!(op, Op::Announce { .. })) {
                return;
            }
        }
        Op::Join { .. } | Op::Reassert { .. } => {}
    }
    ops.push(op);
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Entries are plain values; a panic elsewhere cannot leave them half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a write for `key`, after every write recorded for it before.
    pub fn record(&self, key: &ChannelKey, op: Op) {
        let mut state = self.lock();
        match state.ops.get_mut(key) {
            Some(ops) => push(ops, op),
            None => {
                state.ops.insert(key.clone(), vec![op]);
            }
        }
        drop(state);
        self.ops_changed.notify_one();
    }

    /// Records whether `key` is followed (the latest request wins).
    pub fn follow(&self, key: &ChannelKey, follow: Follow) {
        self.lock().follows.insert(key.clone(), follow);
        self.follows_changed.notify_one();
    }

    /// Takes every write recorded since the last take.
    pub fn take_ops(&self) -> Taken {
        self.lock().ops.drain().collect()
    }

    /// Puts writes that could not be applied back in front of those recorded since.
    pub fn requeue(&self, taken: Taken) {
        if taken.is_empty() {
            return;
        }
        let mut state = self.lock();
        for (key, mut ops) in taken {
            if let Some(newer) = state.ops.remove(&key) {
                for op in newer {
                    push(&mut ops, op);
                }
            }
            state.ops.insert(key, ops);
        }
        drop(state);
        self.ops_changed.notify_one();
    }

    /// Takes every following request recorded since the last take.
    pub fn take_follows(&self) -> Vec<(ChannelKey, Follow)> {
        self.lock().follows.drain().collect()
    }

    /// Waits until a write is recorded (a write recorded before the wait is not missed).
    pub async fn ops_changed(&self) {
        self.ops_changed.notified().await;
    }

    /// Waits until a following request is recorded.
    pub async fn follows_changed(&self) {
        self.follows_changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::channel::ChannelName;
    use herald_shared::ids::{AppId, EdgeId};

    fn key(name: &str) -> ChannelKey {
        ChannelKey::new(AppId::new("1"), ChannelName::parse(name).unwrap())
    }

    fn counter(edge: u64) -> Counter {
        Counter {
            edge: EdgeId(edge),
            session: 1,
        }
    }

    fn count(edge: u64, count: u32, version: u64) -> Op {
        Op::Count {
            counter: counter(edge),
            count,
            generation: 1,
            version,
        }
    }

    fn join(socket: u64) -> Op {
        Op::Join {
            socket: SocketId {
                high: 1,
                low: socket,
            },
            join_id: socket,
            member: Member::parse(Some(r#"{"user_id":"u"}"#), 100).unwrap(),
            limit: 100,
        }
    }

    fn leave(socket: u64) -> Op {
        Op::Leave {
            socket: SocketId {
                high: 1,
                low: socket,
            },
        }
    }

    #[test]
    fn consecutive_counts_of_an_edge_coalesce_but_never_across_presence_changes() {
        let pending = Pending::default();
        let a = key("presence-a");
        pending.record(&a, count(1, 1, 1));
        pending.record(&a, count(1, 2, 2));
        pending.record(&a, join(2));
        pending.record(&a, count(2, 1, 1));
        pending.record(&a, leave(1));
        pending.record(&a, count(1, 1, 3));
        pending.record(&a, count(1, 0, 4));
        assert_eq!(
            pending.take_ops(),
            vec![(
                a,
                vec![
                    count(1, 2, 2),
                    join(2),
                    count(2, 1, 1),
                    leave(1),
                    count(1, 0, 4)
                ]
            )]
        );
        assert!(pending.take_ops().is_empty());
    }

    #[test]
    fn repeated_leaves_and_announcements_are_recorded_once() {
        let pending = Pending::default();
        let a = key("presence-a");
        let announce = Op::Announce {
            interval: Duration::from_secs(1),
        };
        pending.record(&a, leave(1));
        pending.record(&a, announce.clone());
        pending.record(&a, leave(1));
        pending.record(&a, announce.clone());
        pending.record(&a, join(1));
        pending.record(&a, leave(1));
        assert_eq!(
            pending.take_ops(),
            vec![(a, vec![leave(1), announce, join(1), leave(1)])]
        );
    }

    #[test]
    fn requeued_writes_go_before_newer_ones() {
        let pending = Pending::default();
        let a = key("a");
        pending.record(&a, count(1, 1, 1));
        let taken = pending.take_ops();
        pending.record(&a, count(2, 1, 1));
        pending.record(&a, count(1, 2, 2));
        pending.requeue(taken);
        assert_eq!(
            pending.take_ops(),
            vec![(a, vec![count(1, 1, 1), count(2, 1, 1), count(1, 2, 2)])]
        );
    }

    #[test]
    fn the_latest_following_request_wins() {
        let pending = Pending::default();
        pending.follow(&key("a"), Follow::Attach { after: None });
        pending.follow(&key("a"), Follow::Detach);
        pending.follow(&key("b"), Follow::Detach);
        pending.follow(&key("b"), Follow::Attach { after: Some(3) });
        let mut follows = pending.take_follows();
        follows.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            follows,
            vec![
                (key("a"), Follow::Detach),
                (key("b"), Follow::Attach { after: Some(3) })
            ]
        );
    }

    #[tokio::test]
    async fn a_write_before_waiting_is_not_missed() {
        let pending = Pending::default();
        pending.record(&key("a"), count(1, 1, 1));
        tokio::time::timeout(Duration::from_secs(1), pending.ops_changed())
            .await
            .expect("the stored permit wakes the waiter");
    }
}
