//! The board: what the edge has to tell its hub, kept as state rather than a queue.
//!
//! Index shards write here — a channel's current subscriber count, a socket's presence
//! membership, a signed-in user's watchlist — and the link task takes the changed entries
//! whenever it can. Several changes between two takes coalesce into the latest value, so the
//! board never holds more than one entry per channel, socket or user however slow the link is,
//! and nothing is lost. After a reconnect the link takes a [`Board::snapshot`] and re-sends it
//! all. Client events are events, not state: they wait in a bounded queue, and a full queue
//! refuses the event (the sender gets an error).
//!
//! Changes are handed over in dependency order: presence leaves first, then interest, then
//! presence joins, watchlists, client events, and the replays resuming sockets wait for (state
//! like interest: a replay stays on the board until it is answered or its socket leaves). The hub must route a channel to this edge before a
//! presence join on it is answered; and the region must never see a member whose subscription is
//! not counted — so a count falls only after the leave it excludes, and rises before the join it
//! includes. (An index shard records a leave before the count that excludes it, and a count
//! before the join it includes, so a take between the two keeps that order too.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use herald_shared::channel::ChannelKey;
use herald_shared::ids::{AppId, SocketId};
use herald_shared::link::{ClientEvent, PresenceChange, ReplayRequest};
use herald_shared::presence::Member;
use tokio::sync::Notify;

/// Client events queued for the link before new ones are refused.
const CLIENT_EVENT_QUEUE: usize = 4096;

/// What the edge wants for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired {
    /// Local subscribers; 0 means the channel is no longer wanted.
    pub subscribers: u32,
    /// The interest generation (see `Interest::generation`).
    pub generation: u32,
    /// The count's version (see `Interest::version`).
    pub version: u64,
}

/// A socket's presence membership.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Joining {
    join_id: u64,
    member: Member,
}

type MemberKey = (ChannelKey, SocketId);
type UserKey = (AppId, String);

/// Changes taken from the board, in the order they must be sent.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Presence leaves.
    pub leaves: Vec<PresenceChange>,
    /// Channel interest.
    pub interests: Vec<(ChannelKey, Desired)>,
    /// Presence joins.
    pub joins: Vec<PresenceChange>,
    /// Watchlists of signed-in users (empty: the user's last socket left).
    pub watchlists: Vec<(AppId, String, Vec<String>)>,
    /// Client events, oldest first.
    pub client_events: Vec<ClientEvent>,
    /// Replays resuming sockets wait for (`docs/resume.md`).
    pub replays: Vec<ReplayRequest>,
}

#[derive(Debug, Default)]
struct State {
    wanted: HashMap<ChannelKey, Desired>,
    interest_dirty: HashMap<ChannelKey, Desired>,
    members: HashMap<MemberKey, Joining>,
    members_dirty: HashMap<MemberKey, Option<Joining>>,
    watchlists: HashMap<UserKey, Vec<String>>,
    watchlists_dirty: HashMap<UserKey, Vec<String>>,
    client_events: VecDeque<ClientEvent>,
    /// Each resuming socket's replay until it is answered or the socket leaves: state, so a
    /// new link session asks its hub again.
    replays: HashSet<ReplayRequest>,
    replays_dirty: HashSet<ReplayRequest>,
}

/// Shared between the index shards (writers) and the link task (reader).
#[derive(Debug, Default)]
pub struct Board {
    state: Mutex<State>,
    changed: Notify,
}

fn presence_change((key, socket): MemberKey, joining: Option<Joining>) -> PresenceChange {
    match joining {
        Some(Joining { join_id, member }) => PresenceChange::Join {
            key,
            socket,
            join_id,
            member,
        },
        None => PresenceChange::Leave { key, socket },
    }
}

