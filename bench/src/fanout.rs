//! The two benchmark runs: fan-out (trigger at a rate, measure every delivery) and idle (hold
//! subscribed sockets, measure what they cost the server).

use std::time::{Duration, Instant};

use crate::report::{Report, Setup};
use crate::session::{BenchError, Session, SessionPlan, ensure_open_files};
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
    session.close(setup, Some(outcome), started.elapsed()).await
}

/// An idle run: subscribers, then a hold with nothing triggered.
pub async fn idle(
    session: SessionPlan,
    hold: Duration,
    mut setup: Setup,
) -> Result<Report, BenchError> {
    ensure_open_files(session.connect.count as u64)?;
    let session = Session::open(session, IDLE_EVENT, 0).await?;
    tracing::info!(
        message = "Subscribers connected; holding.",
        subscribers = session.subscribers(),
        seconds = hold.as_secs_f64()
    );
    let started = Instant::now();
    tokio::time::sleep(hold).await;
    setup.mode = "idle".into();
    session.close(setup, None, started.elapsed()).await
}
