//! Client → server: parsing a text frame into an [`Incoming`] message.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::channel::ChannelName;
use crate::event::{EventData, EventName};
use crate::ids::SocketId;
use crate::protocol::ProtocolError;

/// A message a client sent, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// `pusher:ping`: answer with `pusher:pong`.
    Ping,
    /// `pusher:pong`: the answer to the server's ping.
    Pong,
    /// `pusher:subscribe`.
    Subscribe(Subscribe),
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel to leave.
        channel: ChannelName,
    },
    /// `pusher:signin`: authenticate the connection as a user.
    Signin {
        /// `key:signature` over `socket_id::user::user_data`.
        auth: Option<String>,
        /// The user's data (JSON text with at least an `id`).
        user_data: String,
    },
    /// A `client-*` event to relay to the channel's other subscribers.
    ClientEvent {
        /// The event name (starts with `client-`).
        event: EventName,
        /// The channel it is sent on.
        channel: ChannelName,
        /// Its data, forwarded unchanged.
        data: EventData,
    },
}

/// The contents of a `pusher:subscribe` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The channel to join.
    pub channel: ChannelName,
    /// `key:signature`, for private and presence channels.
    pub auth: Option<String>,
    /// The presence member's JSON (`{"user_id": …, "user_info": …}`), as a string.
    pub channel_data: Option<String>,
    /// Herald's resume extension (`"herald": {…}` in the data; absent for every Pusher client):
    /// the client wants positions on this channel's events, and maybe a replay.
    pub resume: Option<Resume>,
}

/// What a client that opted in to resuming asks for on subscribe (see `docs/resume.md`):
/// `"herald": {}` for positions only, `"herald": {"after": "<seq>", "socket_id": "<old>"}` to be
/// replayed what followed the position `after` first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resume {
    /// The position of the last event the client received on the channel.
    pub after: Option<u64>,
    /// The connection it received it on: events that connection sent (or was excluded from)
    /// are not replayed to it.
    pub previous_socket: Option<SocketId>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SubscribeData {
    channel: Option<String>,
    auth: Option<String>,
    channel_data: Option<String>,
    herald: Option<ResumeData>,
}

#[derive(Deserialize)]
struct ResumeData {
    after: Option<serde_json::Value>,
    socket_id: Option<String>,
}

/// Reads a position: a string of decimal digits (what Herald sends) or a JSON integer.
fn position(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::String(text) => text.parse().ok(),
        serde_json::Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

fn parse_resume(data: ResumeData) -> Result<Resume, ProtocolError> {
    let after = match &data.after {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(
            position(value)
                .ok_or_else(|| ProtocolError::InvalidResumePosition(value.to_string()))?,
        ),
    };
    let previous_socket = match data.socket_id {
        None => None,
        Some(text) => Some(
            text.parse()
                .map_err(|_| ProtocolError::InvalidResumePosition(format!("socket_id {text:?}")))?,
        ),
    };
    Ok(Resume {
        after,
        previous_socket,
    })
}

#[derive(Deserialize)]
struct SigninData {
    auth: Option<String>,
    user_data: Option<String>,
}

#[derive(Deserialize)]
struct UnsubscribeData {
    channel: Option<String>,
}

impl Incoming {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|error| {
            if error.is_syntax() || error.is_eof() {
                ProtocolError::InvalidJson(error.to_string())
            } else {
                ProtocolError::InvalidShape(
                    "expected an object with a string \"event\" field".into(),
                )
            }
        })?;
        let event = envelope
            .event
            .ok_or_else(|| ProtocolError::InvalidShape("the \"event\" field is missing".into()))?;
        match event.as_ref() {
            "pusher:ping" => Ok(Self::Ping),
            "pusher:pong" => Ok(Self::Pong),
            "pusher:subscribe" => parse_subscribe(envelope.data),
            "pusher:unsubscribe" => parse_unsubscribe(envelope.data),
            "pusher:signin" => parse_signin(envelope.data),
            name if name.starts_with("client-") => {
                parse_client_event(name, envelope.channel, envelope.data)
            }
            other => Err(ProtocolError::UnsupportedEvent(other.to_string())),
        }
    }
}

