//! Resuming subscribers (`docs/resume.md`): the catch-up of one socket that comes back with the
//! position of the last event it received on a channel.
//!
//! A client that opted in gets each event of the channel with its position (the hub's sequence,
//! [`positioned`]). When it subscribes again with a position `after`, its subscriber holds the
//! channel's live events while the hub replays history after `after` ([`ReplayRequest`]); once
//! the replay has ended (and the subscription is confirmed) it gets, in this order:
//! `subscription_succeeded`, `pusher_internal:herald_resumed` (or `…_resume_failed` when history
//! no longer reached back), the replayed events, then the held live events that follow the
//! replay. Each event once: the replay ends at the hub's sequence `through`, and the held events
//! at or below it are dropped; afterwards the subscriber skips whatever is at or below the last
//! position it was given (a backfill that comes late).
//!
//! Presence membership is not replayed: the member list of `subscription_succeeded` is as of the
//! join's sequence, so member events at or below it are left out of the replay and the held
//! events; every other event after `after` is delivered.
//!
//! The hub answers from its own history. In a region a hub may not have heard yet the latest
//! events this edge has delivered (it got them through another hub before a failover): when the
//! replay ends below what this edge knew of the channel, it is asked again from there.
//!
//! Pure: no I/O; the shard pushes the frames and writes the requests on the board.

use herald_shared::channel::ChannelName;
use herald_shared::event::{MEMBER_ADDED, MEMBER_REMOVED};
use herald_shared::ids::SocketId;
use herald_shared::link::{Event, ReplayRequest, Replayed};
use herald_shared::protocol::{Outgoing, positioned};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::encode;

/// An event frame held for a subscriber that is not active yet.
#[derive(Debug, Clone)]
pub struct Held {
    /// The event's sequence.
    pub seq: u64,
    /// Whether it is a presence member event (`pusher_internal:member_added`/`_removed`).
    pub member: bool,
    /// The frame as this subscriber gets it (positioned or not).
    pub frame: Utf8Bytes,
}

/// Whether an event name is a presence member event.
pub fn is_member_event(name: &str) -> bool {
    name == MEMBER_ADDED || name == MEMBER_REMOVED
}

/// The positioned variant of an encoded event frame.
pub fn with_position(frame: &Utf8Bytes, seq: u64) -> Utf8Bytes {
    Utf8Bytes::from(positioned(frame.as_str(), seq))
}

/// What to do after a part of the replay arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing yet (more parts follow, or the part was for an older request).
    Wait,
    /// The hub answered from behind this edge: replace the request on the board with this one.
    Ask {
        /// The request answered.
        done: ReplayRequest,
        /// The next one.
        next: ReplayRequest,
    },
    /// The replay is complete; its request is done.
    Done(ReplayRequest),
}

/// The frames a resuming subscriber gets after its `subscription_succeeded`, and where it stands.
#[derive(Debug)]
pub struct Finished {
    /// `herald_resumed` or `herald_resume_failed`, the replay, the held events that follow.
    pub frames: Vec<Utf8Bytes>,
    /// The last position given to the subscriber (it skips events at or below it from now on).
    pub skip_through: u64,
    /// Whether history no longer reached back (the cache channel's last event is then sent too).
    pub failed: bool,
    /// The position `subscription_succeeded` carries: the one resumed after, or the last lost
    /// one (a later resume starts from there, whatever of the replay reached the client).
    pub position: u64,
}

/// One resuming subscriber's catch-up.
#[derive(Debug)]
pub struct CatchUp {
    /// The position the client resumes after.
    after: u64,
    /// The client's previous connection: events excluded from it are not replayed.
    previous_socket: Option<SocketId>,
    /// The request in flight.
    request: ReplayRequest,
    /// The channel's last sequence on this edge when the socket subscribed.
    known: u64,
    /// The events replayed so far.
    events: Vec<Event>,
    /// Set once the replay ended: every event through it was replayed (or lost).
    through: Option<u64>,
    /// The last lost position, if history no longer reached back.
    lost_through: Option<u64>,
    /// A presence join's answer: the member list and the sequence it is as of.
    joined: Option<(String, u64)>,
}

impl CatchUp {
    /// A catch-up after `request.after`, on a channel of which this edge delivered up to `known`.
    pub fn new(request: ReplayRequest, previous_socket: Option<SocketId>, known: u64) -> Self {
        Self {
            after: request.after,
            previous_socket,
            request,
            known,
            events: Vec::new(),
            through: None,
            lost_through: None,
            joined: None,
        }
    }

