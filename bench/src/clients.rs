//! The connect phase: opening N subscribers, spread round-robin over the servers' WebSocket
//! URLs and the local source addresses, with bounded concurrency and an optional rate.
//!
//! Several source addresses (127.0.0.x) are what make more than ~28k connections to one server
//! port possible: each (source, destination) pair has its own ephemeral port range.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::receive::Group;
use crate::stats::{self, Summary};
use herald_wire::{self as wire, WireError, WsTarget};

/// How to connect the subscribers.
#[derive(Debug, Clone)]
pub struct ConnectPlan {
    /// Servers, taken round-robin.
    pub targets: Vec<WsTarget>,
    /// Local source addresses (empty: let the OS choose).
    pub sources: Vec<IpAddr>,
    /// The app key.
    pub app_key: String,
    /// The channels every subscriber joins (one, or those of [`crate::channel_names`]).
    pub channels: Vec<String>,
    /// Whether subscribers opt in to event positions (Herald's resume extension).
    pub positions: bool,
    /// How many subscribers.
    pub count: usize,
    /// How many handshakes may be in flight at once.
    pub concurrency: usize,
    /// New connections per second, when limited.
    pub rate: Option<f64>,
    /// How long one subscriber may take from TCP connect to `subscription_succeeded`.
    pub timeout: Duration,
}

/// What connecting showed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectReport {
    /// Subscribers asked for.
    pub requested: u64,
    /// Subscribers connected and subscribed.
    pub connected: u64,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// One full message per kind of failure.
    pub failure_examples: BTreeMap<String, String>,
    /// Seconds from the first connect to the last subscription.
    pub elapsed_seconds: f64,
    /// Subscribers connected per second over that time.
    pub per_second: f64,
    /// TCP connect → `pusher:connection_established`, ms.
    pub handshake_ms: Summary,
    /// First `pusher:subscribe` sent → last `subscription_succeeded`, ms.
    pub subscribe_ms: Summary,
}

struct Connected {
    index: usize,
    socket: wire::Socket,
    handshake: Duration,
    subscribe: Duration,
}

async fn one(
    plan: Arc<ConnectPlan>,
    index: usize,
) -> Result<(wire::Socket, Duration, Duration), WireError> {
    let target = &plan.targets[index % plan.targets.len()];
    let source = (!plan.sources.is_empty())
        .then(|| plan.sources[(index / plan.targets.len()) % plan.sources.len()]);
    let started = Instant::now();
    let mut socket = wire::connect(target, &plan.app_key, source).await?;
    wire::establish(&mut socket).await?;
    let established = Instant::now();
    for channel in &plan.channels {
        wire::subscribe_with(&mut socket, channel, plan.positions).await?;
    }
    Ok((socket, established - started, established.elapsed()))
}

/// Connects every subscriber, handing each to group `index % groups.len()`.
pub async fn connect_all(plan: ConnectPlan, groups: &[Group]) -> ConnectReport {
    let plan = Arc::new(plan);
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut report = ConnectReport {
        requested: plan.count as u64,
        ..ConnectReport::default()
    };
    let (mut handshake, mut subscribe) = (stats::histogram(), stats::histogram());
    let mut on_done = |done: Result<Connected, WireError>| match done {
        Ok(connected) => {
            report.connected += 1;
            stats::record(&mut handshake, connected.handshake.as_micros() as u64);
            stats::record(&mut subscribe, connected.subscribe.as_micros() as u64);
            // A group that is gone has been stopped: the run is over, drop the socket.
            let _ = groups[connected.index % groups.len()]
                .sockets
                .send(connected.socket);
        }
        Err(error) => {
            let label = error.label();
            report
                .failure_examples
                .entry(label.clone())
                .or_insert_with(|| error.to_string());
            *report.failures.entry(label).or_default() += 1;
        }
    };
    let started = Instant::now();
    for index in 0..plan.count {
        if let Some(rate) = plan.rate {
            tokio::time::sleep_until(
                (started + Duration::from_secs_f64(index as f64 / rate)).into(),
            )
            .await;
        }
        let permit = loop {
            // Collect finished handshakes while waiting, so sockets reach their group early.
            tokio::select! {
                permit = permits.clone().acquire_owned() => {
                    break permit.expect("the semaphore is never closed");
                }
                Some(done) = tasks.join_next() => on_done(done.expect("a connect task does not panic")),
            }
        };
        let plan = plan.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let attempt = tokio::time::timeout(plan.timeout, one(plan.clone(), index)).await;
            match attempt {
                Ok(Ok((socket, handshake, subscribe))) => Ok(Connected {
                    index,
                    socket,
                    handshake,
                    subscribe,
                }),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(WireError::TimedOut {
                    waiting_for: "subscription_succeeded",
                    after: plan.timeout,
                }),
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        on_done(done.expect("a connect task does not panic"));
    }
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    report.per_second = report.connected as f64 / report.elapsed_seconds.max(1e-9);
    report.handshake_ms = Summary::of(&handshake);
    report.subscribe_ms = Summary::of(&subscribe);
    report
}
