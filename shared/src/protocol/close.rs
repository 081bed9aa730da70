//! WebSocket close codes Herald sends, with the reconnect policy pusher-js gives each range:
//! 4000–4099 never reconnect, 4100–4199 reconnect after a back-off, 4200–4299 reconnect at once,
//! 4300+ never reconnect. Herald only uses codes Pusher documents, and 4200/4201 for anything
//! a client should simply retry.

/// A close code from the Pusher protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 4001: no app has this key.
    AppNotFound,
    /// 4003: the app is disabled.
    AppDisabled,
    /// 4004: the app is over its connection quota.
    OverConnectionQuota,
    /// 4005: the path is not `/app/{key}`.
    PathNotFound,
    /// 4006: the `protocol` parameter is not a number.
    InvalidVersionFormat,
    /// 4007: the protocol version is not supported.
    UnsupportedProtocolVersion,
    /// 4008: no `protocol` parameter.
    NoProtocolVersion,
    /// 4009: the connection is not authorized (no sign-in in time, or terminated).
    Unauthorized,
    /// 4009: the page's origin may not connect to this app (Reverb's code and message).
    OriginNotAllowed,
    /// 4100: the server is over capacity; reconnect after a back-off.
    OverCapacity,
    /// 4200: reconnect now (drain, slow consumer, lost upstream).
    ReconnectNow,
    /// 4201: a `pusher:ping` got no `pusher:pong` in time.
    PongTimeout,
}

impl CloseCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::AppNotFound => 4001,
            Self::AppDisabled => 4003,
            Self::OverConnectionQuota => 4004,
            Self::PathNotFound => 4005,
            Self::InvalidVersionFormat => 4006,
            Self::UnsupportedProtocolVersion => 4007,
            Self::NoProtocolVersion => 4008,
            Self::Unauthorized | Self::OriginNotAllowed => 4009,
            Self::OverCapacity => 4100,
            Self::ReconnectNow => 4200,
            Self::PongTimeout => 4201,
        }
    }

    /// The human-readable reason sent with it (also the `pusher:error` message).
    pub fn reason(self) -> &'static str {
        match self {
            Self::AppNotFound => "Application does not exist",
            Self::AppDisabled => "Application is disabled",
            Self::OverConnectionQuota => "Application is over connection quota",
            Self::PathNotFound => "Path not found",
            Self::InvalidVersionFormat => "Invalid version string format",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
            Self::NoProtocolVersion => "No protocol version supplied",
            Self::Unauthorized => "Connection is unauthorized",
            Self::OriginNotAllowed => "Origin not allowed",
            Self::OverCapacity => "Over capacity",
            Self::ReconnectNow => "Reconnect",
            Self::PongTimeout => "Pong reply not received",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_code_is_in_the_never_reconnect_4300_range() {
        let all = [
            CloseCode::AppNotFound,
            CloseCode::AppDisabled,
            CloseCode::OverConnectionQuota,
            CloseCode::PathNotFound,
            CloseCode::InvalidVersionFormat,
            CloseCode::UnsupportedProtocolVersion,
            CloseCode::NoProtocolVersion,
            CloseCode::Unauthorized,
            CloseCode::OriginNotAllowed,
            CloseCode::OverCapacity,
            CloseCode::ReconnectNow,
            CloseCode::PongTimeout,
        ];
        assert!(all.iter().all(|c| (4000..4300).contains(&c.code())));
    }
}
