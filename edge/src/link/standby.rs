//! The standby link: a connection to the next hub in the edge's order, made while the current
//! session runs, so a failover does not wait for a QUIC and TLS handshake and the hub's welcome.
//!
//! The standby is connected and welcomed but sends nothing: no interest, no presence. The hub
//! only holds an idle connection (kept open by the edge's QUIC keep-alives). When the current
//! session ends and the next hub in the order is the standby's, the link task takes it and the
//! session starts there by re-sending the board; the frames the hub sent meanwhile (app table
//! updates, channel streams) wait on the connection and are read then, in order. A standby that
//! fails or closes is re-made after the shared back-off; one that is never used costs the hub
//! one idle connection.
//!
//! It is driven only while a session relays (see [`Standby::drive`]), so making it never
//! competes with linking to the current hub.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use herald_shared::backoff::backoff;
use herald_shared::link::CLOSE_SHUTDOWN;
use tokio::time::Sleep;

use super::liveness::Heard;
use super::session::{Connector, LinkError, Session};

type Connecting<'a> = Pin<Box<dyn Future<Output = Result<Session, LinkError>> + Send + 'a>>;

enum State<'a> {
    /// No standby wanted (a single hub).
    Off,
    /// Waiting to (re)try.
    Waiting(Pin<Box<Sleep>>),
    /// Connecting and waiting for the welcome.
    Connecting(Connecting<'a>),
    /// Welcomed; ready to take over. When it was last heard from.
    Ready(Box<Session>, Heard),
}

/// The standby link of one link task.
pub struct Standby<'a> {
    connector: &'a Connector<'a>,
    hub: Option<String>,
    state: State<'a>,
    failures: u32,
}

impl<'a> Standby<'a> {
    /// No standby yet.
    pub fn new(connector: &'a Connector<'a>) -> Self {
        Self {
            connector,
            hub: None,
            state: State::Off,
            failures: 0,
        }
    }

    /// Keeps a standby link to `hub` from now on (`None`: none); a standby to another hub is
    /// closed.
    pub fn target(&mut self, hub: Option<&str>) {
        if self.hub.as_deref() == hub {
            return;
        }
        self.close();
        self.hub = hub.map(str::to_string);
        self.failures = 0;
        self.state = match hub {
            Some(_) => State::Waiting(Box::pin(tokio::time::sleep(Duration::ZERO))),
            None => State::Off,
        };
    }

    /// The standby session, if it is welcomed and linked to `hub`.
    pub fn take(&mut self, hub: &str) -> Option<Session> {
        if self.hub.as_deref() != Some(hub) {
            return None;
        }
        match std::mem::replace(&mut self.state, State::Off) {
            State::Ready(session, _) if session.connection.close_reason().is_none() => {
                self.hub = None;
                Some(*session)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// How long the standby link has been silent as of `now`, if it is ready: its hub answers the
    /// keep-alive pings the edge sends after a short silence, so a live one is never silent
    /// long. Call it at every liveness check: it also records what arrived since the last call.
    pub fn silence(&mut self, now: Instant) -> Option<Duration> {
        match &mut self.state {
            State::Ready(session, heard) if session.connection.close_reason().is_none() => {
                heard.update(now, session.received());
                Some(heard.silence(now))
            }
            _ => None,
        }
    }

    /// Closes the standby connection, if there is one.
    pub fn close(&mut self) {
        if let State::Ready(session, _) = std::mem::replace(&mut self.state, State::Off) {
            session
                .connection
                .close(CLOSE_SHUTDOWN.into(), b"standby no longer needed");
        }
        self.hub = None;
    }

    /// Makes and keeps the standby link; never returns. Cancel-safe: an attempt in progress is
    /// kept in `self` and continues at the next call.
    pub async fn drive(&mut self) -> Infallible {
        loop {
            let Some(hub) = self.hub.clone() else {
                return std::future::pending().await;
            };
            match &mut self.state {
                State::Off => return std::future::pending().await,
                State::Waiting(pause) => {
                    pause.await;
                    let connector = self.connector;
                    self.state =
                        State::Connecting(Box::pin(async move { connector.establish(&hub).await }));
                }
                State::Connecting(connecting) => {
                    let outcome = connecting.await;
                    self.state = match outcome {
                        Ok(session) => {
                            self.failures = 0;
                            tracing::debug!(message = "Standby link ready.", hub = %hub, hub_id = %session.hub_id);
                            let heard = Heard::new(Instant::now(), session.received());
                            State::Ready(Box::new(session), heard)
                        }
                        Err(error) => {
                            tracing::debug!(message = "Cannot make the standby link.", hub = %hub, %error);
                            self.retry_later()
                        }
                    };
                }
                State::Ready(session, _) => {
                    let error = session.connection.closed().await;
                    tracing::debug!(message = "Standby link lost.", hub = %hub, %error);
                    self.state = self.retry_later();
                }
            }
        }
    }

    fn retry_later(&mut self) -> State<'a> {
        self.failures = self.failures.saturating_add(1);
        let pause = backoff(
            self.failures,
            self.connector.task().config.max_backoff,
            fastrand::f64(),
        );
        State::Waiting(Box::pin(tokio::time::sleep(pause)))
    }
}
