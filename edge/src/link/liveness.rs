//! Whether the hub is still there: a silence deadline over what the link receives.
//!
//! The edge asks its QUIC connection, every [`Liveness::period`], how many datagrams it has
//! received. A live hub is never silent for long: it sends events, acknowledgements, and answers
//! the edge's QUIC keep-alive pings (sent after a short silence). When nothing has arrived for
//! the silence deadline, the hub is gone — dead, or its host unreachable — and the edge fails
//! over at once instead of waiting for QUIC's much longer idle timeout.
//!
//! Two rules keep a busy machine from passing for a dead hub:
//! - **Late checks judge the past.** When this process itself was paused (a starved runtime),
//!   datagrams that arrived meanwhile may still sit unread in the socket when the next check
//!   runs. A check that comes late (more than two periods after the previous one) judges only
//!   the silence up to the previous check: the runtime gets one round to read what is queued,
//!   and the verdict is only delayed by one check.
//! - **Only towards a hub that answers.** The edge fails over only when its standby link to the
//!   next hub has been heard within the deadline. When every hub is silent at once, the likely
//!   cause is this edge's machine or network, and moving would only trade a slow hub for a
//!   handshake with a dead one; the edge stays (QUIC's idle timeout remains the backstop).
//!
//! Pure state, no I/O: the link session feeds it `now` and the received counts.

use std::time::{Duration, Instant};

/// When a connection was last heard from, judged by its count of received datagrams.
#[derive(Debug, Clone)]
pub struct Heard {
    received: u64,
    at: Instant,
}

impl Heard {
    /// A connection that has received `received` datagrams, as of `now`.
    pub fn new(now: Instant, received: u64) -> Self {
        Self { received, at: now }
    }

    /// Records the count at `now`; returns the silence that just ended if something arrived.
    pub fn update(&mut self, now: Instant, received: u64) -> Option<Duration> {
        if received == self.received {
            return None;
        }
        self.received = received;
        Some(now.saturating_duration_since(std::mem::replace(&mut self.at, now)))
    }

    /// How long nothing has arrived, as of `at`.
    pub fn silence(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.at)
    }
}

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stay: heard from the hub recently enough.
    Keep,
    /// Stay: heard from the hub again after a silence longer than half the deadline (worth a
    /// log line: a hub this slow is close to being failed over).
    Recovered(Duration),
    /// Stay, although the hub has been silent past the deadline: no standby hub was heard
    /// within it either. Reported once per silence.
    Stranded(Duration),
    /// Fail over: nothing heard for at least the deadline (the silence confirmed so far), and
    /// the standby hub answers.
    Gone(Duration),
}

/// The silence deadline of one link session.
#[derive(Debug, Clone)]
pub struct Liveness {
    deadline: Duration,
    heard: Heard,
    last_check: Instant,
    stranded: bool,
}

impl Liveness {
    /// Checks per deadline: the verdict comes at most two periods (a twelfth of the deadline)
    /// after the deadline.
    const CHECKS_PER_DEADLINE: u32 = 24;

    /// A session that has just been established (`received` datagrams so far) at `now`.
    pub fn new(deadline: Duration, now: Instant, received: u64) -> Self {
        Self {
            deadline,
            heard: Heard::new(now, received),
            last_check: now,
            stranded: false,
        }
    }

    /// How often [`Liveness::check`] should run.
    pub fn period(&self) -> Duration {
        self.deadline / Self::CHECKS_PER_DEADLINE
    }

    /// Records a check at `now`, when the connection has received `received` datagrams in all
    /// and the standby link (if one is ready) has been silent for `standby`.
    pub fn check(&mut self, now: Instant, received: u64, standby: Option<Duration>) -> Verdict {
        let previous_check = std::mem::replace(&mut self.last_check, now);
        if let Some(silence) = self.heard.update(now, received) {
            self.stranded = false;
            return if silence > self.deadline / 2 {
                Verdict::Recovered(silence)
            } else {
                Verdict::Keep
            };
        }
        let on_time = now.saturating_duration_since(previous_check) <= 2 * self.period();
        let judged_at = if on_time { now } else { previous_check };
        let confirmed = self.heard.silence(judged_at);
        if confirmed < self.deadline {
            return Verdict::Keep;
        }
        if standby.is_some_and(|silence| silence < self.deadline) {
            return Verdict::Gone(confirmed);
        }
        if std::mem::replace(&mut self.stranded, true) {
            Verdict::Keep
        } else {
            Verdict::Stranded(confirmed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_millis(600);
    /// A standby hub that answers.
    const ANSWERING: Option<Duration> = Some(Duration::from_millis(100));

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Checks every period from `from` to `to` (inclusive) with a fixed received count; returns
    /// the first time the verdict was `Gone`.
    fn run(
        liveness: &mut Liveness,
        start: Instant,
        from: u64,
        to: u64,
        received: u64,
    ) -> Option<u64> {
        let period = liveness.period().as_millis() as u64;
        (from..=to)
            .step_by(period as usize)
            .find(|at| liveness.check(start + ms(*at), received, ANSWERING) != Verdict::Keep)
    }

    #[test]
    fn a_hub_that_keeps_talking_is_alive() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        for step in 1..1000u64 {
            assert_eq!(
                liveness.check(start + ms(step * 25), step, ANSWERING),
                Verdict::Keep
            );
        }
    }

    #[test]
    fn silence_past_the_deadline_is_gone_at_the_next_check() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 7);
        assert_eq!(liveness.period(), ms(25));
        let gone = run(&mut liveness, start, 25, 5_000, 7).expect("declared gone");
        assert_eq!(gone, 600);
        assert_eq!(
            liveness.check(start + ms(625), 7, ANSWERING),
            Verdict::Gone(ms(625))
        );
    }

