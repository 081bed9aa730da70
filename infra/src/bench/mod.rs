//! `herald bench`: load against any Pusher-compatible server (Herald, Sockudo, Soketi, Reverb)
//! over its public protocol only — WebSocket subscribers and the signed HTTP API — so the same
//! figures can be taken from Herald and from a peer in the same run.
//!
//! # Layout
//! - [`wire`] — a minimal Pusher protocol v7 client (also used by `herald probe`).
//! - [`clients`] — the connect phase: N subscribers over URLs and source addresses.
//! - [`receive`] — a few tasks receiving on every subscriber socket.
//! - [`trigger`] — signed triggers at a fixed rate.
//! - [`payload`] — the sequence number and send time inside each event's data.
//! - [`sequence`] — per-subscriber accounting: lost, duplicate, out of order.
//! - [`stats`] — HdrHistogram percentiles.
//! - [`procstat`] — CPU and memory of this process and of the servers, from `/proc`.
//! - [`session`] — what both runs share; [`fanout`] — the fan-out and idle runs.
//! - [`report`] — the result as JSON or Markdown.
//! - [`floor`] — the do-nothing WebSocket writer Herald's figures are compared with.
//!
//! # Invariants
//! - The benchmark is a pure client: it never starts servers and never depends on the edge or
//!   hub crates, only on the wire protocol and [`herald_shared::auth::api`] for signing. The
//!   [`floor`] reference server is a separate command, run like any server under test.
//! - Latency is wall-clock send time (in the event) to wall-clock receive time, so it is only
//!   meaningful when triggers and subscribers share a clock: run it on the servers' machine or
//!   one synchronised with it.

pub mod clients;
pub mod fanout;
pub mod floor;
pub mod payload;
pub mod procstat;
pub mod receive;
pub mod report;
pub mod sequence;
pub mod session;
pub mod stats;
pub mod trigger;
pub mod wire;
