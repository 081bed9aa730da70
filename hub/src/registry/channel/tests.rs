//! The sequencing core without I/O: edges are queues read back as frames, time is passed in.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::event::{EventData, EventName};
use herald_shared::ids::{AppId, EdgeId, SocketId};
use herald_shared::link::{
    self, Event, HubToEdge, Interest, PresenceOutcome, ReplayEnd, ReplayRequest,
};
use herald_shared::presence::Member;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::edge::{EdgeLink, LinkId};
use crate::history::HistoryLimits;
use crate::region::{Counter, Fetched, JoinOutcome, Op, Retention};

const LIFETIMES: Lifetimes = Lifetimes {
    history: HistoryLimits {
        max_events: 100,
        max_age: Duration::from_secs(60),
    },
    cache_ttl: Duration::from_secs(30),
};

fn key(name: &str) -> ChannelKey {
    ChannelKey::new(AppId::new("1"), ChannelName::parse(name).unwrap())
}

/// An edge whose one stream is a queue the test reads.
struct TestEdge {
    link: Arc<EdgeLink>,
    frames: mpsc::Receiver<Bytes>,
}

impl TestEdge {
    fn new(id: u64) -> Self {
        let (tx, rx) = mpsc::channel(256);
        let link = EdgeLink::new(
            LinkId(id),
            EdgeId(id),
            1,
            vec![tx],
            CancellationToken::new(),
        );
        Self {
            link: Arc::new(link),
            frames: rx,
        }
    }

    fn counter(&self) -> Counter {
        Counter {
            edge: self.link.edge_id,
            session: 1,
        }
    }

    /// Every frame queued so far.
    fn frames(&mut self) -> Vec<HubToEdge> {
        let mut frames = Vec::new();
        while let Ok(frame) = self.frames.try_recv() {
            frames.push(link::decode(&frame[4..]).expect("the hub encodes valid frames"));
        }
        frames
    }

    /// The sequences of the events queued so far (other frames must not be there).
    fn events(&mut self) -> Vec<u64> {
        self.frames()
            .into_iter()
            .map(|frame| match frame {
                HubToEdge::Event(event) => event.seq,
                other => panic!("expected an event, got {other:?}"),
            })
            .collect()
    }
}

fn interest(
    name: &str,
    subscribers: u32,
    generation: u32,
    version: u64,
    resume_after: Option<u64>,
) -> Interest {
    Interest {
        key: key(name),
        subscribers,
        generation,
        version,
        resume_after,
    }
}

fn event(name: &str, seq: u64) -> Event {
    Event {
        key: key(name),
        seq,
        name: EventName::parse("e").unwrap(),
        data: EventData::from_string(&seq.to_string()),
        exclude: None,
        user_id: None,
        accepted_micros: 0,
    }
}

fn fetched(seq: u64, events: Vec<Event>) -> Fetched {
    Fetched {
        seq,
        events,
        cached: None,
    }
}

/// A channel attached at `seq` with `edge` confirmed.
fn attached(name: &str, edge: &mut TestEdge, seq: u64, now: Instant) -> ChannelState {
    let mut channel = ChannelState::new(key(name));
    let outcome = channel.interest(edge.link.clone(), interest(name, 1, 1, 1, None), now);
    assert!(outcome.fetch, "a new channel is attached first");
    assert_eq!(channel.start_fetch(), Some((None, true)));
    channel.fetched(fetched(seq, Vec::new()), None, true, now, LIFETIMES);
    assert!(matches!(
        edge.frames().as_slice(),
        [HubToEdge::Subscribed { seq: at, generation: 1, .. }] if *at == seq
    ));
    channel
}

