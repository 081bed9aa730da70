//! The result of a run: one serialisable value, printed as JSON (`--json`) or as Markdown
//! tables ready to paste into BENCHMARKS.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::clients::ConnectReport;
use crate::procstat::Sample;
use crate::stats::Summary;
use crate::trigger::TriggerReport;

/// What was asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Setup {
    /// `fanout` or `idle`.
    pub mode: String,
    /// WebSocket base URLs.
    pub ws: Vec<String>,
    /// HTTP API base URLs (fan-out only).
    pub api: Vec<String>,
    /// Source addresses of the client sockets (empty: the OS's choice).
    pub source_ips: Vec<String>,
    /// The channel (with more than one channel, the base of their names).
    pub channel: String,
    /// How many channels the events were spread over (0 in reports from before the option: 1).
    #[serde(default)]
    pub channels: u64,
    /// Subscribers asked for.
    pub subscribers: u64,
    /// Events per second (fan-out only).
    pub rate: f64,
    /// Events planned (fan-out only).
    pub messages: u64,
    /// Bytes of data per event (fan-out only).
    pub payload_bytes: usize,
    /// Seconds the sockets were held (idle only).
    #[serde(default)]
    pub hold_seconds: f64,
}

/// Delivery accounting over every subscriber.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Subscribers × accepted events.
    pub expected: u64,
    /// Distinct (subscriber, event) arrivals.
    pub received: u64,
    /// Accepted events a subscriber never received, summed.
    pub lost: u64,
    /// Arrivals of an event a subscriber already had.
    pub duplicates: u64,
    /// First arrivals after a later event.
    pub out_of_order: u64,
    /// Arrivals of events whose trigger was not acknowledged.
    pub unconfirmed: u64,
    /// Distinct arrival orders among the subscribers that received every accepted event: 1
    /// when every subscriber saw the same order, as it must.
    pub arrival_orders: u64,
    /// Frames that were not this run's events.
    pub other_frames: u64,
    /// `pusher:error` frames after subscribing.
    pub pusher_errors: u64,
    /// Subscribers whose socket ended during the run, by close code.
    pub disconnected: BTreeMap<String, u64>,
    /// Seconds from the first trigger to the last delivery (or the drain deadline).
    pub elapsed_seconds: f64,
    /// Deliveries per second over that time.
    pub per_second: f64,
    /// Trigger sent → client received, ms.
    pub latency_ms: Summary,
}

/// CPU and memory of one process over the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessReport {
    /// `self` for the benchmark (or `children` for its helpers), else the server's pid.
    pub pid: String,
    /// Before connecting.
    pub before: Sample,
    /// After connecting and settling.
    pub connected: Sample,
    /// At the end.
    pub after: Sample,
    /// (connected − before) RSS divided by all subscribers, KiB.
    pub rss_kib_per_subscriber: f64,
    /// CPU seconds from connected to the end (the fan-out or hold phase).
    pub cpu_seconds_run: f64,
    /// `cpu_seconds_run` per million deliveries (fan-out only).
    pub cpu_seconds_per_million_deliveries: Option<f64>,
}

impl ProcessReport {
    /// Derives the per-subscriber and per-delivery figures from three samples.
    pub fn new(
        pid: String,
        [before, connected, after]: [Sample; 3],
        subscribers: u64,
        deliveries: Option<u64>,
    ) -> Self {
        let cpu_seconds_run = after.cpu_seconds - connected.cpu_seconds;
        Self {
            pid,
            before,
            connected,
            after,
            rss_kib_per_subscriber: (connected.rss_kib as f64 - before.rss_kib as f64)
                / subscribers.max(1) as f64,
            cpu_seconds_run,
            cpu_seconds_per_million_deliveries: deliveries
                .filter(|&d| d > 0)
                .map(|d| cpu_seconds_run / (d as f64 / 1e6)),
        }
    }
}

/// The whole machine during the run (from connected to the end).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineReport {
    /// Cores of this machine.
    pub cores: usize,
    /// Cores busy on average, all processes together.
    pub busy_cores: f64,
    /// Cores busy on average in the measured processes (this one and the servers).
    pub measured_cores: f64,
}

