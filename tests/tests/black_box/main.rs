//! Herald's black-box tests, in one test binary: real `herald` processes, a real redis-server
//! per test, real Pusher clients and SDKs. One binary links once and builds `herald` once per
//! run; each module is one area, and `cargo test --test black_box <module>::`
//! runs one of them.

mod api_errors;
mod app_store;
mod apps;
mod bench;
mod cache_channels;
mod client_events;
mod compat;
mod compat_echo;
mod compat_features;
mod compose;
mod config_errors;
mod console;
mod dashboards;
mod dev;
mod drain;
mod elasticache_discovery;
mod failover;
mod fanout;
mod image;
mod invariants;
mod link_auth;
mod metrics;
mod portable;
mod presence;
mod private_channels;
mod probe;
mod quotas;
mod readme;
mod redis_cluster;
mod region;
mod region_failures;
mod region_queries;
mod region_timings;
mod resume;
mod secrets;
mod slow_clients;
mod slow_consumer;
mod terraform_invariants;
mod tls;
mod users;
mod webhooks;
mod websocket_errors;
