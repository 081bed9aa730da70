//! CPU time and resident memory of a process, read from Linux's `/proc`: the benchmark's own
//! (is the client the bottleneck?) and the servers' (CPU-seconds per million deliveries, KiB per
//! socket). Both only make sense on the machine the servers run on, which is how the benchmark
//! is meant to be run (loopback).

use serde::{Deserialize, Serialize};

/// `/proc/PID/stat` counts CPU time in clock ticks of `USER_HZ`, which Linux fixes at 100 for
/// every architecture's user-space ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// User plus system CPU time so far, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
}

/// Why a process cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read /proc/{pid}: {reason}")]
pub struct ProcError {
    pid: String,
    reason: String,
}

/// Reads a process: `pid` is a number or `self`.
pub fn sample(pid: &str) -> Result<Sample, ProcError> {
    let error = |reason: String| ProcError {
        pid: pid.to_string(),
        reason,
    };
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| error(e.to_string()))?;
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| error(e.to_string()))?;
    let cpu_seconds = parse_cpu_seconds(&stat).ok_or_else(|| error("unreadable stat".into()))?;
    let rss_kib = parse_rss_kib(&status).ok_or_else(|| error("no VmRSS in status".into()))?;
    Ok(Sample {
        cpu_seconds,
        rss_kib,
    })
}

/// utime + stime from `/proc/PID/stat` (fields 14 and 15; the command name before them may
/// contain spaces and parentheses, so fields are counted after its last `)`).
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// CPU seconds the whole machine spent busy (every state but idle and iowait, all cores)
/// since boot, from `/proc/stat`: with the measured processes' own CPU it shows whether
/// something else was competing during a run.
pub fn machine_busy_seconds() -> Option<f64> {
    parse_machine_busy(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_machine_busy(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - ticks.get(3)? - ticks.get(4)?;
    Some(busy as f64 / TICKS_PER_SECOND)
}

/// `VmRSS:  1234 kB` from `/proc/PID/status`.
fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_an_awkward_command_name() {
        let stat = "4242 (we ird) cmd)) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 4 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.25));
        assert_eq!(parse_cpu_seconds("garbage"), None);
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\therald\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kib(status), Some(12_345));
        assert_eq!(parse_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn parses_machine_busy_time() {
        let stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(1.6));
        assert_eq!(parse_machine_busy("intr 1 2 3"), None);
        assert!(machine_busy_seconds().is_some_and(|busy| busy > 0.0));
    }

    #[test]
    fn reads_this_process() {
        let me = sample("self").expect("/proc/self is readable on Linux");
        assert!(me.rss_kib > 0);
        assert!(sample("0").is_err());
    }
}