/// Reads `data` as an object of type `T`, accepting it JSON-encoded in a string too (some
/// clients send `"data": "{\"channel\": …}"`).
fn object_data<T: for<'de> Deserialize<'de>>(
    event: &'static str,
    data: Option<&RawValue>,
) -> Result<T, ProtocolError> {
    let data = data.ok_or(ProtocolError::MissingField {
        event,
        field: "data",
    })?;
    let invalid = || ProtocolError::MissingField {
        event,
        field: "data",
    };
    match serde_json::from_str::<T>(data.get()) {
        Ok(value) => Ok(value),
        Err(_) => {
            let inner: String = serde_json::from_str(data.get()).map_err(|_| invalid())?;
            serde_json::from_str(&inner).map_err(|_| invalid())
        }
    }
}

fn parse_subscribe(data: Option<&RawValue>) -> Result<Incoming, ProtocolError> {
    const EVENT: &str = "pusher:subscribe";
    let data: SubscribeData = object_data(EVENT, data)?;
    let name = data.channel.ok_or(ProtocolError::MissingField {
        event: EVENT,
        field: "channel",
    })?;
    let channel = ChannelName::parse(&name)
        .map_err(|source| ProtocolError::InvalidSubscribeChannel { name, source })?;
    let resume = data.herald.map(parse_resume).transpose()?;
    Ok(Incoming::Subscribe(Subscribe {
        channel,
        auth: data.auth,
        channel_data: data.channel_data,
        resume,
    }))
}

fn parse_unsubscribe(data: Option<&RawValue>) -> Result<Incoming, ProtocolError> {
    const EVENT: &str = "pusher:unsubscribe";
    let data: UnsubscribeData = object_data(EVENT, data)?;
    let name = data.channel.ok_or(ProtocolError::MissingField {
        event: EVENT,
        field: "channel",
    })?;
    let channel = ChannelName::parse(&name)
        .map_err(|source| ProtocolError::InvalidChannel { name, source })?;
    Ok(Incoming::Unsubscribe { channel })
}

fn parse_signin(data: Option<&RawValue>) -> Result<Incoming, ProtocolError> {
    const EVENT: &str = "pusher:signin";
    let data: SigninData = object_data(EVENT, data)?;
    let user_data = data.user_data.ok_or(ProtocolError::MissingField {
        event: EVENT,
        field: "user_data",
    })?;
    Ok(Incoming::Signin {
        auth: data.auth,
        user_data,
    })
}

