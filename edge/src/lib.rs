//! `herald-edge`: terminates Pusher WebSocket connections, fans events out to local sockets, and
//! links to a hub over QUIC.
//!
//! An edge is stateless: it learns its apps from the hub, keeps only which of its own sockets are
//! subscribed to what, and tells the hub only interest transitions. Events from the hub are
//! encoded once per edge and the same bytes are queued to every local subscriber.
//!
//! # Layout
//! - [`config`] — the typed configuration.
//! - [`server`] — start, serve, drain.
//! - [`socket`] — one task per client connection (handshake, admission, heartbeat).
//! - [`index`] — the sharded local channel index and fan-out, with what its shards write: the
//!   sockets' outboxes and the interest board.
//! - [`link`] — the QUIC link to the hub (sequence tracker, sessions, TLS).
//! - [`quota`] — the edge's connection cap and the apps' region-wide connection quotas.
//! - [`admin`] — `/up`, `/stats` and `/metrics`.
//! - [`metrics`] — every metric the edge exports, declared once.
//! - [`stats`] — counters.
//! - [`frame`] — the headers of the WebSocket frames the edge sends.
//!
//! # Layers
//! Modules only import from the layers below them (checked by
//! `tests/tests/black_box/invariants.rs`):
//!
//! ```text
//! server                       wires everything, owns the tasks
//! config, admin                typed settings; /up, /stats and /metrics
//! socket    link               client sockets; the hub link — they never name each other
//! index, quota                 shards, Board (read by link), Outbox (drained by socket); quotas
//!                              (admitted by socket, reported by link)
//! stats, metrics, frame       counters; the exported metrics; WebSocket frame headers
//! ```
//!
//! # Invariants
//! - Never depends on `herald-hub`: the link protocol in `herald-shared` is the only contract.
//! - Reads no environment, file, flag or signal: `herald` passes a typed [`EdgeConfig`] and
//!   bound listeners.
//! - Fan-out never waits on a client: outboxes are bounded and overflow closes that socket with
//!   4200.
//! - Closes client connections only with codes below 4300 (pusher-js never reconnects after
//!   those).

pub mod admin;
pub mod config;
pub mod frame;
pub mod index;
pub mod link;
pub mod metrics;
pub mod quota;
pub mod server;
pub mod socket;
pub mod stats;

pub use config::EdgeConfig;
pub use index::OutboxLimits;
pub use link::{HubAddress, HubTrust, LinkConfig};
pub use server::{EdgeListeners, RunningEdge, start};
pub use socket::SocketLimits;
