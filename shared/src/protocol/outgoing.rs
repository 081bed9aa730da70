//! Server → client: the frames the edge writes, each encoded once to its JSON text.

use crate::channel::ChannelName;
use crate::event::{EventData, EventName, json_string};
use crate::ids::SocketId;

/// A message to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// `pusher:connection_established`, the first frame on every connection.
    ConnectionEstablished {
        /// The connection's socket id.
        socket_id: SocketId,
        /// Seconds of silence after which the client should ping.
        activity_timeout_secs: u64,
    },
    /// `pusher:error`.
    Error {
        /// The Pusher error code, if any.
        code: Option<u16>,
        /// A human-readable message.
        message: String,
    },
    /// `pusher:ping`, sent to an idle client.
    Ping,
    /// `pusher:pong`, the answer to a client's `pusher:ping`.
    Pong,
    /// `pusher_internal:subscription_succeeded`.
    SubscriptionSucceeded {
        /// The channel joined.
        channel: ChannelName,
        /// The JSON text carried (as a string) in `data`: `{}`, or the presence member list.
        data: String,
    },
    /// `pusher:subscription_error`: the subscription failed; the socket stays usable.
    SubscriptionError {
        /// The channel as the client named it.
        channel: String,
        /// The error type (`AuthError`, `InvalidChannelName`, …).
        kind: &'static str,
        /// A human-readable message.
        error: String,
        /// An HTTP-like status (401, 400, …).
        status: u16,
    },
    /// `pusher:signin_success`.
    SigninSuccess {
        /// The user data the socket signed in with, as sent.
        user_data: String,
    },
    /// `pusher:cache_miss`: a cache channel has no cached event for the new subscriber.
    CacheMiss {
        /// The channel.
        channel: ChannelName,
    },
    /// `pusher_internal:herald_resumed`, to a client that opted in to resuming (`docs/resume.md`):
    /// what follows, before any live event, is every event after `after` the client missed.
    /// pusher-js ignores `pusher_internal:` events it does not know; the add-on reads it.
    Resumed {
        /// The channel.
        channel: ChannelName,
        /// The position the client resumed after.
        after: u64,
        /// How many events are replayed.
        replayed: usize,
    },
    /// `pusher_internal:herald_resume_failed`: history no longer holds every event after
    /// `after`; the events through `lost_through` are gone, the replay that follows starts after
    /// it. The app must refetch its state.
    ResumeFailed {
        /// The channel.
        channel: ChannelName,
        /// The position the client resumed after.
        after: u64,
        /// The last lost position.
        lost_through: u64,
        /// How many events are replayed.
        replayed: usize,
    },
    /// An event on a channel.
    Event {
        /// The channel.
        channel: ChannelName,
        /// The event name.
        event: EventName,
        /// The data, forwarded unchanged.
        data: EventData,
        /// The sender's user id, on client events in presence channels.
        user_id: Option<String>,
    },
}