/// The one event an idle run awaited after its hold (`herald-bench idle --await-event`), sent by
/// someone else (`herald-bench trigger`): who received it and when. Times are wall-clock
/// microseconds since the Unix epoch, comparable across the processes of one machine, so the
/// reports of several idle processes give one event's fan-out to all their sockets together.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AwaitReport {
    /// The event name awaited.
    pub event: String,
    /// Seconds the run would wait for it after the hold, at most.
    pub timeout_seconds: f64,
    /// Seconds it waited: until every socket still open had the event, or the timeout.
    pub waited_seconds: f64,
    /// Sockets still open when the wait began.
    pub held: u64,
    /// Sockets that received the event.
    pub received: u64,
    /// The send stamp in the event's data.
    pub sent_us: Option<u64>,
    /// When the first socket received it.
    pub first_arrival_us: Option<u64>,
    /// When the last socket received it.
    pub last_arrival_us: Option<u64>,
    /// Send stamp → first arrival, ms.
    pub first_ms: Option<f64>,
    /// Send stamp → last arrival, ms: the fan-out time over this process's sockets.
    pub last_ms: Option<f64>,
    /// Send stamp → arrival over every socket, as `(µs, count)` per recorded value of the
    /// histogram ([`crate::stats::recorded`]): merge several processes' to get percentiles
    /// over all their sockets.
    pub latency_us: Vec<(u64, u64)>,
}

impl AwaitReport {
    /// Fills in the send stamp and the first and last arrival (wall-clock µs), and the
    /// latencies between them.
    pub fn arrived(&mut self, sent_us: Option<u64>, arrivals_us: Option<(u64, u64)>) {
        let since_sent = |at: u64| sent_us.map(|sent| at.saturating_sub(sent) as f64 / 1000.0);
        self.sent_us = sent_us;
        self.first_arrival_us = arrivals_us.map(|(first, _)| first);
        self.last_arrival_us = arrivals_us.map(|(_, last)| last);
        self.first_ms = self.first_arrival_us.and_then(since_sent);
        self.last_ms = self.last_arrival_us.and_then(since_sent);
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// What was asked for.
    pub setup: Setup,
    /// The connect phase.
    pub connect: ConnectReport,
    /// The trigger side (fan-out only).
    pub trigger: Option<TriggerReport>,
    /// The receive side (fan-out) or what ended during the hold (idle).
    pub delivery: DeliveryReport,
    /// The benchmark process itself.
    pub client: Vec<ProcessReport>,
    /// The servers named with `--server-pid`.
    pub servers: Vec<ProcessReport>,
    /// The machine: was anything else competing for the CPU?
    pub machine: MachineReport,
    /// The event awaited after an idle hold (`--await-event` only).
    #[serde(default)]
    pub awaited: Option<AwaitReport>,
}

impl Report {
    /// Whether the run kept every promise: all subscribers connected, every trigger accepted,
    /// every delivery made once, no socket dropped.
    pub fn clean(&self) -> bool {
        let trigger_ok = self.trigger.as_ref().is_none_or(|t| t.errors.is_empty());
        self.connect.failures.is_empty()
            && trigger_ok
            && self.delivery.lost == 0
            && self.delivery.duplicates == 0
            && self.delivery.arrival_orders <= 1
            && self.delivery.disconnected.is_empty()
    }

