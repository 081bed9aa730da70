//! The HTTP API's one error type: every failure is a status and a JSON `{"error": "…"}` body.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_shared::admin::AdminRefusal;
use herald_shared::auth::api::SignatureError;
use herald_shared::channel::{ChannelName, ChannelNameError};
use herald_shared::event::EventNameError;
use serde_json::json;

use crate::region::RegionError;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No app has the id in the path.
    #[error("Unknown app id {0:?}")]
    UnknownApp(String),
    /// The app is disabled.
    #[error("App {0:?} is disabled")]
    AppDisabled(String),
    /// The signature, timestamp, key or body hash is wrong.
    #[error("Unauthorized: {0}")]
    Signature(#[from] SignatureError),
    /// The body is not valid JSON of the expected shape.
    #[error("Invalid JSON body: {0}")]
    InvalidJson(String),
    /// A required field is absent.
    #[error("Missing required field {0:?}")]
    MissingField(&'static str),
    /// A channel name breaks Pusher's rules.
    #[error("Invalid channel name {name:?}: {source}")]
    InvalidChannel {
        /// The name as sent.
        name: String,
        /// What is wrong.
        source: ChannelNameError,
    },
    /// The event name is invalid.
    #[error("Invalid event name: {0}")]
    InvalidEventName(#[from] EventNameError),
    /// `pusher:` and `pusher_internal:` events belong to the protocol.
    #[error(
        "Event name {0:?} is reserved: names starting with pusher: or pusher_internal: cannot be triggered"
    )]
    ReservedEventName(String),
    /// The endpoint only applies to presence channels.
    #[error("{0} is not a presence channel")]
    NotPresence(String),
    /// A user id in a path is empty or too long.
    #[error("Invalid user id {0:?}")]
    InvalidUserId(String),
    /// Too many channels in one trigger.
    #[error("Too many channels: {count}; the limit is {limit}")]
    TooManyChannels {
        /// Channels given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many events in one batch.
    #[error("Batch too large: {count} events; the limit is {limit}")]
    BatchTooLarge {
        /// Events given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// `socket_id` is malformed.
    #[error("Invalid socket_id {0:?}")]
    InvalidSocketId(String),
    /// An `info` attribute is unknown or not available for this channel.
    #[error("Invalid info attribute: {0}")]
    InvalidInfo(String),
    /// The event data is over the app's limit.
    #[error("Event data is {len} bytes; the limit is {limit}")]
    DataTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The request body is over the server's limit.
    #[error("Request body too large")]
    BodyTooLarge,
    /// The body could not be read.
    #[error("Cannot read the request body: {0}")]
    BodyUnreadable(String),
    /// A request body declared as something other than JSON.
    #[error(
        "Unsupported Content-Type {0:?}: the body must be JSON, sent as Content-Type: application/json"
    )]
    UnsupportedContentType(String),
    /// No such endpoint.
    #[error("No such endpoint: {0}")]
    NotFound(String),
    /// The region's state cannot be read or written now (shutting down, Redis unreachable).
    #[error("Unavailable, retry: {0}")]
    Unavailable(#[from] RegionError),
    /// The app sends more requests per second than it may.
    #[error(
        "Too many requests: this app may make {limit} per second; retry after {retry_after_secs} s"
    )]
    RateLimited {
        /// The app's requests per second.
        limit: u32,
        /// When a retry can succeed.
        retry_after_secs: u64,
    },
    /// `/stats` or `/metrics` without the admin token it needs.
    #[error("{0}")]
    Admin(#[from] AdminRefusal),
}

impl ApiError {
    /// Validates a channel name from a request.
    pub fn channel(name: String) -> Result<ChannelName, ApiError> {
        ChannelName::parse(&name).map_err(|source| ApiError::InvalidChannel { name, source })
    }

    /// The HTTP status. Exhaustive, so a new variant forces a decision.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownApp(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::AppDisabled(_) => StatusCode::FORBIDDEN,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidJson(_)
            | Self::MissingField(_)
            | Self::InvalidChannel { .. }
            | Self::InvalidEventName(_)
            | Self::ReservedEventName(_)
            | Self::NotPresence(_)
            | Self::InvalidUserId(_)
            | Self::TooManyChannels { .. }
            | Self::BatchTooLarge { .. }
            | Self::InvalidSocketId(_)
            | Self::InvalidInfo(_)
            | Self::BodyUnreadable(_) => StatusCode::BAD_REQUEST,
            Self::DataTooLarge { .. } | Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Admin(AdminRefusal::NotConfigured) => StatusCode::FORBIDDEN,
            Self::Admin(AdminRefusal::Missing | AdminRefusal::Wrong) => StatusCode::UNAUTHORIZED,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        tracing::debug!(message = "API request refused.", status = status.as_u16(), error = %self);
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        let headers = response.headers_mut();
        if let Self::Admin(AdminRefusal::Missing | AdminRefusal::Wrong) = self {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Self::RateLimited {
            retry_after_secs, ..
        } = self
        {
            headers.insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}
