//! The edge ↔ hub link protocol, version [`LINK_VERSION`].
//!
//! One QUIC connection per edge, opened by the edge, TLS with ALPN [`ALPN`]. Streams:
//! - the **control** stream: the bidirectional stream the edge opens first. The edge sends
//!   [`EdgeToHub::Hello`] (with a JWT, see [`claims`]) and then its interest and backfill
//!   requests; the hub answers [`HubToEdge::Welcome`] (or `Refused`, then closes) and later app
//!   table updates.
//! - **channel streams**: [`Welcome::channel_streams`] unidirectional hub → edge streams. Every
//!   frame about one channel (`Subscribed`, `Counted`, `Presence`, `Event`, `Truncated`) goes on stream
//!   `ChannelKey::slot(channel_streams)`, so one channel's frames keep their order while a slow channel only
//!   stalls its own stream.
//!
//! Each channel's events carry a sequence number: consecutive, and never going backwards — a
//! channel's first sequence is seeded from the clock (microseconds since 1970), so a hub
//! restarted in memory or a Redis that lost its data continues above every number handed out
//! before. The edge remembers the last sequence it saw per channel; it drops duplicates, asks for
//! a [`EdgeToHub::Backfill`] on a gap, and on reconnect (to the same hub or to any other hub of
//! the region) re-sends its interest with `resume_after`, so it receives what it missed from
//! history — or a `Truncated` notice when history no longer has it.

pub mod claims;
mod codec;
mod frame;

pub use codec::{LinkCodecError, MAX_FRAME_BYTES, decode, decode_frame, encode};
pub use frame::{
    CachedEvent, ClientEvent, EdgeToHub, Event, Hello, HubToEdge, Interest, PresenceAnswer,
    PresenceChange, PresenceOutcome, ReplayEnd, ReplayRequest, Replayed, Welcome,
};

/// The link protocol version this build speaks. A hub refuses a `Hello` with another version.
pub const LINK_VERSION: u16 = 4;

/// The TLS ALPN protocol id of the link.
pub const ALPN: &[u8] = b"herald-link/1";

/// QUIC application close code: the hub refused the edge (bad token, wrong version).
pub const CLOSE_REFUSED: u32 = 1;
/// QUIC application close code: the peer broke the protocol (bad frame).
pub const CLOSE_PROTOCOL_ERROR: u32 = 2;
/// QUIC application close code: the edge could not keep up with its channel streams.
pub const CLOSE_LAGGING: u32 = 3;
/// QUIC application close code: the process is shutting down.
pub const CLOSE_SHUTDOWN: u32 = 4;