fn parse_client_event(
    name: &str,
    channel: Option<Cow<'_, str>>,
    data: Option<&RawValue>,
) -> Result<Incoming, ProtocolError> {
    const EVENT: &str = "client event";
    let event = EventName::parse(name).map_err(ProtocolError::InvalidEventName)?;
    let channel = channel.ok_or(ProtocolError::MissingField {
        event: EVENT,
        field: "channel",
    })?;
    let channel = ChannelName::parse(&channel).map_err(|source| ProtocolError::InvalidChannel {
        name: channel.into_owned(),
        source,
    })?;
    let data = data.ok_or(ProtocolError::MissingField {
        event: EVENT,
        field: "data",
    })?;
    Ok(Incoming::ClientEvent {
        event,
        channel,
        data: EventData::from_json_text(data.get()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelNameError;

    fn channel(name: &str) -> ChannelName {
        ChannelName::parse(name).unwrap()
    }

    #[test]
    fn parses_heartbeats() {
        assert_eq!(
            Incoming::parse(r#"{"event":"pusher:ping","data":{}}"#),
            Ok(Incoming::Ping)
        );
        assert_eq!(
            Incoming::parse(r#"{"event":"pusher:pong"}"#),
            Ok(Incoming::Pong)
        );
    }

    #[test]
    fn parses_subscribe_with_object_or_string_data() {
        let expected = Incoming::Subscribe(Subscribe {
            channel: channel("private-a"),
            auth: Some("k:sig".into()),
            channel_data: None,
            resume: None,
        });
        assert_eq!(
            Incoming::parse(
                r#"{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"k:sig"}}"#
            ),
            Ok(expected.clone())
        );
        assert_eq!(
            Incoming::parse(
                r#"{"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"k:sig\"}"}"#
            ),
            Ok(expected)
        );
    }

    #[test]
    fn parses_the_resume_extension_and_rejects_bad_positions() {
        let parsed = Incoming::parse(
            r#"{"event":"pusher:subscribe","data":{"channel":"a","herald":{"after":"42","socket_id":"1.2"}}}"#,
        );
        let Ok(Incoming::Subscribe(subscribe)) = parsed else {
            panic!("{parsed:?}");
        };
        assert_eq!(
            subscribe.resume,
            Some(Resume {
                after: Some(42),
                previous_socket: Some(SocketId { high: 1, low: 2 })
            })
        );
        let Ok(Incoming::Subscribe(subscribe)) =
            Incoming::parse(r#"{"event":"pusher:subscribe","data":{"channel":"a","herald":{}}}"#)
        else {
            panic!("positions only");
        };
        assert_eq!(subscribe.resume, Some(Resume::default()));
        for bad in [
            r#"{"after":"-1"}"#,
            r#"{"after":"x"}"#,
            r#"{"after":true}"#,
            r#"{"socket_id":"x"}"#,
        ] {
            let frame = format!(
                r#"{{"event":"pusher:subscribe","data":{{"channel":"a","herald":{bad}}}}}"#
            );
            assert!(
                matches!(
                    Incoming::parse(&frame),
                    Err(ProtocolError::InvalidResumePosition(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_unsubscribe_and_client_events() {
        assert_eq!(
            Incoming::parse(r#"{"event":"pusher:unsubscribe","data":{"channel":"a"}}"#),
            Ok(Incoming::Unsubscribe {
                channel: channel("a")
            })
        );
        let parsed = Incoming::parse(
            r#"{"event":"client-typing","channel":"private-a","data":{"x":[1, 2]}}"#,
        )
        .unwrap();
        let Incoming::ClientEvent {
            event,
            channel: ch,
            data,
        } = parsed
        else {
            panic!("not a client event: {parsed:?}");
        };
        assert_eq!(event.as_str(), "client-typing");
        assert_eq!(ch, channel("private-a"));
        assert_eq!(data.json(), r#"{"x":[1, 2]}"#);
    }

    #[test]
    fn rejects_what_is_not_a_pusher_message() {
        type Check = fn(&ProtocolError) -> bool;
        let cases: [(&str, Check); 9] = [
            ("{", |e| matches!(e, ProtocolError::InvalidJson(_))),
            ("", |e| matches!(e, ProtocolError::InvalidJson(_))),
            ("[1,2]", |e| matches!(e, ProtocolError::InvalidShape(_))),
            (r#"{"data":{}}"#, |e| {
                matches!(e, ProtocolError::InvalidShape(_))
            }),
            (r#"{"event":5}"#, |e| {
                matches!(e, ProtocolError::InvalidShape(_))
            }),
            (r#"{"event":"pusher:subscribe"}"#, |e| {
                matches!(e, ProtocolError::MissingField { field: "data", .. })
            }),
            (r#"{"event":"pusher:subscribe","data":{"auth":"x"}}"#, |e| {
                matches!(
                    e,
                    ProtocolError::MissingField {
                        field: "channel",
                        ..
                    }
                )
            }),
            (
                r#"{"event":"pusher:subscribe","data":{"channel":"a b"}}"#,
                |e| {
                    matches!(
                        e,
                        ProtocolError::InvalidSubscribeChannel {
                            source: ChannelNameError::InvalidCharacter { found: ' ' },
                            ..
                        }
                    )
                },
            ),
            (r#"{"event":"hello"}"#, |e| {
                matches!(e, ProtocolError::UnsupportedEvent(_))
            }),
        ];
        for (text, check) in cases {
            let error = Incoming::parse(text).unwrap_err();
            assert!(check(&error), "{text:?} gave {error:?}");
        }
    }

    #[test]
    fn parses_signin() {
        assert_eq!(
            Incoming::parse(
                r#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#
            ),
            Ok(Incoming::Signin {
                auth: Some("k:s".into()),
                user_data: r#"{"id":"1"}"#.into()
            })
        );
        assert!(matches!(
            Incoming::parse(r#"{"event":"pusher:signin","data":{"auth":"k:s"}}"#),
            Err(ProtocolError::MissingField {
                field: "user_data",
                ..
            })
        ));
    }

    #[test]
    fn client_events_need_a_channel_and_data() {
        assert!(matches!(
            Incoming::parse(r#"{"event":"client-x","data":{}}"#),
            Err(ProtocolError::MissingField {
                field: "channel",
                ..
            })
        ));
        assert!(matches!(
            Incoming::parse(r#"{"event":"client-x","channel":"private-a"}"#),
            Err(ProtocolError::MissingField { field: "data", .. })
        ));
    }
}