    #[test]
    fn late_checks_still_find_a_silent_hub() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        // A busy machine: every check comes 60 ms after the previous one (more than two
        // periods), so each judges the silence up to the check before.
        let gone = (1..100u64)
            .map(|n| n * 60)
            .find(|at| liveness.check(start + ms(*at), 0, ANSWERING) != Verdict::Keep)
            .expect("declared gone");
        assert_eq!(gone, 660);
    }

    #[test]
    fn a_pause_shorter_than_the_deadline_is_not_a_failover() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        // Heard until 1 s, then 450 ms of silence (a stalled hub), then traffic again.
        for step in 1..=40u64 {
            assert_eq!(
                liveness.check(start + ms(step * 25), step, ANSWERING),
                Verdict::Keep
            );
        }
        assert_eq!(run(&mut liveness, start, 1_025, 1_575, 40), None);
        assert_eq!(
            liveness.check(start + ms(1_600), 41, ANSWERING),
            Verdict::Recovered(ms(600))
        );
        assert_eq!(run(&mut liveness, start, 1_625, 2_000, 41), None);
    }

    #[test]
    fn the_edges_own_stall_delays_the_verdict_by_one_check() {
        // After the edge was paused for 2 s, its first check finds no new datagram yet (any
        // are still unread in the socket); the check after that decides.
        for (received_then, verdict) in [
            (2, Verdict::Recovered(ms(2_025))),
            (1, Verdict::Gone(ms(2_025))),
        ] {
            let start = Instant::now();
            let mut liveness = Liveness::new(DEADLINE, start, 0);
            assert_eq!(liveness.check(start + ms(25), 1, ANSWERING), Verdict::Keep);
            let paused = liveness.check(start + ms(2_025), 1, ANSWERING);
            assert_eq!(paused, Verdict::Keep);
            let next = liveness.check(start + ms(2_050), received_then, ANSWERING);
            assert_eq!(next, verdict);
        }
    }

    /// Checks every period up to `to` (exclusive) with a fixed count and standby, expecting
    /// `Keep` from each.
    fn keep_until(liveness: &mut Liveness, start: Instant, from: u64, to: u64, received: u64) {
        for at in (from..to).step_by(25) {
            assert_eq!(
                liveness.check(start + ms(at), received, None),
                Verdict::Keep,
                "{at} ms"
            );
        }
    }

    #[test]
    fn with_no_standby_hub_answering_the_edge_stays() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        keep_until(&mut liveness, start, 25, 600, 0);
        assert_eq!(
            liveness.check(start + ms(600), 0, None),
            Verdict::Stranded(ms(600))
        );
        assert_eq!(liveness.check(start + ms(625), 0, None), Verdict::Keep);
        let silent_standby = Some(ms(700));
        assert_eq!(
            liveness.check(start + ms(650), 0, silent_standby),
            Verdict::Keep
        );
        // The standby answers again (or one is made): now the edge moves.
        assert_eq!(
            liveness.check(start + ms(675), 0, ANSWERING),
            Verdict::Gone(ms(675))
        );
    }

    #[test]
    fn stranded_is_reported_once_per_silence() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        keep_until(&mut liveness, start, 25, 600, 0);
        assert_eq!(
            liveness.check(start + ms(600), 0, None),
            Verdict::Stranded(ms(600))
        );
        keep_until(&mut liveness, start, 625, 700, 0);
        assert_eq!(
            liveness.check(start + ms(700), 1, None),
            Verdict::Recovered(ms(700))
        );
        keep_until(&mut liveness, start, 725, 1_300, 1);
        assert_eq!(
            liveness.check(start + ms(1_300), 1, None),
            Verdict::Stranded(ms(600))
        );
    }

    #[test]
    fn heard_reports_the_silence_that_ended() {
        let start = Instant::now();
        let mut heard = Heard::new(start, 3);
        assert_eq!(heard.update(start + ms(40), 3), None);
        assert_eq!(heard.silence(start + ms(40)), ms(40));
        assert_eq!(heard.update(start + ms(90), 5), Some(ms(90)));
        assert_eq!(heard.silence(start + ms(100)), ms(10));
    }
}
