//! What every benchmark mode shares: checking the plan, opening the subscribers into receive
//! groups, sampling the processes, and turning the groups' results into a [`DeliveryReport`].

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clients::{self, ConnectPlan, ConnectReport};
use crate::procstat::{self, ProcError, Sample};
use crate::receive::{Group, GroupResult};
use crate::report::{AwaitReport, DeliveryReport, MachineReport, ProcessReport, Report, Setup};
use crate::sequence::SeqSet;
use crate::stats::{self, Summary};
use crate::trigger::{ApiUrlError, SendError, TriggerOutcome};
use herald_wire::{KeyConflict, WireError};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A WebSocket URL is unusable.
    #[error("--ws {0}")]
    WsUrl(WireError),
    /// An API URL is unusable.
    #[error("--api {0}")]
    ApiUrl(ApiUrlError),
    /// `--app-key` and a key in a `--ws` URL disagree.
    #[error("--ws {0}")]
    Key(#[from] KeyConflict),
    /// A number flag is out of range.
    #[error("{flag} must be {expected}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A server process cannot be read.
    #[error("--server-pid: {0}")]
    Proc(ProcError),
    /// This process may not open enough sockets.
    #[error(
        "this process may open {limit} files but {needed} subscribers need more; raise the hard limit (ulimit -Hn) or split the subscribers over several herald-bench processes"
    )]
    OpenFiles {
        /// The effective limit.
        limit: u64,
        /// Subscribers asked for.
        needed: u64,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(reqwest::Error),
    /// A trial trigger failed.
    #[error("a trial trigger failed, so the API URL, app id, key or secret is wrong: {0}")]
    Preflight(String),
    /// Not one subscriber connected.
    #[error("no subscriber could connect: {0}")]
    NoSubscriber(String),
    /// The one trigger of `herald-bench trigger` failed.
    #[error("the trigger failed: {0}")]
    Trigger(#[source] SendError),
}

impl BenchError {
    /// The exit code: 64 for bad flags, 69 when the servers are unreachable or refuse, 71 for
    /// the operating system.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::WsUrl(_) | Self::Key(_) | Self::ApiUrl(_) | Self::Flag { .. } | Self::Proc(_) => {
                64
            }
            Self::OpenFiles { .. } | Self::HttpClient(_) => 71,
            Self::Preflight(_) | Self::NoSubscriber(_) | Self::Trigger(_) => 69,
        }
    }
}

/// What a run sent, against which every subscriber's arrivals are accounted.
pub enum Sent {
    /// Nothing: an idle hold.
    Nothing,
    /// A fan-out run's triggers.
    Triggers(TriggerOutcome),
    /// One event, sequence number 0, sent by another process (`herald-bench trigger`) and
    /// awaited after an idle hold: its report, with what the wait saw so far (the arrivals are
    /// filled in when the session closes).
    Awaited(AwaitReport),
}

/// How to open and watch the subscribers.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    /// Where and how to connect.
    pub connect: ConnectPlan,
    /// Server processes to sample.
    pub server_pids: Vec<u32>,
    /// Pause after connecting before memory is sampled.
    pub settle: Duration,
}

/// Connected subscribers in their receive groups, and the samples taken so far.
pub struct Session {
    groups: Vec<Group>,
    stop: CancellationToken,
    /// What connecting showed.
    connect: ConnectReport,
    pids: Vec<String>,
    before: Vec<Sample>,
    connected: Vec<Sample>,
    machine_connected: Option<(Instant, f64)>,
}

fn sample_all(pids: &[String]) -> Result<Vec<Sample>, BenchError> {
    pids.iter()
        .map(|pid| procstat::sample(pid).map_err(BenchError::Proc))
        .collect()
}

/// Raises the open-files limit and checks it leaves room for `subscribers` sockets.
pub fn ensure_open_files(subscribers: u64) -> Result<(), BenchError> {
    // Room for the trigger's HTTP connections, the runtime and stdio.
    const SPARE: u64 = 300;
    match crate::raise_open_files() {
        Some(limit) if limit < subscribers + SPARE => Err(BenchError::OpenFiles {
            limit,
            needed: subscribers,
        }),
        _ => Ok(()),
    }
}

impl Session {
    /// Samples the processes, connects every subscriber, lets the servers settle, samples
    /// again. `planned` events named `event` will be triggered on the plan's channels.
    pub async fn open(plan: SessionPlan, event: &str, planned: u64) -> Result<Self, BenchError> {
        let mut pids = vec!["self".to_string()];
        pids.extend(plan.server_pids.iter().map(u32::to_string));
        let before = sample_all(&pids)?;
        let stop = CancellationToken::new();
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let groups: Vec<Group> = (0..(workers * 2).min(plan.connect.count.max(1)))
            .map(|_| {
                Group::start(
                    plan.connect.channels.clone(),
                    event.to_string(),
                    planned,
                    stop.clone(),
                )
            })
            .collect();
        let connect = clients::connect_all(plan.connect, &groups).await;
        if connect.connected == 0 {
            stop.cancel();
            let reasons = connect
                .failure_examples
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            return Err(BenchError::NoSubscriber(reasons));
        }
        tokio::time::sleep(plan.settle).await;
        let connected = sample_all(&pids)?;
        let machine_connected = procstat::machine_busy_seconds().map(|busy| (Instant::now(), busy));
        Ok(Self {
            groups,
            stop,
            connect,
            pids,
            before,
            connected,
            machine_connected,
        })
    }

