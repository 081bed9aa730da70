//! Pusher protocol v7 as spoken between clients and the edge.
//!
//! Clients' text frames are parsed into [`Incoming`] values at the border; everything the edge
//! writes is an [`Outgoing`] value encoded once. A client mistake is a [`ProtocolError`] whose
//! [`ProtocolError::reply`] is the `pusher:error` (or `pusher:subscription_error`) the client gets;
//! the socket stays open. [`CloseCode`] lists the close codes Herald uses, each with the
//! reconnect policy pusher-js attaches to its range.
//!
//! Reference: <https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol>.

mod close;
mod error;
mod incoming;
mod outgoing;

pub use close::CloseCode;
pub use error::{ErrorCode, ProtocolError};
pub use incoming::{Incoming, Resume, Subscribe};
pub use outgoing::{Outgoing, positioned};

/// The only Pusher protocol version Herald speaks (pusher-js 4+ sends `protocol=7`).
pub const PROTOCOL_VERSION: u32 = 7;

/// The oldest protocol version Herald accepts; pusher-js 3 and older clients send 5 or 6 and
/// understand v7 frames (Pusher serves 5–7 the same way).
pub const MIN_PROTOCOL_VERSION: u32 = 5;