impl Outgoing {
    /// The frame's JSON text.
    pub fn encode(&self) -> String {
        match self {
            // The data is a JSON string holding an object. Its only characters that need escaping
            // are its quotes (a socket id and a number are digits and a dot), so it is written
            // escaped at once rather than encoded twice, on every connect.
            Self::ConnectionEstablished {
                socket_id: SocketId { high, low },
                activity_timeout_secs,
            } => format!(
                r#"{{"event":"pusher:connection_established","data":"{{\"socket_id\":\"{high}.{low}\",\"activity_timeout\":{activity_timeout_secs}}}"}}"#
            ),
            Self::Error { code, message } => {
                let code = code.map_or_else(|| "null".to_string(), |code| code.to_string());
                format!(
                    r#"{{"event":"pusher:error","data":{{"code":{code},"message":{}}}}}"#,
                    json_string(message)
                )
            }
            Self::Ping => r#"{"event":"pusher:ping","data":{}}"#.to_string(),
            Self::Pong => r#"{"event":"pusher:pong","data":{}}"#.to_string(),
            Self::SubscriptionSucceeded { channel, data } => format!(
                r#"{{"event":"pusher_internal:subscription_succeeded","channel":{},"data":{}}}"#,
                json_string(channel.as_str()),
                json_string(data)
            ),
            Self::SubscriptionError {
                channel,
                kind,
                error,
                status,
            } => format!(
                r#"{{"event":"pusher:subscription_error","channel":{},"data":{{"type":{},"error":{},"status":{status}}}}}"#,
                json_string(channel),
                json_string(kind),
                json_string(error)
            ),
            // The protocol documents this data as an object (unlike most server frames).
            Self::SigninSuccess { user_data } => format!(
                r#"{{"event":"pusher:signin_success","data":{{"user_data":{}}}}}"#,
                json_string(user_data)
            ),
            Self::CacheMiss { channel } => format!(
                r#"{{"event":"pusher:cache_miss","channel":{},"data":"{{}}"}}"#,
                json_string(channel.as_str())
            ),
            Self::Resumed {
                channel,
                after,
                replayed,
            } => {
                let inner = format!(r#"{{"after":"{after}","replayed":{replayed}}}"#);
                format!(
                    r#"{{"event":"pusher_internal:herald_resumed","channel":{},"data":{}}}"#,
                    json_string(channel.as_str()),
                    json_string(&inner)
                )
            }
            Self::ResumeFailed {
                channel,
                after,
                lost_through,
                replayed,
            } => {
                let inner = format!(
                    r#"{{"reason":"history_exceeded","after":"{after}","lost_through":"{lost_through}","replayed":{replayed}}}"#
                );
                format!(
                    r#"{{"event":"pusher_internal:herald_resume_failed","channel":{},"data":{}}}"#,
                    json_string(channel.as_str()),
                    json_string(&inner)
                )
            }
            Self::Event {
                channel,
                event,
                data,
                user_id,
            } => {
                let mut frame = format!(
                    r#"{{"event":{},"channel":{},"data":{}"#,
                    json_string(event.as_str()),
                    json_string(channel.as_str()),
                    data.json()
                );
                if let Some(user_id) = user_id {
                    frame.push_str(",\"user_id\":");
                    frame.push_str(&json_string(user_id));
                }
                frame.push('}');
                frame
            }
        }
    }
}

/// The variant of an encoded event frame for clients that opted in to resuming: the same
/// frame with the event's position appended as a top-level `"herald_seq"` string (pusher-js
/// keeps only `event`, `channel`, `data` and `user_id` of a frame, so it never sees it).
pub fn positioned(frame: &str, seq: u64) -> String {
    let body = frame.strip_suffix('}').unwrap_or(frame);
    format!(r#"{body},"herald_seq":"{seq}"}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn wire(frame: Outgoing) -> Value {
        serde_json::from_str(&frame.encode()).unwrap()
    }

    #[test]
    fn connection_established_carries_a_string_data() {
        let frame = wire(Outgoing::ConnectionEstablished {
            socket_id: SocketId { high: 12, low: 34 },
            activity_timeout_secs: 120,
        });
        assert_eq!(frame["event"], "pusher:connection_established");
        let data: Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
        assert_eq!(data, json!({"socket_id": "12.34", "activity_timeout": 120}));
        // Byte for byte what encoding the object and then its text gives.
        let established = Outgoing::ConnectionEstablished {
            socket_id: SocketId {
                high: 987_654_321,
                low: u64::MAX,
            },
            activity_timeout_secs: 30,
        };
        let inner = format!(
            r#"{{"socket_id":"{}.{}","activity_timeout":30}}"#,
            987_654_321,
            u64::MAX
        );
        assert_eq!(
            established.encode(),
            format!(
                r#"{{"event":"pusher:connection_established","data":{}}}"#,
                json_string(&inner)
            )
        );
    }

    #[test]
    fn errors_carry_an_object_data() {
        assert_eq!(
            wire(Outgoing::Error {
                code: Some(4001),
                message: "no \"app\"".into()
            }),
            json!({"event": "pusher:error", "data": {"code": 4001, "message": "no \"app\""}})
        );
        assert_eq!(
            wire(Outgoing::Error {
                code: None,
                message: "x".into()
            })["data"]["code"],
            Value::Null
        );
    }

    #[test]
    fn events_forward_data_unchanged() {
        let frame = Outgoing::Event {
            channel: ChannelName::parse("orders").unwrap(),
            event: EventName::parse("created").unwrap(),
            data: EventData::from_string("{\"id\":1}"),
            user_id: None,
        };
        assert_eq!(
            frame.encode(),
            r#"{"event":"created","channel":"orders","data":"{\"id\":1}"}"#
        );
        let with_user = Outgoing::Event {
            channel: ChannelName::parse("presence-r").unwrap(),
            event: EventName::parse("client-x").unwrap(),
            data: EventData::from_json_text("{\"a\":true}"),
            user_id: Some("7".into()),
        };
        assert_eq!(
            wire(with_user),
            json!({"event": "client-x", "channel": "presence-r", "data": {"a": true}, "user_id": "7"})
        );
    }

    #[test]
    fn positioned_frames_add_one_field_to_the_pusher_frame() {
        let plain = Outgoing::Event {
            channel: ChannelName::parse("orders").unwrap(),
            event: EventName::parse("created").unwrap(),
            data: EventData::from_string("{\"id\":1}"),
            user_id: Some("7".into()),
        }
        .encode();
        assert_eq!(
            positioned(&plain, 1_765_000_000_000_123),
            r#"{"event":"created","channel":"orders","data":"{\"id\":1}","user_id":"7","herald_seq":"1765000000000123"}"#
        );
        let resumed = wire(Outgoing::ResumeFailed {
            channel: ChannelName::parse("orders").unwrap(),
            after: 5,
            lost_through: 9,
            replayed: 2,
        });
        assert_eq!(resumed["event"], "pusher_internal:herald_resume_failed");
        let data: Value = serde_json::from_str(resumed["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            data,
            json!({"reason": "history_exceeded", "after": "5", "lost_through": "9", "replayed": 2})
        );
    }

    #[test]
    fn subscription_frames_match_pusher() {
        assert_eq!(
            wire(Outgoing::SubscriptionSucceeded {
                channel: ChannelName::parse("a").unwrap(),
                data: "{}".into()
            }),
            json!({"event": "pusher_internal:subscription_succeeded", "channel": "a", "data": "{}"})
        );
        assert_eq!(
            wire(Outgoing::SubscriptionError {
                channel: "private-a".into(),
                kind: "AuthError",
                error: "bad".into(),
                status: 401
            }),
            json!({"event": "pusher:subscription_error", "channel": "private-a",
                   "data": {"type": "AuthError", "error": "bad", "status": 401}})
        );
    }
}