#[test]
fn an_interest_is_confirmed_once_attached_and_counted_at_every_change() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = ChannelState::new(key("a"));
    let outcome = channel.interest(edge.link.clone(), interest("a", 1, 1, 1, None), now);
    let counter = edge.counter();
    let count = |count, version| Op::Count {
        counter,
        count,
        generation: 1,
        version,
    };
    assert_eq!(
        outcome,
        InterestOutcome {
            fetch: true,
            count: Some(count(1, 1))
        }
    );
    assert!(edge.frames().is_empty(), "not confirmed before the attach");
    assert_eq!(channel.start_fetch(), Some((None, true)));
    assert_eq!(channel.start_fetch(), None, "one fetch at a time");
    channel.fetched(fetched(10, Vec::new()), None, true, now, LIFETIMES);
    assert!(matches!(
        edge.frames().as_slice(),
        [HubToEdge::Subscribed { seq: 10, .. }]
    ));
    let more = channel.interest(edge.link.clone(), interest("a", 3, 1, 2, None), now);
    assert_eq!(
        more,
        InterestOutcome {
            fetch: false,
            count: Some(count(3, 2))
        }
    );
    assert!(
        edge.frames().is_empty(),
        "the same generation is not confirmed again"
    );
    // Two sockets came and went: the count is the same, its version is new, and is written
    // again so that the edge hears when the region holds it.
    let same = channel.interest(edge.link.clone(), interest("a", 3, 1, 4, None), now);
    assert_eq!(same.count, Some(count(3, 4)));
    assert_eq!(channel.local_subscriptions(), 3);
}

#[test]
fn events_are_delivered_in_order_once() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = attached("a", &mut edge, 10, now);
    assert!(!channel.receive(event("a", 11), now, LIFETIMES));
    assert!(
        !channel.receive(event("a", 11), now, LIFETIMES),
        "a duplicate"
    );
    assert!(
        !channel.receive(event("a", 3), now, LIFETIMES),
        "an old one"
    );
    assert!(!channel.receive(event("a", 12), now, LIFETIMES));
    assert_eq!(edge.events(), vec![11, 12]);
}

#[test]
fn events_after_a_gap_wait_for_the_back_fill() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = attached("a", &mut edge, 10, now);
    assert!(
        channel.receive(event("a", 13), now, LIFETIMES),
        "a gap needs a fetch"
    );
    assert!(channel.has_gap());
    assert!(channel.receive(event("a", 12), now, LIFETIMES));
    assert!(edge.events().is_empty(), "held until the gap is filled");
    assert_eq!(channel.start_fetch(), Some((Some(10), false)));
    channel.fetched(
        fetched(13, vec![event("a", 11), event("a", 12)]),
        Some(10),
        false,
        now,
        LIFETIMES,
    );
    assert_eq!(edge.events(), vec![11, 12, 13]);
    assert!(!channel.has_gap());
}

#[test]
fn what_history_no_longer_has_is_skipped_and_the_held_events_follow() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = attached("a", &mut edge, 10, now);
    assert!(channel.receive(event("a", 15), now, LIFETIMES));
    channel.start_fetch();
    // History answers up to 15 but holds only 14: 11 to 13 are gone for good.
    channel.fetched(
        fetched(15, vec![event("a", 14)]),
        Some(10),
        false,
        now,
        LIFETIMES,
    );
    assert_eq!(edge.events(), vec![14, 15]);
    assert!(!channel.receive(event("a", 16), now, LIFETIMES));
    assert_eq!(edge.events(), vec![16]);
}

