//! Client mistakes, and the reply each one gets.
//!
//! A mistake never closes the socket: the client gets a `pusher:error` whose code says what was
//! wrong (or, for a subscription, a `pusher:subscription_error` on that channel, which is what
//! pusher-js and Echo report to the channel's error callback). The codes are in Pusher's
//! "any other error" range 4300–4399 and are only ever sent inside `pusher:error` messages, never
//! as close codes; pusher-js reports them to `connection.bind('error')` and stays connected.
//! Pusher itself defines 4301 (client event rate limit) and 4302 (watchlist limit); the others
//! are Herald's, chosen clear of Pusher's, listed in
//! `docs/protocol-errors.md`.

use crate::channel::ChannelNameError;
use crate::event::EventNameError;
use crate::protocol::Outgoing;

/// The codes of `pusher:error` messages that leave the socket open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 4009: a `pusher:signin` was refused (bad signature or user data).
    Unauthorized,
    /// 4300: the frame is not JSON, or not a Pusher message.
    InvalidMessage,
    /// 4301: the socket sent client events faster than the app allows (Pusher's code).
    ClientEventRateLimit,
    /// 4302: a watchlist longer than 100 ids; only the first 100 are used (Pusher's code).
    WatchlistLimit,
    /// 4307: the event is not one a client may send.
    UnsupportedEvent,
    /// 4303: a binary frame; Pusher speaks text frames only.
    BinaryFrame,
    /// 4304: the message is larger than the server accepts.
    MessageTooLarge,
    /// 4305: a channel or event name breaks Pusher's naming rules.
    InvalidName,
    /// 4306: a client event that is not allowed (disabled for the app, public or encrypted
    /// channel, or not subscribed).
    ClientEventRejected,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        // Codes are only ever sent in `pusher:error` messages, never as close codes.
        match self {
            Self::Unauthorized => 4009,
            Self::InvalidMessage => 4300,
            Self::ClientEventRateLimit => 4301,
            Self::WatchlistLimit => 4302,
            Self::UnsupportedEvent => 4307,
            Self::BinaryFrame => 4303,
            Self::MessageTooLarge => 4304,
            Self::InvalidName => 4305,
            Self::ClientEventRejected => 4306,
        }
    }

    /// A `pusher:error` with this code.
    pub fn reply(self, message: impl Into<String>) -> Outgoing {
        Outgoing::Error {
            code: Some(self.code()),
            message: message.into(),
        }
    }
}

/// Something wrong with a frame a client sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is not valid JSON.
    #[error("Invalid JSON: {0}")]
    InvalidJson(String),
    /// The JSON is not a Pusher message object (`{"event": …}`).
    #[error("Invalid message: {0}")]
    InvalidShape(String),
    /// A required field is missing or has the wrong type.
    #[error("Invalid {event} message: {field} is missing or not a string")]
    MissingField {
        /// The event whose data is incomplete.
        event: &'static str,
        /// The field.
        field: &'static str,
    },
    /// The event is not one a client may send.
    #[error("Unsupported event received: {0}")]
    UnsupportedEvent(String),
    /// A binary WebSocket frame.
    #[error("Binary frames are not supported; send JSON as text frames")]
    BinaryFrame,
    /// The message is over the size limit.
    #[error("Message of {len} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Its size in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// `pusher:subscribe` named an invalid channel.
    #[error("Invalid channel name {name:?}: {source}")]
    InvalidSubscribeChannel {
        /// The name as sent.
        name: String,
        /// What is wrong with it.
        source: ChannelNameError,
    },
    /// Another message named an invalid channel.
    #[error("Invalid channel name {name:?}: {source}")]
    InvalidChannel {
        /// The name as sent.
        name: String,
        /// What is wrong with it.
        source: ChannelNameError,
    },
    /// A client event has an invalid name.
    #[error("Invalid event name: {0}")]
    InvalidEventName(EventNameError),
    /// `pusher:subscribe`'s `herald` resume data is not a position Herald handed out.
    #[error(
        "Invalid resume data in pusher:subscribe: {0} is not a position (a string of decimal digits) or a socket id"
    )]
    InvalidResumePosition(String),
}

impl ProtocolError {
    /// The frame the client gets for this mistake.
    pub fn reply(&self) -> Outgoing {
        let code = match self {
            Self::InvalidJson(_)
            | Self::InvalidShape(_)
            | Self::MissingField { .. }
            | Self::InvalidResumePosition(_) => ErrorCode::InvalidMessage,
            Self::UnsupportedEvent(_) => ErrorCode::UnsupportedEvent,
            Self::BinaryFrame => ErrorCode::BinaryFrame,
            Self::TooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::InvalidChannel { .. } | Self::InvalidEventName(_) => ErrorCode::InvalidName,
            Self::InvalidSubscribeChannel { name, .. } => {
                return Outgoing::SubscriptionError {
                    channel: name.clone(),
                    kind: "InvalidChannelName",
                    error: self.to_string(),
                    status: 400,
                };
            }
        };
        code.reply(self.to_string())
    }
}
