//! The webhook events, each with exactly the fields Pusher documents for it
//! (docs/channels/server_api/webhooks.md), and their types as configured in `event_types`.

use std::fmt;

use herald_shared::channel::ChannelName;
use herald_shared::event::{EventData, EventName};
use herald_shared::ids::SocketId;
use serde_json::json;

/// The kinds of webhook events, as named in the body's `name` and in `event_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A channel has its first subscriber in the region.
    ChannelOccupied,
    /// A channel lost its last subscriber in the region (sent after the delay).
    ChannelVacated,
    /// A user's first socket joined a presence channel, region-wide.
    MemberAdded,
    /// A user's last socket left a presence channel, region-wide (sent after the delay).
    MemberRemoved,
    /// A client sent a `client-*` event.
    ClientEvent,
    /// A client subscribed to a cache channel that had no cached event.
    CacheMiss,
    /// A channel's subscription count changed (opt-in; never for presence channels).
    SubscriptionCount,
}

/// An `event_types` entry names no webhook event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a webhook event type (one of channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss, subscription_count)"
)]
pub struct UnknownEventType(pub String);

impl EventType {
    /// Every type, in the order the docs list them.
    pub const ALL: [Self; 7] = [
        Self::ChannelOccupied,
        Self::ChannelVacated,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::ClientEvent,
        Self::CacheMiss,
        Self::SubscriptionCount,
    ];

    /// The name in bodies and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::ChannelOccupied => "channel_occupied",
            Self::ChannelVacated => "channel_vacated",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::ClientEvent => "client_event",
            Self::CacheMiss => "cache_miss",
            Self::SubscriptionCount => "subscription_count",
        }
    }

    /// The type named `name`.
    pub fn parse(name: &str) -> Result<Self, UnknownEventType> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownEventType(name.to_string()))
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of event types.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventTypes(u8);

impl EventTypes {
    /// The default of an endpoint without `event_types`: everything but the high-volume
    /// `client_event` and the opt-in `subscription_count`.
    pub fn default_set() -> Self {
        Self::from_iter([
            EventType::ChannelOccupied,
            EventType::ChannelVacated,
            EventType::MemberAdded,
            EventType::MemberRemoved,
            EventType::CacheMiss,
        ])
    }

    /// Whether the set holds `kind`.
    pub fn contains(self, kind: EventType) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The types in the set.
    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }
}

impl FromIterator<EventType> for EventTypes {
    fn from_iter<I: IntoIterator<Item = EventType>>(kinds: I) -> Self {
        Self(kinds.into_iter().fold(0, |bits, kind| bits | kind.bit()))
    }
}

impl fmt::Debug for EventTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(EventType::name))
            .finish()
    }
}

/// One webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// `{"name":"channel_occupied","channel"}`.
    ChannelOccupied {
        /// The channel.
        channel: ChannelName,
    },
    /// `{"name":"channel_vacated","channel"}`.
    ChannelVacated {
        /// The channel.
        channel: ChannelName,
    },
    /// `{"name":"member_added","channel","user_id"}`.
    MemberAdded {
        /// The presence channel.
        channel: ChannelName,
        /// The user.
        user_id: String,
    },
    /// `{"name":"member_removed","channel","user_id"}`.
    MemberRemoved {
        /// The presence channel.
        channel: ChannelName,
        /// The user.
        user_id: String,
    },
    /// `{"name":"client_event","channel","event","data","socket_id"}`, plus `user_id` on
    /// presence channels.
    ClientEvent {
        /// The channel.
        channel: ChannelName,
        /// The `client-*` event name.
        event: EventName,
        /// The data the client sent.
        data: EventData,
        /// The sending socket.
        socket_id: SocketId,
        /// The sender's user id, on presence channels.
        user_id: Option<String>,
    },
    /// `{"name":"cache_miss","channel"}`.
    CacheMiss {
        /// The cache channel.
        channel: ChannelName,
    },
    /// `{"name":"subscription_count","channel","subscription_count"}`.
    SubscriptionCount {
        /// The channel.
        channel: ChannelName,
        /// Connections subscribed across the region.
        subscription_count: u64,
    },
}

impl WebhookEvent {
    /// The event's type.
    pub fn kind(&self) -> EventType {
        match self {
            Self::ChannelOccupied { .. } => EventType::ChannelOccupied,
            Self::ChannelVacated { .. } => EventType::ChannelVacated,
            Self::MemberAdded { .. } => EventType::MemberAdded,
            Self::MemberRemoved { .. } => EventType::MemberRemoved,
            Self::ClientEvent { .. } => EventType::ClientEvent,
            Self::CacheMiss { .. } => EventType::CacheMiss,
            Self::SubscriptionCount { .. } => EventType::SubscriptionCount,
        }
    }