impl Board {
    fn update(&self, change: impl FnOnce(&mut State)) {
        // Entries are plain values; a panic elsewhere cannot leave them half-written.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut state);
        drop(state);
        self.changed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the current subscriber count of a channel, as of `version`.
    pub fn set(&self, key: ChannelKey, subscribers: u32, generation: u32, version: u64) {
        let desired = Desired {
            subscribers,
            generation,
            version,
        };
        self.update(|state| {
            if subscribers == 0 {
                state.wanted.remove(&key);
            } else {
                state.wanted.insert(key.clone(), desired);
            }
            state.interest_dirty.insert(key, desired);
        });
    }

    /// A socket joins a presence channel as `member`.
    pub fn join(&self, key: ChannelKey, socket: SocketId, join_id: u64, member: Member) {
        let joining = Joining { join_id, member };
        self.update(|state| {
            state.members.insert((key.clone(), socket), joining.clone());
            state.members_dirty.insert((key, socket), Some(joining));
        });
    }

    /// A socket leaves a presence channel.
    pub fn leave(&self, key: ChannelKey, socket: SocketId) {
        let member = (key, socket);
        self.update(|state| {
            // `members` holds every join not yet left (pending or sent), so without an entry
            // there the socket either never joined or its leave is already recorded.
            if state.members.remove(&member).is_some() {
                state.members_dirty.insert(member, None);
            }
        });
    }

    /// Records a signed-in user's watchlist (empty: forget it).
    pub fn watchlist(&self, app: AppId, user_id: String, watched: Vec<String>) {
        self.update(|state| {
            let key = (app, user_id);
            if watched.is_empty() {
                state.watchlists.remove(&key);
            } else {
                state.watchlists.insert(key.clone(), watched.clone());
            }
            state.watchlists_dirty.insert(key, watched);
        });
    }

    /// Queues a client event; `false` when the queue is full.
    pub fn client_event(&self, event: ClientEvent) -> bool {
        let mut accepted = false;
        self.update(|state| {
            if state.client_events.len() < CLIENT_EVENT_QUEUE {
                state.client_events.push_back(event);
                accepted = true;
            }
        });
        accepted
    }

    /// A resuming socket waits for its replay.
    pub fn replay(&self, request: ReplayRequest) {
        self.update(|state| {
            state.replays.insert(request.clone());
            state.replays_dirty.insert(request);
        });
    }

    /// A replay was answered, or its socket left: it is not asked for again.
    pub fn replay_done(&self, request: &ReplayRequest) {
        let mut state = self.lock();
        state.replays.remove(request);
        state.replays_dirty.remove(request);
    }

    /// Takes the changes since the last take.
    pub fn take(&self) -> Changes {
        let mut state = self.lock();
        let (joins, leaves): (Vec<_>, Vec<_>) = state
            .members_dirty
            .drain()
            .map(|(key, joining)| presence_change(key, joining))
            .partition(|change| matches!(change, PresenceChange::Join { .. }));
        Changes {
            leaves,
            interests: state.interest_dirty.drain().collect(),
            joins,
            watchlists: state
                .watchlists_dirty
                .drain()
                .map(|((app, user), watched)| (app, user, watched))
                .collect(),
            client_events: state.client_events.drain(..).collect(),
            replays: state.replays_dirty.drain().collect(),
        }
    }

    /// Everything currently true, clearing the pending changes (a reconnect re-sends it all);
    /// queued client events are kept in order.
    pub fn snapshot(&self) -> Changes {
        let mut state = self.lock();
        state.interest_dirty.clear();
        state.members_dirty.clear();
        state.watchlists_dirty.clear();
        state.replays_dirty.clear();
        Changes {
            leaves: Vec::new(),
            interests: state.wanted.iter().map(|(k, d)| (k.clone(), *d)).collect(),
            joins: state
                .members
                .iter()
                .map(|(key, joining)| presence_change(key.clone(), Some(joining.clone())))
                .collect(),
            watchlists: state
                .watchlists
                .iter()
                .map(|((app, user), watched)| (app.clone(), user.clone(), watched.clone()))
                .collect(),
            client_events: state.client_events.drain(..).collect(),
            replays: state.replays.iter().cloned().collect(),
        }
    }

    /// Waits until something changed since the last wait returned.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::channel::ChannelName;
    use herald_shared::event::{EventData, EventName};

    fn key(name: &str) -> ChannelKey {
        ChannelKey::new(AppId::new("1"), ChannelName::parse(name).unwrap())
    }

    fn socket(low: u64) -> SocketId {
        SocketId { high: 1, low }
    }

    fn member(id: &str) -> Member {
        Member::parse(Some(&format!(r#"{{"user_id":"{id}"}}"#)), 100).unwrap()
    }

    #[test]
    fn interest_changes_coalesce_to_the_latest_value() {
        let board = Board::default();
        board.set(key("a"), 1, 1, 1);
        board.set(key("a"), 2, 1, 2);
        board.set(key("a"), 3, 1, 3);
        assert_eq!(
            board.take().interests,
            vec![(
                key("a"),
                Desired {
                    subscribers: 3,
                    generation: 1,
                    version: 3
                }
            )]
        );
        assert_eq!(board.take(), Changes::default());
    }

    #[test]
    fn snapshot_holds_what_is_current() {
        let board = Board::default();
        board.set(key("a"), 1, 1, 1);
        board.set(key("b"), 1, 2, 1);
        board.set(key("b"), 0, 2, 2);
        board.join(key("presence-a"), socket(1), 7, member("u"));
        board.join(key("presence-a"), socket(2), 8, member("v"));
        board.leave(key("presence-a"), socket(2));
        board.watchlist(AppId::new("1"), "u".into(), vec!["v".into()]);
        let snapshot = board.snapshot();
        assert_eq!(
            snapshot.interests,
            vec![(
                key("a"),
                Desired {
                    subscribers: 1,
                    generation: 1,
                    version: 1
                }
            )]
        );
        assert!(snapshot.leaves.is_empty());
        assert_eq!(
            snapshot.joins,
            vec![PresenceChange::Join {
                key: key("presence-a"),
                socket: socket(1),
                join_id: 7,
                member: member("u")
            }]
        );
        assert_eq!(snapshot.watchlists.len(), 1);
        assert_eq!(
            board.take(),
            Changes::default(),
            "a snapshot supersedes pending changes"
        );
    }

    #[test]
    fn a_leave_after_a_join_is_a_leave() {
        let board = Board::default();
        board.join(key("presence-a"), socket(1), 1, member("u"));
        board.leave(key("presence-a"), socket(1));
        assert_eq!(
            board.take().leaves,
            vec![PresenceChange::Leave {
                key: key("presence-a"),
                socket: socket(1)
            }]
        );
    }

    #[test]
    fn leaves_come_before_interest_and_joins_after_it() {
        let board = Board::default();
        board.join(key("presence-a"), socket(1), 1, member("u"));
        board.take();
        // Socket 1 leaves (and the count falls), socket 2 joins (and the count rises).
        board.leave(key("presence-a"), socket(1));
        board.set(key("presence-a"), 0, 1, 2);
        board.set(key("presence-b"), 1, 1, 1);
        board.join(key("presence-b"), socket(2), 2, member("v"));
        let changes = board.take();
        assert_eq!(changes.leaves.len(), 1);
        assert_eq!(changes.interests.len(), 2);
        assert!(matches!(
            changes.joins.as_slice(),
            [PresenceChange::Join { join_id: 2, .. }]
        ));
    }

    #[test]
    fn client_events_keep_their_order_and_are_bounded() {
        let board = Board::default();
        let event = |n: usize| ClientEvent {
            key: key("private-a"),
            name: EventName::parse("client-x").unwrap(),
            data: EventData::from_string(&n.to_string()),
            socket: socket(1),
            user_id: None,
        };
        for n in 0..CLIENT_EVENT_QUEUE {
            assert!(board.client_event(event(n)));
        }
        assert!(!board.client_event(event(0)), "a full queue refuses");
        let taken = board.take().client_events;
        assert_eq!(taken.len(), CLIENT_EVENT_QUEUE);
        assert_eq!(taken[1], event(1));
    }

    #[tokio::test]
    async fn a_change_before_waiting_is_not_missed() {
        let board = Board::default();
        board.set(key("a"), 1, 1, 1);
        tokio::time::timeout(std::time::Duration::from_secs(1), board.changed())
            .await
            .expect("the stored permit wakes the waiter");
    }
}