    /// Subscribers connected.
    pub fn subscribers(&self) -> u64 {
        self.connect.connected
    }

    /// First arrivals so far, over every group.
    pub fn delivered(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.delivered.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// Subscribers whose socket ended so far.
    pub fn ended(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.ended.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// Waits until every subscriber received each of the `planned` events or ended before it
    /// did (so nothing more can come), or `deadline` passed.
    pub async fn wait_for_all(&self, planned: u64, deadline: tokio::time::Instant) {
        let target = planned * self.subscribers();
        let settled = || {
            let missed: u64 = (self.groups.iter())
                .map(|g| g.missed.load(std::sync::atomic::Ordering::Relaxed))
                .sum();
            self.delivered() + missed >= target
        };
        while !settled() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `target` first arrivals were counted or `deadline` passed.
    pub async fn wait_for(&self, target: u64, deadline: tokio::time::Instant) {
        while self.delivered() < target && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the groups and reports the run: every subscriber is accounted against what was
    /// `sent` (the events a fan-out's triggers got accepted, the one awaited event, or none on
    /// an idle hold), and a fan-out run's CPU is also given per million deliveries.
    pub async fn close(
        self,
        setup: Setup,
        sent: Sent,
        elapsed: Duration,
    ) -> Result<Report, BenchError> {
        let per_delivery = matches!(sent, Sent::Triggers(_));
        let (trigger, accepted, mut awaited) = match sent {
            Sent::Nothing => (None, SeqSet::default(), None),
            Sent::Triggers(outcome) => (Some(outcome.report), outcome.accepted, None),
            Sent::Awaited(awaited) => {
                let mut zero = SeqSet::with_bound(1);
                zero.insert(0);
                (None, zero, Some(awaited))
            }
        };
        let after = sample_all(&self.pids)?;
        let machine_after = procstat::machine_busy_seconds();
        self.stop.cancel();
        let mut latency = stats::histogram();
        let mut orders = std::collections::HashSet::new();
        let (mut arrivals_us, mut earliest_sent_us) = (None::<(u64, u64)>, None::<u64>);
        let mut report = DeliveryReport {
            elapsed_seconds: elapsed.as_secs_f64(),
            ..DeliveryReport::default()
        };
        for group in self.groups {
            let result: GroupResult = group.finish().await;
            latency
                .add(&result.latency)
                .expect("every group histogram has the same bounds");
            for tracker in &result.trackers {
                let unconfirmed = tracker.unconfirmed(&accepted);
                report.expected += accepted.len();
                report.received += tracker.unique() - unconfirmed;
                let lost = tracker.lost(&accepted);
                report.lost += lost;
                report.duplicates += tracker.duplicates;
                report.out_of_order += tracker.out_of_order;
                report.unconfirmed += unconfirmed;
                if lost == 0 {
                    orders.insert(tracker.order());
                }
            }
            for (code, count) in result.ended {
                let code = code.map_or_else(|| "no close frame".to_string(), |c| c.to_string());
                *report.disconnected.entry(code).or_default() += count;
            }
            report.other_frames += result.other_frames;
            report.pusher_errors += result.pusher_errors;
            if let Some((first, last)) = result.arrivals_us {
                arrivals_us =
                    Some(arrivals_us.map_or((first, last), |(f, l)| (f.min(first), l.max(last))));
            }
            earliest_sent_us = match (earliest_sent_us, result.earliest_sent_us) {
                (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
                (ours, theirs) => ours.or(theirs),
            };
        }
        if let Some(awaited) = &mut awaited {
            awaited.received = report.received;
            awaited.arrived(earliest_sent_us, arrivals_us);
            awaited.latency_us = stats::recorded(&latency);
        }
        report.latency_ms = Summary::of(&latency);
        report.arrival_orders = orders.len() as u64;
        report.per_second = report.received as f64 / report.elapsed_seconds.max(1e-9);
        let subscribers = self.connect.connected;
        let deliveries = per_delivery.then_some(report.received);
        let measured: f64 = (self.connected.iter().zip(&after))
            .map(|(connected, after)| after.cpu_seconds - connected.cpu_seconds)
            .sum();
        let machine = match (self.machine_connected, machine_after) {
            (Some((since, busy_then)), Some(busy_now)) => {
                let seconds = since.elapsed().as_secs_f64().max(1e-9);
                MachineReport {
                    cores: std::thread::available_parallelism().map_or(0, usize::from),
                    busy_cores: (busy_now - busy_then) / seconds,
                    measured_cores: measured / seconds,
                }
            }
            _ => MachineReport::default(),
        };
        let mut client: Vec<ProcessReport> = self
            .pids
            .into_iter()
            .zip(self.before.into_iter().zip(self.connected).zip(after))
            .map(|(pid, ((before, connected), after))| {
                ProcessReport::new(pid, [before, connected, after], subscribers, deliveries)
            })
            .collect();
        // This process was sampled first; the servers follow.
        let servers = client.split_off(1.min(client.len()));
        Ok(Report {
            setup,
            connect: self.connect,
            trigger,
            delivery: report,
            client,
            servers,
            machine,
            awaited,
        })
    }
}
