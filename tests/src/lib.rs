//! Black-box test harness: real `herald` processes on loopback, a wire-level Pusher client, and
//! an HTTP API client that signs like the SDKs. Tests assert wire JSON, not Herald's own types.
//!
//! # Layout
//! - [`binary`] — building and locating `herald`.
//! - [`dev`] — `herald dev` or the floor server for bench and probe tests, and one-shot runs.
//! - [`process`] — spawning processes, ready lines, logs, kills.
//! - [`proxy`] — a TCP proxy in front of edges that can cut a client's connection.
//! - [`eventually`] — waiting, with a deadline, for a state the system reaches on its own.
//! - [`redis`] — a real redis-server per test.
//! - [`databases`] — a fresh PostgreSQL or MariaDB database per test, and a relay that can cut it.
//! - [`redis_cluster`] — a local Redis Cluster (3 primaries, 3 replicas) and a primary + replica
//!   pair, with kills and promotions.
//! - [`redis_region`] — the Redis of a region, either of the two ([`RegionRedis`](redis_region::RegionRedis)),
//!   and one test body over both ([`on_every_redis!`]).
//! - [`topology`] — hubs and edges with port 0 everywhere, a region over either Redis
//!   ([`Region`](topology::Region)); one test body against one hub and against a region
//!   ([`Topology`](topology::Topology), [`on_both_topologies!`]), and also against a region
//!   over a local Redis Cluster ([`on_every_topology!`]).
//! - [`client`] — the Pusher WebSocket client.
//! - [`presence`] — joining the region tests' presence channel as a user; reading member events.
//! - [`compat`] — real Pusher clients and SDKs (pusher-js, npm and PyPI `pusher`) as scripts.
//! - [`api`] — the signed HTTP API client.
//! - [`metrics`] — scraping `/metrics` and reading samples by name and labels.
//! - [`auth`] — channel and user signatures, as an app's auth endpoint makes them.
//! - [`moto`] — a local ElastiCache API (moto), for discovery tests.
//! - [`tls`] — a CA made in the test, its certificates, TLS clients that trust it.
//! - [`netns`] — a network namespace standing for another host, which can vanish silently.
//! - [`terraform`] — the `terraform/` tree parsed with hcl-rs, for offline invariant checks.

pub mod api;
pub mod auth;
pub mod binary;
pub mod client;
pub mod compat;
pub mod databases;
pub mod dev;
pub mod eventually;
pub mod forwarder;
pub mod metrics;
pub mod moto;
pub mod netns;
pub mod presence;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod redis_cluster;
pub mod redis_region;
pub mod terraform;
pub mod tls;
pub mod topology;
