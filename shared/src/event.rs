//! Event names and event data.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::limits::MAX_EVENT_NAME_LEN;

/// `pusher_internal:member_added`, published by the hub when a user joins a presence channel.
pub const MEMBER_ADDED: &str = "pusher_internal:member_added";
/// `pusher_internal:member_removed`, published when a user's last socket leaves.
pub const MEMBER_REMOVED: &str = "pusher_internal:member_removed";
/// `pusher_internal:subscription_count`, published when a channel's count changes.
pub const SUBSCRIPTION_COUNT: &str = "pusher_internal:subscription_count";
/// `pusher_internal:watchlist_events`, published on a watcher's `#server-to-user-` channel.
pub const WATCHLIST_EVENTS: &str = "pusher_internal:watchlist_events";
/// Herald's own order, published on a user's `#server-to-user-` channel, telling every edge
/// to close that user's sockets. Edges act on it and never forward it to clients.
pub const TERMINATE_CONNECTIONS: &str = "pusher_internal:terminate_connections";

/// A validated event name: non-empty, at most [`MAX_EVENT_NAME_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventName(Arc<str>);

/// Why a string is not a valid event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventNameError {
    /// The name is empty.
    #[error("event name is empty")]
    Empty,
    /// The name is longer than Pusher allows.
    #[error("event name is {len} bytes long; the limit is {MAX_EVENT_NAME_LEN}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl EventName {
    /// Validates an event name.
    pub fn parse(text: &str) -> Result<Self, EventNameError> {
        match text.len() {
            0 => Err(EventNameError::Empty),
            len if len > MAX_EVENT_NAME_LEN => Err(EventNameError::TooLong { len }),
            _ => Ok(Self(text.into())),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a client event (`client-` prefix).
    pub fn is_client_event(&self) -> bool {
        self.0.starts_with("client-")
    }

    /// Whether the name is reserved for the protocol (`pusher:` or `pusher_internal:`); the HTTP
    /// API refuses to trigger such events.
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with("pusher:") || self.0.starts_with("pusher_internal:")
    }

    /// A reserved name Herald itself uses (one of this module's constants).
    pub fn internal(name: &'static str) -> Self {
        Self(name.into())
    }
}

impl TryFrom<String> for EventName {
    type Error = EventNameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<EventName> for String {
    fn from(name: EventName) -> Self {
        name.0.to_string()
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventName({:?})", &*self.0)
    }
}

/// `text` as a JSON string literal, quoted and escaped.
pub(crate) fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a str always encodes as JSON")
}

/// An event's `data`, kept as the JSON text it arrived as and forwarded unchanged.
///
/// Server SDKs send `data` as a JSON string (Laravel JSON-encodes its payload into it); client
/// events usually carry an object. Either way clients receive exactly the JSON value sent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventData(Arc<str>);

impl EventData {
    /// Wraps a JSON value's text. The caller guarantees it is one valid JSON value (it comes
    /// from a `serde_json::value::RawValue` or from the authenticated link).
    pub fn from_json_text(json: impl Into<Arc<str>>) -> Self {
        Self(json.into())
    }

    /// Wraps a plain string, JSON-encoding it.
    pub fn from_string(text: &str) -> Self {
        Self(json_string(text).into())
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The size Pusher's data limit counts: the decoded length of a JSON string, or the JSON
    /// text's length for any other value.
    pub fn payload_len(&self) -> usize {
        match serde_json::from_str::<std::borrow::Cow<'_, str>>(&self.0) {
            Ok(text) => text.len(),
            Err(_) => self.0.len(),
        }
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventData({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_bounded() {
        assert_eq!(EventName::parse(""), Err(EventNameError::Empty));
        assert!(EventName::parse(&"e".repeat(MAX_EVENT_NAME_LEN)).is_ok());
        assert_eq!(
            EventName::parse(&"e".repeat(MAX_EVENT_NAME_LEN + 1)),
            Err(EventNameError::TooLong {
                len: MAX_EVENT_NAME_LEN + 1
            })
        );
        assert!(EventName::parse("client-typing").unwrap().is_client_event());
    }

    #[test]
    fn payload_length_counts_decoded_strings() {
        assert_eq!(EventData::from_string("{\"a\":1}").payload_len(), 7);
        assert_eq!(EventData::from_json_text("{\"a\":1}").payload_len(), 7);
        assert_eq!(EventData::from_string("é").payload_len(), 2);
    }
}