#[test]
fn a_resume_within_the_history_held_is_replayed_at_once() {
    let now = Instant::now();
    let mut first = TestEdge::new(1);
    let mut channel = attached("a", &mut first, 10, now);
    for seq in 11..=13 {
        channel.receive(event("a", seq), now, LIFETIMES);
    }
    let mut resuming = TestEdge::new(2);
    let outcome = channel.interest(resuming.link.clone(), interest("a", 1, 4, 1, Some(11)), now);
    assert!(!outcome.fetch);
    let frames = resuming.frames();
    let seqs: Vec<u64> = frames
        .iter()
        .filter_map(|frame| match frame {
            HubToEdge::Event(event) => Some(event.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![12, 13]);
    assert!(matches!(
        frames.last(),
        Some(HubToEdge::Subscribed {
            seq: 13,
            generation: 4,
            ..
        })
    ));
}

#[test]
fn a_resume_beyond_the_history_held_waits_for_a_fetch_and_reports_a_truncation() {
    let now = Instant::now();
    let mut first = TestEdge::new(1);
    let mut channel = attached("a", &mut first, 10, now);
    let mut resuming = TestEdge::new(2);
    let outcome = channel.interest(resuming.link.clone(), interest("a", 1, 1, 1, Some(5)), now);
    assert!(outcome.fetch);
    assert!(resuming.frames().is_empty());
    let (tx, mut settled) = tokio::sync::oneshot::channel();
    channel.when_settled(tx);
    assert_eq!(
        channel.start_fetch(),
        Some((Some(5), false)),
        "from the earliest resume"
    );
    // The region's history starts at 8: 6 and 7 are lost.
    channel.fetched(
        fetched(10, vec![event("a", 8), event("a", 9), event("a", 10)]),
        Some(5),
        false,
        now,
        LIFETIMES,
    );
    let frames = resuming.frames();
    assert!(
        matches!(
            frames.first(),
            Some(HubToEdge::Truncated {
                resume_after: 7,
                ..
            })
        ),
        "{frames:?}"
    );
    assert_eq!(frames.len(), 5, "truncation, three events, confirmation");
    assert!(matches!(
        frames.last(),
        Some(HubToEdge::Subscribed { seq: 10, .. })
    ));
    assert_eq!(settled.try_recv(), Ok(()));
}

#[test]
fn a_failed_fetch_keeps_the_interest_waiting_until_the_retry() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = ChannelState::new(key("a"));
    channel.interest(edge.link.clone(), interest("a", 1, 1, 1, None), now);
    channel.start_fetch();
    let retry = now + Duration::from_millis(500);
    channel.fetch_failed(retry);
    assert!(channel.needs_fetch());
    assert_eq!(channel.retry_at(), Some(retry));
    assert_eq!(channel.start_fetch(), Some((None, true)), "attach again");
    assert_eq!(channel.retry_at(), None);
    channel.fetched(fetched(1, Vec::new()), None, true, now, LIFETIMES);
    assert_eq!(edge.frames().len(), 1);
}

fn member(user: &str) -> Member {
    Member::parse(Some(&format!(r#"{{"user_id":"{user}"}}"#)), 100).unwrap()
}

fn joining(socket: u64, join_id: u64, user: &str) -> Joining {
    Joining {
        socket: SocketId {
            high: 1,
            low: socket,
        },
        join_id,
        member: member(user),
        limit: 100,
    }
}

fn socket(low: u64) -> SocketId {
    SocketId { high: 1, low }
}

#[test]
fn a_join_goes_to_the_region_once_its_edge_is_confirmed_and_its_count_durable() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = ChannelState::new(key("presence-a"));
    channel.interest(
        edge.link.clone(),
        interest("presence-a", 1, 1, 1, None),
        now,
    );
    channel.defer_join(edge.link.clone(), joining(1, 7, "u"));
    assert!(channel.ready_joins().is_empty(), "not confirmed yet");
    channel.start_fetch();
    channel.fetched(fetched(10, Vec::new()), None, true, now, LIFETIMES);
    assert!(matches!(
        edge.frames().as_slice(),
        [HubToEdge::Subscribed { .. }]
    ));
    assert!(
        channel.ready_joins().is_empty(),
        "confirmed, but the count with the socket is not durable yet"
    );
    assert!(channel.counted(edge.counter(), 1, 1));
    assert!(
        matches!(
            edge.frames().as_slice(),
            [HubToEdge::Counted {
                generation: 1,
                version: 1,
                ..
            }]
        ),
        "the edge hears that its count is held"
    );
    assert!(!channel.counted(edge.counter(), 2, 1), "another generation");
    let ready = channel.ready_joins();
    assert!(matches!(ready.as_slice(), [Op::Join { join_id: 7, .. }]));
    edge.frames();
    let accepted = JoinOutcome::Accepted {
        snapshot: "{}".into(),
        seq: 10,
    };
    assert_eq!(channel.joined(socket(1), 7, Ok(accepted)), None);
    assert!(matches!(
        edge.frames().as_slice(),
        [HubToEdge::Presence(answer)]
            if matches!(answer.outcome, PresenceOutcome::Joined { seq: 10, .. })
    ));
    assert_eq!(
        channel.leave(socket(1)),
        Some(Op::Leave { socket: socket(1) })
    );
}

#[test]
fn a_socket_that_leaves_while_its_join_is_in_flight_is_undone() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = attached("presence-a", &mut edge, 10, now);
    channel.counted(edge.counter(), 1, 1);
    edge.frames();
    channel.defer_join(edge.link.clone(), joining(1, 7, "u"));
    assert_eq!(channel.ready_joins().len(), 1);
    assert_eq!(channel.leave(socket(1)), None, "its answer decides");
    let accepted = JoinOutcome::Accepted {
        snapshot: "{}".into(),
        seq: 10,
    };
    assert_eq!(
        channel.joined(socket(1), 7, Ok(accepted)),
        Some(Op::Leave { socket: socket(1) })
    );
    assert!(edge.frames().is_empty(), "nobody to answer");
    // A leave before the join was handed to the region needs nothing from the region.
    channel.interest(
        edge.link.clone(),
        interest("presence-a", 2, 1, 2, None),
        now,
    );
    channel.defer_join(edge.link.clone(), joining(2, 8, "v"));
    assert!(
        channel.ready_joins().is_empty(),
        "waits for count version 2"
    );
    assert_eq!(channel.leave(socket(2)), None);
    channel.counted(edge.counter(), 1, 2);
    assert!(channel.ready_joins().is_empty());
}

#[test]
fn a_gone_edge_leaves_presence_before_its_count_falls() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = attached("presence-a", &mut edge, 10, now);
    channel.counted(edge.counter(), 1, 1);
    edge.frames();
    channel.defer_join(edge.link.clone(), joining(1, 7, "u"));
    channel.ready_joins();
    let accepted = JoinOutcome::Accepted {
        snapshot: "{}".into(),
        seq: 10,
    };
    channel.joined(socket(1), 7, Ok(accepted));
    assert_eq!(
        channel.reassert(),
        vec![
            Op::Count {
                counter: edge.counter(),
                count: 1,
                generation: 1,
                version: 1
            },
            Op::Reassert {
                socket: socket(1),
                member: member("u")
            }
        ]
    );
    assert_eq!(
        channel.edge_gone(edge.link.link_id, now),
        vec![
            Op::Leave { socket: socket(1) },
            Op::Count {
                counter: edge.counter(),
                count: 0,
                generation: 1,
                version: 2
            }
        ]
    );
    assert_eq!(channel.local_subscriptions(), 0);
}

#[test]
fn an_unwanted_channel_is_released_after_the_linger_or_once_its_history_expired() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = attached("a", &mut edge, 10, now);
    channel.receive(event("a", 11), now, LIFETIMES);
    let region = Retention {
        linger: Duration::from_secs(5),
        history_is_local: false,
    };
    let alone = Retention {
        linger: Duration::ZERO,
        history_is_local: true,
    };
    assert_eq!(channel.release_at(region, LIFETIMES), None, "in use");
    let left = now + Duration::from_secs(1);
    channel.interest(edge.link.clone(), interest("a", 0, 1, 2, None), left);
    assert_eq!(
        channel.release_at(region, LIFETIMES),
        Some(left + Duration::from_secs(5))
    );
    assert_eq!(
        channel.release_at(alone, LIFETIMES),
        Some(left + LIFETIMES.history.max_age),
        "alone, history is the registry's: kept until it expired, and as long as a client \
         that left may resume"
    );
    channel.interest(edge.link.clone(), interest("a", 1, 2, 1, None), left);
    assert_eq!(channel.release_at(region, LIFETIMES), None, "wanted again");
    channel.interest(edge.link.clone(), interest("a", 0, 2, 2, None), left);
    let late = now + Duration::from_secs(50);
    channel.receive(event("a", 12), late, LIFETIMES);
    assert_eq!(
        channel.release_at(alone, LIFETIMES),
        Some(late + LIFETIMES.history.max_age),
        "kept until its newest event expired"
    );
}

