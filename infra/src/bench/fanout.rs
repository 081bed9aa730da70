//! The two benchmark runs: fan-out (trigger at a rate, measure every delivery) and idle (hold
//! subscribed sockets, measure what they cost the server).

use std::time::{Duration, Instant};

use super::report::{ProcessReport, Report, Setup};
use super::sequence::SeqSet;
use super::session::{BenchError, Session, SessionPlan, ensure_open_files};
use super::trigger::{self, TriggerPlan};

/// The event name idle runs listen for: nothing triggers it.
const IDLE_EVENT: &str = "herald-bench-idle";

/// Splits the process reports into this process's and the servers'.
fn split_self(mut processes: Vec<ProcessReport>) -> (Vec<ProcessReport>, Vec<ProcessReport>) {
    let servers = processes.split_off(1.min(processes.len()));
    (processes, servers)
}

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
    let elapsed = started.elapsed();
    let connect = session.connect.clone();
    let (delivery, processes, machine) = session.close(&outcome.accepted, elapsed, true).await?;
    let (client, servers) = split_self(processes);
    setup.mode = "fanout".into();
    Ok(Report {
        setup,
        connect,
        trigger: Some(outcome.report),
        delivery,
        client,
        servers,
        machine,
    })
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
    let connect = session.connect.clone();
    let (delivery, processes, machine) = session
        .close(&SeqSet::default(), started.elapsed(), false)
        .await?;
    let (client, servers) = split_self(processes);
    setup.mode = "idle".into();
    Ok(Report {
        setup,
        connect,
        trigger: None,
        delivery,
        client,
        servers,
        machine,
    })
}
