//! `herald-shared`: everything Herald's edge and hub must agree on, and nothing else.
//!
//! This crate plays the role `quinn-proto` plays for `quinn`: deterministic code with no I/O, no
//! runtime and no clock (functions that need the time take `now`), so both sides link the same
//! rules and every parser here can be tested and fuzzed in isolation.
//!
//! # Layout
//! - [`ids`] — socket, edge, hub and app identifiers.
//! - [`channel`] — channel names, their kinds and the Pusher naming rules.
//! - [`event`] — event names and raw JSON event data.
//! - [`hash`] — FNV-1a, the stable hash every process agrees on.
//! - [`admin`] — who may read `/stats` and `/metrics`.
//! - [`app`] — an application's credentials and settings, and the app table.
//! - [`secret`] — a string that never prints.
//! - [`limits`] — Pusher's documented limits, used as defaults.
//! - [`presence`] — presence members and member event data.
//! - [`user`] — signed-in users (`pusher:signin` user data).
//! - [`protocol`] — Pusher protocol v7 frames (client → server parsing, server → client encoding),
//!   error codes and close codes.
//! - [`auth`] — HTTP API request signatures and channel authorization signatures.
//! - [`origin`] — which page origins may connect to an app (Reverb's rules).
//! - [`link`] — the versioned edge ↔ hub protocol (frames, codec, JWT claims).
//! - [`backoff`] — how long to wait before reconnecting, for edge links and hub Redis alike.
//! - [`time`] — wall-clock time since 1970, in the units tokens, scores and sequences use.
//! - [`dev`] — the credentials of `herald dev`'s app, which the local tools default to.
//!
//! # Invariants
//! - No dependency on tokio, axum, quinn or redis; no reading of the clock or the environment.
//! - No panic on any input: every parser returns a typed error.

pub mod admin;
pub mod app;
pub mod auth;
pub mod backoff;
pub mod channel;
pub mod dev;
pub mod event;
pub mod hash;
pub mod ids;
pub mod limits;
pub mod link;
pub mod origin;
pub mod presence;
pub mod protocol;
pub mod secret;
pub mod time;
pub mod user;