#[test]
fn alone_a_channel_no_event_was_published_on_keeps_its_sequence_while_a_client_may_resume() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = attached("a", &mut edge, 10, now);
    let alone = Retention {
        linger: Duration::ZERO,
        history_is_local: true,
    };
    let left = now + Duration::from_secs(1);
    channel.interest(edge.link.clone(), interest("a", 0, 1, 2, None), left);
    // Its clients hold 10 as their position: forgotten and followed again, it would start from
    // a new seed and their resume would fail.
    assert_eq!(
        channel.release_at(alone, LIFETIMES),
        Some(left + LIFETIMES.history.max_age)
    );
    // The first event arrives while they are away; a client resuming after 10 gets it, whole.
    channel.receive(event("a", 11), left, LIFETIMES);
    let request = replay_request("a", 10);
    assert!(!channel.replay_for(edge.link.clone(), request.clone(), left));
    assert_eq!(
        replayed(&mut edge),
        vec![(request, vec![11], end(11, None))]
    );
}

fn replay_request(name: &str, after: u64) -> ReplayRequest {
    ReplayRequest {
        key: key(name),
        socket: socket(7),
        after,
    }
}

fn end(through: u64, lost_through: Option<u64>) -> Option<ReplayEnd> {
    Some(ReplayEnd {
        through,
        lost_through,
    })
}