    /// Markdown tables.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let s = &self.setup;
        let c = &self.connect;
        let d = &self.delivery;
        let _ = writeln!(out, "| {} | |\n|---|---|", heading(s));
        row(
            &mut out,
            "subscribers connected",
            format!("{} / {}", c.connected, c.requested),
        );
        for (label, count) in &c.failures {
            let example = c.failure_examples.get(label).map_or("", String::as_str);
            row(
                &mut out,
                &format!("connect failures: {label}"),
                format!("{count} ({example})"),
            );
        }
        row(
            &mut out,
            "connect rate",
            format!("{:.0}/s ({:.2} s in all)", c.per_second, c.elapsed_seconds),
        );
        row(
            &mut out,
            "handshake (TCP → connection_established) p50 / p99 / max",
            ms3(&c.handshake_ms),
        );
        row(
            &mut out,
            "subscribe → subscription_succeeded p50 / p99 / max",
            ms3(&c.subscribe_ms),
        );
        if let Some(t) = &self.trigger {
            row(
                &mut out,
                "messages sent / accepted",
                format!(
                    "{} / {} ({:.1}/s achieved, max lag {:.1} ms)",
                    t.sent, t.accepted, t.achieved_rate, t.max_lag_ms
                ),
            );
            let errors: u64 = t.errors.values().sum();
            row(&mut out, "HTTP errors", errors.to_string());
            for (label, count) in &t.errors {
                let example = t.error_examples.get(label).map_or("", String::as_str);
                row(
                    &mut out,
                    &format!("HTTP errors: {label}"),
                    format!("{count} ({example})"),
                );
            }
            row(
                &mut out,
                "trigger HTTP latency p50 / p99 / max",
                ms3(&t.http_ms),
            );
            row(
                &mut out,
                "deliveries expected / received",
                format!("{} / {}", d.expected, d.received),
            );
            row(
                &mut out,
                "lost / duplicates / unconfirmed",
                format!("{} / {} / {}", d.lost, d.duplicates, d.unconfirmed),
            );
            row(
                &mut out,
                "out of send order / distinct arrival orders",
                format!("{} / {}", d.out_of_order, d.arrival_orders),
            );
            let l = &d.latency_ms;
            row(
                &mut out,
                "end-to-end latency p50 / p90 / p99 / p99.9 / max",
                format!(
                    "{:.2} / {:.2} / {:.2} / {:.2} / {:.2} ms (mean {:.2})",
                    l.p50, l.p90, l.p99, l.p999, l.max, l.mean
                ),
            );
            row(
                &mut out,
                "deliveries/s",
                format!("{:.0} (over {:.2} s)", d.per_second, d.elapsed_seconds),
            );
        }
        if let Some(a) = &self.awaited {
            let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2} ms"));
            row(
                &mut out,
                &format!(
                    "event {} received / sockets held when the wait began",
                    a.event
                ),
                format!(
                    "{} / {} (waited {:.2} s of {:.0} s)",
                    a.received, a.held, a.waited_seconds, a.timeout_seconds
                ),
            );
            let us = |v: Option<u64>| v.map_or("—".to_string(), |v| v.to_string());
            row(
                &mut out,
                "sent / first / last arrival (µs since the epoch)",
                format!(
                    "{} / {} / {}",
                    us(a.sent_us),
                    us(a.first_arrival_us),
                    us(a.last_arrival_us)
                ),
            );
            row(
                &mut out,
                "send → first / last arrival (fan-out time)",
                format!("{} / {}", ms(a.first_ms), ms(a.last_ms)),
            );
            let l = &d.latency_ms;
            row(
                &mut out,
                "send → arrival p50 / p99 / max",
                format!("{:.2} / {:.2} / {:.2} ms", l.p50, l.p99, l.max),
            );
        }
        if d.other_frames + d.pusher_errors > 0 {
            row(
                &mut out,
                "other frames / pusher:error",
                format!("{} / {}", d.other_frames, d.pusher_errors),
            );
        }
        let disconnected: Vec<String> = d
            .disconnected
            .iter()
            .map(|(code, n)| format!("{n}× {code}"))
            .collect();
        row(
            &mut out,
            "sockets ended during the run",
            if disconnected.is_empty() {
                "0".to_string()
            } else {
                disconnected.join(", ")
            },
        );
        let processes = (self.client.iter().map(|p| ("bench process", p)))
            .chain(self.servers.iter().map(|p| ("server pid", p)));
        for (kind, p) in processes {
            let name = format!("{kind} {}", p.pid);
            let per_million = p
                .cpu_seconds_per_million_deliveries
                .map_or(String::new(), |v| {
                    format!(", {v:.2} CPU-s per 1M deliveries")
                });
            row(
                &mut out,
                &name,
                format!(
                    "RSS {:.1} → {:.1} → {:.1} MiB ({:+.2} KiB/subscriber); CPU {:.2} s in the run ({:.2} s connecting){per_million}",
                    p.before.rss_kib as f64 / 1024.0,
                    p.connected.rss_kib as f64 / 1024.0,
                    p.after.rss_kib as f64 / 1024.0,
                    p.rss_kib_per_subscriber,
                    p.cpu_seconds_run,
                    p.connected.cpu_seconds - p.before.cpu_seconds,
                ),
            );
        }
        let m = &self.machine;
        row(
            &mut out,
            "machine CPU during the run",
            format!(
                "{:.2} of {} cores busy, {:.2} of them in the measured processes",
                m.busy_cores, m.cores, m.measured_cores
            ),
        );
        out
    }

    /// Prints the report on stdout.
    pub fn print(&self, json: bool) {
        let text = if json {
            serde_json::to_string_pretty(self).expect("a report always serialises")
        } else {
            self.to_markdown()
        };
        #[allow(clippy::print_stdout, reason = "the report is this command's output")]
        {
            println!("{text}");
        }
    }
}

