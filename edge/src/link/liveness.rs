//! Whether the hub is still there: a silence deadline over what the link receives.
//!
//! The edge asks its QUIC connection, every [`Liveness::period`], how many datagrams it has
//! received. A live hub is never silent for long: it sends events, acknowledgements, and answers
//! the edge's QUIC keep-alive pings (sent after a short silence). When nothing has arrived for
//! the silence deadline, the hub is gone — dead, or its host unreachable — and the edge fails
//! over at once instead of waiting for QUIC's much longer idle timeout.
//!
//! When this process itself was paused (a busy machine, a starved runtime), datagrams that
//! arrived meanwhile may still sit unread in the socket when the next check runs. So a check
//! that comes late (more than two periods after the previous one) judges only the silence up to
//! the previous check: the runtime gets one full round to read what is queued, an edge's own
//! pause never reads as its hub's silence, and the verdict is only delayed by one check. Pure
//! state, no I/O: the link session feeds it `now` and the received count.

use std::time::{Duration, Instant};

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Heard from the hub recently enough.
    Alive,
    /// Heard from the hub again after a silence longer than half the deadline (worth a log
    /// line: a hub this slow is close to being failed over).
    Recovered(Duration),
    /// Nothing heard for at least the deadline (the silence confirmed so far).
    Gone(Duration),
}

/// The silence deadline of one link session.
#[derive(Debug, Clone)]
pub struct Liveness {
    deadline: Duration,
    received: u64,
    last_heard: Instant,
    last_check: Instant,
}

impl Liveness {
    /// Checks per deadline: the verdict comes at most two periods (a twelfth of the deadline)
    /// after the deadline.
    const CHECKS_PER_DEADLINE: u32 = 24;

    /// A session that has just been established (`received` datagrams so far) at `now`.
    pub fn new(deadline: Duration, now: Instant, received: u64) -> Self {
        Self {
            deadline,
            received,
            last_heard: now,
            last_check: now,
        }
    }

    /// How often [`Liveness::check`] should run.
    pub fn period(&self) -> Duration {
        self.deadline / Self::CHECKS_PER_DEADLINE
    }

    /// Records a check at `now`, when the connection has received `received` datagrams in all.
    pub fn check(&mut self, now: Instant, received: u64) -> Verdict {
        let previous_check = std::mem::replace(&mut self.last_check, now);
        if received != self.received {
            self.received = received;
            let silence =
                now.saturating_duration_since(std::mem::replace(&mut self.last_heard, now));
            return if silence > self.deadline / 2 {
                Verdict::Recovered(silence)
            } else {
                Verdict::Alive
            };
        }
        let on_time = now.saturating_duration_since(previous_check) <= 2 * self.period();
        let judged_at = if on_time { now } else { previous_check };
        let confirmed = judged_at.saturating_duration_since(self.last_heard);
        if confirmed >= self.deadline {
            Verdict::Gone(confirmed)
        } else {
            Verdict::Alive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_millis(600);

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
            .find(|at| liveness.check(start + ms(*at), received) != Verdict::Alive)
    }

    #[test]
    fn a_hub_that_keeps_talking_is_alive() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        for step in 1..1000u64 {
            assert_eq!(liveness.check(start + ms(step * 25), step), Verdict::Alive);
        }
    }

    #[test]
    fn silence_past_the_deadline_is_gone_at_the_next_check() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 7);
        assert_eq!(liveness.period(), ms(25));
        let gone = run(&mut liveness, start, 25, 5_000, 7).expect("declared gone");
        assert_eq!(gone, 600);
        assert_eq!(liveness.check(start + ms(625), 7), Verdict::Gone(ms(625)));
    }

    #[test]
    fn late_checks_still_find_a_silent_hub() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        // A busy machine: every check comes 60 ms after the previous one (more than two
        // periods), so each judges the silence up to the check before.
        let gone = (1..100u64)
            .map(|n| n * 60)
            .find(|at| liveness.check(start + ms(*at), 0) != Verdict::Alive)
            .expect("declared gone");
        assert_eq!(gone, 660);
    }

    #[test]
    fn a_pause_shorter_than_the_deadline_is_not_a_failover() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        // Heard until 1 s, then 450 ms of silence (a stalled hub), then traffic again.
        for step in 1..=40u64 {
            assert_eq!(liveness.check(start + ms(step * 25), step), Verdict::Alive);
        }
        assert_eq!(run(&mut liveness, start, 1_025, 1_575, 40), None);
        assert_eq!(
            liveness.check(start + ms(1_600), 41),
            Verdict::Recovered(ms(600))
        );
        assert_eq!(run(&mut liveness, start, 1_625, 2_000, 41), None);
    }

    #[test]
    fn the_edges_own_stall_is_not_the_hubs_silence() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        assert_eq!(liveness.check(start + ms(25), 1), Verdict::Alive);
        // This process is paused for 2 s: its next check finds no new datagram yet (they are
        // still unread in the socket)…
        assert_eq!(liveness.check(start + ms(2_025), 1), Verdict::Alive);
        // …and the check after that does.
        assert_eq!(
            liveness.check(start + ms(2_050), 2),
            Verdict::Recovered(ms(2_025))
        );
    }

    #[test]
    fn a_hub_that_died_during_the_edges_stall_is_gone_one_check_later() {
        let start = Instant::now();
        let mut liveness = Liveness::new(DEADLINE, start, 0);
        assert_eq!(liveness.check(start + ms(25), 1), Verdict::Alive);
        assert_eq!(liveness.check(start + ms(2_025), 1), Verdict::Alive);
        assert_eq!(
            liveness.check(start + ms(2_050), 1),
            Verdict::Gone(ms(2_025))
        );
    }
}
