//! The two benchmark runs: fan-out (trigger at a rate, measure every delivery) and idle (hold
//! subscribed sockets, measure what they cost the server).
//!
//! An idle run may also await one event after its hold ([`IdlePlan::await_event`]): the event
//! comes from another process (`herald-bench trigger`), so that several idle processes — one
//! process may open only so many sockets — can hold more sockets than one could and time one
//! event's fan-out to all of them. Deciding that in the idle run, rather than by triggering from
//! it, keeps the processes alike: none of them has to know it is the last one connected, and the
//! script that runs them sends the one trigger when all are ready (their `--ready-json` lines)
//! and the hold is over. The event is recorded whenever it arrives, in the hold too; the wait
//! after the hold ends as soon as every socket still open has it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::report::{AwaitReport, Report, Setup};
use crate::session::{BenchError, Sent, Session, SessionPlan, ensure_open_files};
use crate::trigger::{self, TriggerPlan};

/// The event name idle runs listen for: nothing triggers it.
const IDLE_EVENT: &str = "herald-bench-idle";

/// A fan-out run: subscribers, then triggers, then a bounded wait for the last deliveries.
pub async fn fanout(
    session: SessionPlan,
    trigger: TriggerPlan,
    drain: Duration,
    mut setup: Setup,
) -> Result<Report, BenchError> {
    ensure_open_files(session.connect.count as u64)?;
    let client = trigger::client(trigger.timeout).map_err(BenchError::HttpClient)?;
    trigger::preflight(&trigger, &client)
        .await
        .map_err(BenchError::Preflight)?;
    let session = Session::open(session, &trigger.event, trigger.count).await?;
    let subscribers = session.subscribers();
    tracing::info!(
        message = "Subscribers connected; triggering.",
        subscribers,
        messages = trigger.count
    );
    let started = Instant::now();
    let outcome = trigger::run(trigger, client).await;
    let target = outcome.accepted.len() * subscribers;
    session
        .wait_for(target, (Instant::now() + drain).into())
        .await;
    setup.mode = "fanout".into();
    session
        .close(setup, Sent::Triggers(outcome), started.elapsed())
        .await
}

/// How an idle run holds its sockets, and what it does after the hold.
#[derive(Debug, Clone)]
pub struct IdlePlan {
    /// How long to hold the sockets.
    pub hold: Duration,
    /// After the hold, how long to wait at most for one event, sequence number 0, named
    /// `event` on the run's (first) channel, on every socket still open; `None`: do not.
    pub await_event: Option<Duration>,
    /// The event awaited.
    pub event: String,
    /// Whether to print a ready line on stdout once connected, before the hold.
    pub ready_json: bool,
}

/// The line an idle run prints on stdout once its subscribers connected (`--ready-json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    /// Always `ready`.
    pub event: String,
    /// Subscribers connected and subscribed.
    pub subscribers: u64,
    /// Subscribers asked for.
    pub requested: u64,
}

/// An idle run: subscribers, then a hold with nothing triggered by this process; then, if
/// planned, the wait for the one awaited event.
pub async fn idle(
    session: SessionPlan,
    plan: IdlePlan,
    mut setup: Setup,
) -> Result<Report, BenchError> {
    ensure_open_files(session.connect.count as u64)?;
    let requested = session.connect.count as u64;
    let (event, planned) = match plan.await_event {
        Some(_) => (plan.event.as_str(), 1),
        None => (IDLE_EVENT, 0),
    };
    let session = Session::open(session, event, planned).await?;
    tracing::info!(
        message = "Subscribers connected; holding.",
        subscribers = session.subscribers(),
        seconds = plan.hold.as_secs_f64()
    );
    if plan.ready_json {
        let ready = Ready {
            event: "ready".into(),
            subscribers: session.subscribers(),
            requested,
        };
        #[allow(
            clippy::print_stdout,
            reason = "the ready line is this command's output"
        )]
        {
            println!(
                "{}",
                serde_json::to_string(&ready).expect("a ready line always serialises")
            );
        }
    }
    let started = Instant::now();
    tokio::time::sleep(plan.hold).await;
    setup.mode = "idle".into();
    setup.hold_seconds = plan.hold.as_secs_f64();
    let sent = match plan.await_event {
        None => Sent::Nothing,
        Some(timeout) => {
            let held = session.subscribers().saturating_sub(session.ended());
            tracing::info!(
                message = "Hold over; awaiting the event.",
                event,
                held,
                seconds = timeout.as_secs_f64()
            );
            let waiting = Instant::now();
            session
                .wait_for_all(planned, (waiting + timeout).into())
                .await;
            Sent::Awaited(AwaitReport {
                event: event.to_string(),
                timeout_seconds: timeout.as_secs_f64(),
                waited_seconds: waiting.elapsed().as_secs_f64(),
                held,
                ..AwaitReport::default()
            })
        }
    };
    session.close(setup, sent, started.elapsed()).await
}