    /// The request in flight.
    pub fn request(&self) -> &ReplayRequest {
        &self.request
    }

    /// Whether the replay has ended.
    pub fn answered(&self) -> bool {
        self.through.is_some()
    }

    /// The presence join's answer, kept until the replay has ended.
    pub fn join(&mut self, snapshot: String, seq: u64) {
        self.joined = Some((snapshot, seq));
    }

    /// Whether the presence join was answered.
    pub fn joined(&self) -> bool {
        self.joined.is_some()
    }

    /// Takes one part of the hub's answer.
    pub fn part(&mut self, replayed: Replayed) -> Step {
        if replayed.request != self.request || self.through.is_some() {
            return Step::Wait;
        }
        self.events.extend(replayed.events);
        let Some(end) = replayed.end else {
            return Step::Wait;
        };
        self.lost_through = self.lost_through.max(end.lost_through);
        let last_event = self.events.last().map_or(0, |event| event.seq);
        let covered = self.after.max(end.through).max(last_event);
        let done = self.request.clone();
        if covered < self.known {
            self.request.after = covered;
            return Step::Ask {
                done,
                next: self.request.clone(),
            };
        }
        self.through = Some(covered);
        Step::Done(done)
    }

    /// The frames that follow `subscription_succeeded`: `held` are the live events held
    /// meanwhile, oldest first. Only once [`CatchUp::answered`].
    pub fn finish(self, channel: &ChannelName, socket: SocketId, held: Vec<Held>) -> Finished {
        let through = self.through.unwrap_or(self.after);
        let join_seq = self.joined.as_ref().map_or(0, |(_, seq)| *seq);
        let after = self.after;
        let previous = self.previous_socket;
        let replay: Vec<Utf8Bytes> = self
            .events
            .into_iter()
            .filter(|event| {
                event.seq > after
                    && event
                        .exclude
                        .is_none_or(|s| Some(s) != previous && s != socket)
                    && !(is_member_event(event.name.as_str()) && event.seq <= join_seq)
            })
            .map(|event| {
                let seq = event.seq;
                let plain = encode(&Outgoing::Event {
                    channel: event.key.channel,
                    event: event.name,
                    data: event.data,
                    user_id: event.user_id,
                });
                with_position(&plain, seq)
            })
            .collect();
        let replayed = replay.len();
        let header = match self.lost_through {
            Some(lost_through) => Outgoing::ResumeFailed {
                channel: channel.clone(),
                after,
                lost_through,
                replayed,
            },
            None => Outgoing::Resumed {
                channel: channel.clone(),
                after,
                replayed,
            },
        };
        let mut skip_through = through;
        let mut frames = Vec::with_capacity(1 + replayed + held.len());
        frames.push(encode(&header));
        frames.extend(replay);
        for held in held {
            if held.seq <= through || (held.member && held.seq <= join_seq) {
                continue;
            }
            skip_through = skip_through.max(held.seq);
            frames.push(held.frame);
        }
        Finished {
            frames,
            skip_through,
            failed: self.lost_through.is_some(),
            position: self.lost_through.unwrap_or(after),
        }
    }