    /// The channel it is about.
    pub fn channel(&self) -> &ChannelName {
        match self {
            Self::ChannelOccupied { channel }
            | Self::ChannelVacated { channel }
            | Self::MemberAdded { channel, .. }
            | Self::MemberRemoved { channel, .. }
            | Self::ClientEvent { channel, .. }
            | Self::CacheMiss { channel }
            | Self::SubscriptionCount { channel, .. } => channel,
        }
    }

    /// The event as the JSON object that goes into a body's `events`.
    ///
    /// `client_event`'s `data` is a string, as Pusher sends it: the text a client sent as a
    /// JSON string, or the JSON text of any other value it sent.
    pub fn to_json(&self) -> String {
        let name = self.kind().name();
        let value = match self {
            Self::ChannelOccupied { channel }
            | Self::ChannelVacated { channel }
            | Self::CacheMiss { channel } => json!({"name": name, "channel": channel.as_str()}),
            Self::MemberAdded { channel, user_id } | Self::MemberRemoved { channel, user_id } => {
                json!({"name": name, "channel": channel.as_str(), "user_id": user_id})
            }
            Self::ClientEvent {
                channel,
                event,
                data,
                socket_id,
                user_id,
            } => {
                let data = serde_json::from_str::<String>(data.json())
                    .unwrap_or_else(|_| data.json().to_string());
                let mut value = json!({
                    "name": name,
                    "channel": channel.as_str(),
                    "event": event.as_str(),
                    "data": data,
                    "socket_id": socket_id.to_string(),
                });
                if let Some(user_id) = user_id {
                    value["user_id"] = json!(user_id);
                }
                value
            }
            Self::SubscriptionCount {
                channel,
                subscription_count,
            } => json!({
                "name": name,
                "channel": channel.as_str(),
                "subscription_count": subscription_count,
            }),
        };
        value.to_string()
    }
}

/// The body of one webhook request: `{"time_ms":…,"events":[…]}` from events already encoded
/// with [`WebhookEvent::to_json`].
pub fn body<'a>(time_ms: u64, events: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = format!(r#"{{"time_ms":{time_ms},"events":["#);
    for (index, event) in events.into_iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(event);
    }
    body.push_str("]}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn channel(name: &str) -> ChannelName {
        ChannelName::parse(name).unwrap()
    }

    fn parsed(event: &WebhookEvent) -> Value {
        serde_json::from_str(&event.to_json()).unwrap()
    }

    #[test]
    fn events_carry_exactly_pushers_fields() {
        assert_eq!(
            parsed(&WebhookEvent::ChannelOccupied {
                channel: channel("a")
            }),
            json!({"name": "channel_occupied", "channel": "a"})
        );
        assert_eq!(
            parsed(&WebhookEvent::MemberRemoved {
                channel: channel("presence-a"),
                user_id: "7".into()
            }),
            json!({"name": "member_removed", "channel": "presence-a", "user_id": "7"})
        );
        assert_eq!(
            parsed(&WebhookEvent::CacheMiss {
                channel: channel("cache-a")
            }),
            json!({"name": "cache_miss", "channel": "cache-a"})
        );
        assert_eq!(
            parsed(&WebhookEvent::SubscriptionCount {
                channel: channel("a"),
                subscription_count: 3
            }),
            json!({"name": "subscription_count", "channel": "a", "subscription_count": 3})
        );
    }

    #[test]
    fn client_events_carry_data_as_a_string_and_user_id_only_when_known() {
        let event = |data: &str, user_id: Option<&str>| WebhookEvent::ClientEvent {
            channel: channel("presence-a"),
            event: EventName::parse("client-typing").unwrap(),
            data: EventData::from_json_text(data),
            socket_id: "1.2".parse().unwrap(),
            user_id: user_id.map(str::to_string),
        };
        assert_eq!(
            parsed(&event(r#"{"typing":true}"#, Some("u1"))),
            json!({"name": "client_event", "channel": "presence-a", "event": "client-typing",
                   "data": "{\"typing\":true}", "socket_id": "1.2", "user_id": "u1"})
        );
        assert_eq!(
            parsed(&event(r#""plain""#, None)),
            json!({"name": "client_event", "channel": "presence-a", "event": "client-typing",
                   "data": "plain", "socket_id": "1.2"})
        );
    }

    #[test]
    fn bodies_join_the_encoded_events() {
        assert_eq!(body(5, []), r#"{"time_ms":5,"events":[]}"#);
        let text = body(7, [r#"{"a":1}"#, r#"{"b":2}"#]);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, json!({"time_ms": 7, "events": [{"a": 1}, {"b": 2}]}));
    }

    #[test]
    fn event_types_parse_and_default_like_the_issue_says() {
        assert_eq!(EventType::parse("cache_miss"), Ok(EventType::CacheMiss));
        assert!(EventType::parse("channel_ocupied").is_err());
        let default = EventTypes::default_set();
        assert!(!default.contains(EventType::ClientEvent));
        assert!(!default.contains(EventType::SubscriptionCount));
        assert_eq!(default.iter().count(), 5);
    }
}