/// The client replays queued to `edge` (other frames must not be there): each part's request,
/// its events' sequences and its end.
fn replayed(edge: &mut TestEdge) -> Vec<(ReplayRequest, Vec<u64>, Option<ReplayEnd>)> {
    edge.frames()
        .into_iter()
        .map(|frame| match frame {
            HubToEdge::Replayed(part) => (
                part.request,
                part.events.iter().map(|event| event.seq).collect(),
                part.end,
            ),
            other => panic!("expected a replay, got {other:?}"),
        })
        .collect()
}

#[test]
fn a_client_replay_history_covers_is_answered_at_once() {
    let now = Instant::now();
    let mut first = TestEdge::new(1);
    let mut channel = attached("a", &mut first, 10, now);
    for seq in 11..=13 {
        channel.receive(event("a", seq), now, LIFETIMES);
    }
    assert_eq!(first.events(), vec![11, 12, 13]);
    let mut resuming = TestEdge::new(2);
    let request = replay_request("a", 11);
    assert!(
        !channel.replay_for(resuming.link.clone(), request.clone(), now),
        "no fetch needed"
    );
    assert_eq!(
        replayed(&mut resuming),
        vec![(request, vec![12, 13], end(13, None))],
        "the events after the position, the last part carrying the channel's sequence"
    );
    let current = replay_request("a", 13);
    assert!(!channel.replay_for(resuming.link.clone(), current.clone(), now));
    assert_eq!(
        replayed(&mut resuming),
        vec![(current, vec![], end(13, None))],
        "nothing missed: an empty replay, still ended"
    );
    assert!(first.frames().is_empty(), "the other edge is not told");
}

#[test]
fn a_client_replay_beyond_the_history_held_fetches_and_reports_what_is_lost() {
    let now = Instant::now();
    let mut first = TestEdge::new(1);
    let mut channel = attached("a", &mut first, 10, now);
    channel.receive(event("a", 11), now, LIFETIMES);
    assert_eq!(first.events(), vec![11]);
    let mut resuming = TestEdge::new(2);
    let request = replay_request("a", 5);
    assert!(
        channel.replay_for(resuming.link.clone(), request.clone(), now),
        "the hub's history starts at 11: the region's may reach further back"
    );
    assert!(resuming.frames().is_empty(), "nothing before the fetch");
    assert!(channel.needs_fetch());
    assert_eq!(channel.start_fetch(), Some((Some(5), false)));
    // The region's history starts at 8: 6 and 7 are lost.
    channel.fetched(
        fetched(11, (8..=11).map(|seq| event("a", seq)).collect()),
        Some(5),
        false,
        now,
        LIFETIMES,
    );
    assert_eq!(
        replayed(&mut resuming),
        vec![(request, vec![8, 9, 10, 11], end(11, Some(7)))]
    );
    assert!(first.frames().is_empty(), "nothing new for the live edge");
    assert!(!channel.needs_fetch());
}

#[test]
fn a_client_replay_before_the_channel_is_attached_waits_for_the_attach() {
    let now = Instant::now();
    let mut edge = TestEdge::new(1);
    let mut channel = ChannelState::new(key("a"));
    let request = replay_request("a", 5);
    assert!(channel.replay_for(edge.link.clone(), request.clone(), now));
    assert_eq!(
        channel.release_at(
            Retention {
                linger: Duration::ZERO,
                history_is_local: false
            },
            LIFETIMES
        ),
        None,
        "kept while the replay waits"
    );
    assert_eq!(
        channel.start_fetch(),
        Some((Some(5), true)),
        "attached, from the position"
    );
    assert!(edge.frames().is_empty());
    channel.fetched(
        fetched(7, vec![event("a", 6), event("a", 7)]),
        Some(5),
        true,
        now,
        LIFETIMES,
    );
    assert_eq!(
        replayed(&mut edge),
        vec![(request, vec![6, 7], end(7, None))],
        "the replay only: no interest, so no confirmation"
    );
    assert!(!channel.receive(event("a", 8), now, LIFETIMES));
    assert!(
        edge.events().is_empty(),
        "a replay alone does not make the edge a subscriber"
    );
}