/// `bench`, or `16 channels bench-0…bench-15`.
fn channels_label(s: &Setup) -> String {
    if s.channels > 1 {
        format!(
            "{} channels {}-0…{}-{}",
            s.channels,
            s.channel,
            s.channel,
            s.channels - 1
        )
    } else {
        s.channel.clone()
    }
}

fn heading(s: &Setup) -> String {
    let sources = if s.source_ips.is_empty() {
        String::new()
    } else {
        format!(" from {} source IPs", s.source_ips.len())
    };
    if s.mode == "fanout" {
        format!(
            "herald-bench fanout: {} subscribers on {} over {} ws URL(s){sources}; {} msg/s × {} messages of {} B",
            s.subscribers,
            channels_label(s),
            s.ws.len(),
            s.rate,
            s.messages,
            s.payload_bytes
        )
    } else {
        format!(
            "herald-bench idle: {} subscribers on {} over {} ws URL(s){sources}{}",
            s.subscribers,
            channels_label(s),
            s.ws.len(),
            if s.hold_seconds > 0.0 {
                format!(", held {} s", s.hold_seconds)
            } else {
                String::new()
            }
        )
    }
}

fn row(out: &mut String, name: &str, value: String) {
    let _ = writeln!(out, "| {name} | {value} |");
}

fn ms3(s: &Summary) -> String {
    format!("{:.2} / {:.2} / {:.2} ms", s.p50, s.p99, s.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu_seconds: f64, rss_kib: u64) -> Sample {
        Sample {
            cpu_seconds,
            rss_kib,
        }
    }

    #[test]
    fn per_subscriber_and_per_delivery_figures() {
        let p = ProcessReport::new(
            "1".into(),
            [
                sample(1.0, 10_000),
                sample(2.0, 18_000),
                sample(5.0, 18_500),
            ],
            1000,
            Some(2_000_000),
        );
        assert_eq!(p.rss_kib_per_subscriber, 8.0);
        assert_eq!(p.cpu_seconds_run, 3.0);
        assert_eq!(p.cpu_seconds_per_million_deliveries, Some(1.5));
        let idle = ProcessReport::new("1".into(), [sample(0.0, 0); 3], 0, Some(0));
        assert_eq!(idle.cpu_seconds_per_million_deliveries, None);
    }

    #[test]
    fn a_clean_run_and_a_lossy_one() {
        let mut report = Report::default();
        assert!(report.clean());
        assert!(
            report
                .to_markdown()
                .contains("| subscribers connected | 0 / 0 |")
        );
        report.delivery.lost = 1;
        assert!(!report.clean());
        report.awaited = Some(AwaitReport::default());
        assert!(report.to_markdown().contains("fan-out time) | — / — |"));
        let json = serde_json::to_string(&report).expect("serialises");
        let back: Report = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back.delivery.lost, 1);
        assert!(back.awaited.is_some());
    }

    #[test]
    fn an_awaited_event_times_its_arrivals_from_its_stamp() {
        let mut awaited = AwaitReport::default();
        awaited.arrived(Some(1_000_000), Some((1_000_500, 1_250_000)));
        assert_eq!(awaited.first_arrival_us, Some(1_000_500));
        assert_eq!(awaited.last_arrival_us, Some(1_250_000));
        assert_eq!(awaited.first_ms, Some(0.5));
        assert_eq!(awaited.last_ms, Some(250.0));
        // A clock step between send and arrival gives 0, not a wrapped number.
        awaited.arrived(Some(2_000_000), Some((1_999_000, 2_000_001)));
        assert_eq!(awaited.first_ms, Some(0.0));
        awaited.arrived(None, None);
        assert_eq!((awaited.first_ms, awaited.last_arrival_us), (None, None));
    }
}
