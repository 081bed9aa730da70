//! `herald-hub`: owns channel state and history, serves the Pusher HTTP API, and accepts edges
//! over QUIC.
//!
//! # Layout
//! - [`config`] — the typed configuration.
//! - [`apps`] — the apps served now (replaced when the app store changes) and the store's health.
//! - [`server`] — start and stop.
//! - [`region`] — the seam: the region's shared state as the rest of the hub sees it, and its
//!   in-memory implementation (a hub alone).
//! - [`cluster`] — its Redis implementation (hubs linked through Redis): events, history,
//!   presence, counts, liveness.
//! - [`registry`] — the sharded channel registry: interest per edge, sequences, fan-out to edges.
//! - [`watchlist`] — online/offline events for signed-in users' watchlists.
//! - [`connections`] — client connections per app across the region, for quotas.
//! - [`history`] — per-channel history for resume and backfill.
//! - [`link`] — the QUIC endpoint and one session per edge.
//! - [`edge`] — the handle to one linked edge that registry shards queue frames to.
//! - [`api`] — the Pusher HTTP API, `/up`, `/stats`, `/metrics`.
//! - [`metrics`] — every metric the hub exports, declared once.
//! - [`http`] — the API's listener: TLS, slow and idle clients, the connection cap.
//! - [`console`] — the live debug console (`/console`) and its event feed.
//! - [`stats`] — counters.
//! - [`webhooks`] — Pusher webhooks to the apps, once per region.
//!
//! # Invariants
//! - Never depends on `herald-edge`: the link protocol in `herald-shared` is the only contract.
//! - Reads no environment, file, flag or signal: `herald` passes a typed [`HubConfig`] and bound
//!   sockets.
//! - A trigger is acknowledged only after every interested edge's queue has it; an edge whose
//!   queue is full is disconnected (it resumes from history), never silently skipped.

pub mod api;
pub mod apps;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod console;
pub mod edge;
pub mod history;
pub mod http;
pub mod link;
pub mod metrics;
pub mod region;
pub mod registry;
pub mod server;
pub mod stats;
pub mod watchlist;
pub mod webhooks;

pub use config::HubConfig;
pub use server::{HubListeners, RunningHub, StartError, start};
