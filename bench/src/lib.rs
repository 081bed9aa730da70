//! `herald-bench`: load against any Pusher-compatible server (Herald, Sockudo, Soketi, Reverb)
//! over its public protocol only — WebSocket subscribers and the signed HTTP API — so the same
//! figures can be taken from Herald and from a peer in the same run; and the floor, the
//! do-nothing server those figures are compared with.
//!
//! A crate and a program of its own, apart from `herald`: the server binary carries neither the
//! unauthenticated floor server nor the benchmark's dependencies (HdrHistogram, an HTTP client).
//!
//! # Layout
//! - [`clients`] — the connect phase: N subscribers over URLs and source addresses, through the
//!   wire client [`herald_wire`] (which `herald probe` uses too).
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

/// The channels of a run: `base` alone when `count` is 1, else `base-0` … `base-(count-1)`.
/// Event `seq` is triggered on channel `seq % count` and every subscriber joins all of them, so
/// spreading events over channels (and over a Redis Cluster's shards) keeps the delivery load.
pub fn channel_names(base: &str, count: usize) -> Vec<String> {
    if count <= 1 {
        vec![base.to_string()]
    } else {
        (0..count).map(|i| format!("{base}-{i}")).collect()
    }
}

/// Raises the soft open-files limit to the hard limit; returns the effective soft limit.
pub fn raise_open_files() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(message = "Cannot raise the open-files limit.", %error);
            None
        }
    }
}