    /// The presence join's member list, if any (taken for `subscription_succeeded`).
    pub fn snapshot(&self) -> Option<String> {
        self.joined.as_ref().map(|(snapshot, _)| snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::channel::ChannelKey;
    use herald_shared::event::{EventData, EventName};
    use herald_shared::ids::AppId;
    use herald_shared::link::ReplayEnd;

    fn key() -> ChannelKey {
        ChannelKey::new(AppId::new("1"), ChannelName::parse("presence-a").unwrap())
    }

    const SOCKET: SocketId = SocketId { high: 9, low: 9 };

    fn request(after: u64) -> ReplayRequest {
        ReplayRequest {
            key: key(),
            socket: SOCKET,
            after,
        }
    }

    fn event(seq: u64, name: &str) -> Event {
        Event {
            key: key(),
            seq,
            name: EventName::parse(name).unwrap(),
            data: EventData::from_string("x"),
            exclude: None,
            user_id: None,
            accepted_micros: 0,
        }
    }

    fn held(seq: u64, name: &str) -> Held {
        Held {
            seq,
            member: is_member_event(name),
            frame: Utf8Bytes::from(format!("{name}@{seq}")),
        }
    }

    fn end(through: u64, lost_through: Option<u64>) -> Option<ReplayEnd> {
        Some(ReplayEnd {
            through,
            lost_through,
        })
    }

    fn texts(finished: &Finished) -> Vec<String> {
        finished.frames.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn replays_then_follows_with_the_held_events_after_the_replay_each_once() {
        let mut catch_up = CatchUp::new(request(10), None, 0);
        let part = Replayed {
            request: request(10),
            events: vec![event(11, "a"), event(12, "b")],
            end: None,
        };
        assert_eq!(catch_up.part(part), Step::Wait);
        let last = Replayed {
            request: request(10),
            events: vec![event(13, "c")],
            end: end(13, None),
        };
        assert_eq!(catch_up.part(last), Step::Done(request(10)));
        let channel = key().channel;
        let finished = catch_up.finish(
            &channel,
            SOCKET,
            vec![held(12, "b"), held(13, "c"), held(14, "d")],
        );
        let frames = texts(&finished);
        assert!(frames[0].contains("herald_resumed") && frames[0].contains(r#"\"replayed\":3"#));
        assert!(
            frames[1].ends_with(r#""herald_seq":"11"}"#),
            "{}",
            frames[1]
        );
        assert!(frames[3].ends_with(r#""herald_seq":"13"}"#));
        assert_eq!(frames[4], "d@14");
        assert_eq!(frames.len(), 5);
        assert_eq!(finished.skip_through, 14);
        assert!(!finished.failed);
    }

    #[test]
    fn a_hub_behind_this_edge_is_asked_again_from_where_it_stopped() {
        let mut catch_up = CatchUp::new(request(10), None, 15);
        let first = Replayed {
            request: request(10),
            events: vec![event(11, "a")],
            end: end(11, None),
        };
        assert_eq!(
            catch_up.part(first),
            Step::Ask {
                done: request(10),
                next: request(11)
            }
        );
        assert!(!catch_up.answered());
        let stale = Replayed {
            request: request(10),
            events: vec![event(11, "a")],
            end: end(11, None),
        };
        assert_eq!(catch_up.part(stale), Step::Wait, "the older request");
        let second = Replayed {
            request: request(11),
            events: (12..=16).map(|seq| event(seq, "e")).collect(),
            end: end(16, None),
        };
        assert_eq!(catch_up.part(second), Step::Done(request(11)));
        let finished = catch_up.finish(&key().channel, SOCKET, vec![held(16, "e"), held(17, "e")]);
        assert_eq!(finished.frames.len(), 1 + 6 + 1);
        assert_eq!(finished.skip_through, 17);
    }

    #[test]
    fn history_that_no_longer_reaches_back_fails_the_resume_loudly() {
        let mut catch_up = CatchUp::new(request(10), None, 0);
        let answer = Replayed {
            request: request(10),
            events: vec![event(20, "a")],
            end: end(20, Some(19)),
        };
        assert_eq!(catch_up.part(answer), Step::Done(request(10)));
        let finished = catch_up.finish(&key().channel, SOCKET, Vec::new());
        let frames = texts(&finished);
        assert!(frames[0].contains("pusher_internal:herald_resume_failed"));
        assert!(frames[0].contains(r#"\"lost_through\":\"19\""#));
        assert_eq!(frames.len(), 2);
        assert!(finished.failed);
    }

    #[test]
    fn presence_members_are_resynchronised_not_replayed_and_own_events_stay_out() {
        let mut catch_up = CatchUp::new(request(10), Some(SocketId { high: 1, low: 1 }), 0);
        catch_up.join("{}".into(), 13);
        let mut own = event(12, "client-x");
        own.exclude = Some(SocketId { high: 1, low: 1 });
        let answer = Replayed {
            request: request(10),
            events: vec![
                event(11, MEMBER_ADDED),
                own,
                event(13, "app"),
                event(14, MEMBER_REMOVED),
            ],
            end: end(14, None),
        };
        catch_up.part(answer);
        let finished = catch_up.finish(&key().channel, SOCKET, vec![held(15, MEMBER_ADDED)]);
        let frames = texts(&finished);
        assert_eq!(frames.len(), 4, "{frames:?}");
        assert!(frames[1].contains(r#""event":"app""#));
        assert!(frames[2].contains(MEMBER_REMOVED));
        assert_eq!(frames[3], format!("{MEMBER_ADDED}@15"));
    }
}
