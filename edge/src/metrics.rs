//! Every metric the edge exports, declared once: names, help texts, and the one-line calls the
//! rest of the crate makes. docs/metrics.md lists them for operators.
//!
//! The edge records through the `metrics` facade; the process (`herald`) installs the
//! Prometheus recorder and hands the edge a [`Render`] for `GET /metrics`. Without a recorder
//! (unit tests) every call is a no-op.
//!
//! Labels stay bounded: `app_id`, `reason`, `kind`, `hub` (a configured hub address) — never a
//! channel, socket or user. Fan-out counts once per event per index shard (the number of
//! outboxes it filled), not once per socket, so the delivery loop pays one atomic add per event.
//!
//! The series a connection touches (opened, open, closed by the client, subscriptions, frames
//! received) are looked up in the recorder once per app and kept: registering a labelled series
//! builds and hashes its key, so doing it on every connect and subscribe was a good part of a
//! connect's cost. They are kept only once [`describe`] ran, which the process calls after
//! installing its recorder, so no handle of a missing recorder is kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use herald_shared::ids::AppId;
use herald_shared::protocol::Incoming;
use herald_shared::time::UnixTime;
use metrics::{
    Counter, Gauge, SharedString, Unit, counter, describe_counter, describe_gauge,
    describe_histogram, gauge,
};

/// Renders the process's metrics in the Prometheus text format.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Open client connections.
pub const CONNECTIONS: &str = "herald_edge_connections";
/// Connections admitted (after the upgrade and the app check).
pub const CONNECTIONS_OPENED: &str = "herald_edge_connections_opened_total";
/// Connections ended, by reason.
pub const CONNECTIONS_CLOSED: &str = "herald_edge_connections_closed_total";
/// Upgrades refused before a connection was admitted, by reason.
pub const CONNECTIONS_REFUSED: &str = "herald_edge_connections_refused_total";
/// Channel subscriptions held by local sockets.
pub const SUBSCRIPTIONS: &str = "herald_edge_subscriptions";
/// Event frames queued to client sockets by fan-out.
pub const MESSAGES_SENT: &str = "herald_edge_messages_sent_total";
/// Bytes of those frames.
pub const BYTES_SENT: &str = "herald_edge_bytes_sent_total";
/// Frames received from clients, by kind.
pub const MESSAGES_RECEIVED: &str = "herald_edge_messages_received_total";
/// 1 while the link to a hub is up.
pub const LINK_UP: &str = "herald_edge_link_up";
/// Links lost after they were established (the edge then links to the next hub).
pub const LINK_FAILOVERS: &str = "herald_edge_link_failovers_total";
/// Events history could no longer provide after a reconnect or gap.
pub const EVENTS_LOST: &str = "herald_edge_events_lost_total";
/// From the hub accepting an event to its frame being written to a client socket.
pub const DELIVERY_SECONDS: &str = "herald_edge_delivery_seconds";
/// 1 while the edge drains.
pub const DRAINING: &str = "herald_edge_draining";

/// The `reason` of a connection the client ended (closed, or the connection failed).
pub const CLOSED_BY_CLIENT: &str = "client";

/// The kinds of client frames [`MESSAGES_RECEIVED`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// `pusher:ping`.
    Ping,
    /// `pusher:pong`.
    Pong,
    /// `pusher:subscribe`.
    Subscribe,
    /// `pusher:unsubscribe`.
    Unsubscribe,
    /// `pusher:signin`.
    Signin,
    /// A `client-*` event.
    ClientEvent,
    /// Anything not understood (answered with `pusher:error`).
    Invalid,
}

impl Received {
    /// The kind of a parsed client frame.
    pub fn of(incoming: &Incoming) -> Self {
        match incoming {
            Incoming::Ping => Self::Ping,
            Incoming::Pong => Self::Pong,
            Incoming::Subscribe(_) => Self::Subscribe,
            Incoming::Unsubscribe { .. } => Self::Unsubscribe,
            Incoming::Signin { .. } => Self::Signin,
            Incoming::ClientEvent { .. } => Self::ClientEvent,
        }
    }

    /// Its place in [`Series::received`]: 0 to 6, in the order the kinds are declared.
    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Pong => "pong",
            Self::Subscribe => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::Signin => "signin",
            Self::ClientEvent => "client_event",
            Self::Invalid => "invalid",
        }
    }
}

/// Describes every metric (help text and unit) and registers those without labels at zero, so
/// dashboards and alerts see them before anything happened; called once by the process.
pub fn describe() {
    describe_gauge!(CONNECTIONS, "Open client connections.");
    describe_counter!(CONNECTIONS_OPENED, "Client connections admitted.");
    describe_counter!(
        CONNECTIONS_CLOSED,
        "Client connections ended, by reason (client, slow consumer, server draining, pong not received, …)."
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "WebSocket upgrades refused before admission, by reason (draining, not linked, or the Pusher close code)."
    );
    describe_gauge!(SUBSCRIPTIONS, "Channel subscriptions of local sockets.");
    describe_counter!(
        MESSAGES_SENT,
        "Event frames queued to client sockets by fan-out."
    );
    describe_counter!(
        BYTES_SENT,
        Unit::Bytes,
        "Bytes of event frames queued to client sockets."
    );
    describe_counter!(MESSAGES_RECEIVED, "Frames received from clients, by kind.");
    describe_gauge!(LINK_UP, "1 while the link to this hub is up, else 0.");
    describe_counter!(
        LINK_FAILOVERS,
        "Established hub links that were lost (the edge links to the next hub)."
    );
    describe_counter!(
        EVENTS_LOST,
        "Events the hub's history could no longer provide after a reconnect or gap."
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "From the hub accepting an event to its frame being written to a client socket (one socket sampled per event and index shard)."
    );
    describe_gauge!(DRAINING, "1 while the edge drains.");
    for name in [MESSAGES_SENT, BYTES_SENT, LINK_FAILOVERS, EVENTS_LOST] {
        counter!(name).increment(0);
    }
    gauge!(DRAINING).set(0.0);
    // Registered, so its series exist (at zero) before the first delivery.
    let _ = metrics::histogram!(DELIVERY_SECONDS);
    let _ = SERIES.set(Series {
        apps: Mutex::new(HashMap::new()),
        received: Default::default(),
    });
}

/// The series kept once [`describe`] ran (see the module's documentation).
static SERIES: OnceLock<Series> = OnceLock::new();

struct Series {
    /// Per app; apps are the configured ones, so this stays small.
    apps: Mutex<HashMap<AppId, AppSeries>>,
    /// Per kind, in the order of [`Received::index`], each registered when first used.
    received: [OnceLock<Counter>; 7],
}

/// An app's series that every connection touches, each registered when first used (so a series
/// appears when it first counts something, as it did when every call registered it).
#[derive(Default)]
struct AppSeries {
    opened: Option<Counter>,
    open: Option<Gauge>,
    closed_by_client: Option<Counter>,
    subscriptions: Option<Gauge>,
}

impl AppSeries {
    fn opened(&mut self, app_id: &AppId) -> &Counter {
        self.opened
            .get_or_insert_with(|| counter!(CONNECTIONS_OPENED, "app_id" => app(app_id)))
    }

    fn open(&mut self, app_id: &AppId) -> &Gauge {
        self.open
            .get_or_insert_with(|| gauge!(CONNECTIONS, "app_id" => app(app_id)))
    }

    fn closed_by_client(&mut self, app_id: &AppId) -> &Counter {
        self.closed_by_client
            .get_or_insert_with(|| register_closed(app_id, CLOSED_BY_CLIENT))
    }

    fn subscriptions(&mut self, app_id: &AppId) -> &Gauge {
        self.subscriptions
            .get_or_insert_with(|| gauge!(SUBSCRIPTIONS, "app_id" => app(app_id)))
    }
}

/// Runs `record` on the app's series: kept ones once [`describe`] ran, else registered now.
fn with_app(app_id: &AppId, record: impl FnOnce(&mut AppSeries)) {
    match SERIES.get() {
        Some(series) => {
            // Handles are plain values; a panic elsewhere cannot leave them half-written.
            let mut apps = series.apps.lock().unwrap_or_else(|p| p.into_inner());
            match apps.get_mut(app_id) {
                Some(app) => record(app),
                None => record(apps.entry(app_id.clone()).or_default()),
            }
        }
        None => record(&mut AppSeries::default()),
    }
}

fn app(app: &AppId) -> String {
    app.as_str().to_string()
}

fn register_closed(app_id: &AppId, reason: &'static str) -> Counter {
    counter!(CONNECTIONS_CLOSED, "app_id" => app(app_id), "reason" => reason)
}

fn register_received(kind: Received) -> Counter {
    counter!(MESSAGES_RECEIVED, "kind" => kind.label())
}

/// A connection was admitted.
pub fn connection_opened(app_id: &AppId) {
    with_app(app_id, |app| {
        app.opened(app_id).increment(1);
        app.open(app_id).increment(1.0);
    });
}

/// A connection ended for `reason`.
pub fn connection_closed(app_id: &AppId, reason: &'static str) {
    if reason != CLOSED_BY_CLIENT {
        register_closed(app_id, reason).increment(1);
    }
    with_app(app_id, |app| {
        if reason == CLOSED_BY_CLIENT {
            app.closed_by_client(app_id).increment(1);
        }
        app.open(app_id).decrement(1.0);
    });
}

/// An upgrade was refused before admission.
pub fn connection_refused(reason: impl Into<SharedString>) {
    counter!(CONNECTIONS_REFUSED, "reason" => reason.into()).increment(1);
}

/// Local subscriptions of an app changed by `delta`.
pub fn subscriptions(app_id: &AppId, delta: isize) {
    if delta != 0 {
        with_app(app_id, |app| {
            app.subscriptions(app_id).increment(delta as f64)
        });
    }
}

/// A client frame arrived.
pub fn received(kind: Received) {
    match SERIES.get() {
        Some(series) => series.received[kind.index()]
            .get_or_init(|| register_received(kind))
            .increment(1),
        None => register_received(kind).increment(1),
    }
}

/// The link to `hub` (its configured address) went up or down.
pub fn link(hub: &str, up: bool) {
    gauge!(LINK_UP, "hub" => hub.to_string()).set(if up { 1.0 } else { 0.0 });
}

/// An established link was lost.
pub fn link_failover() {
    counter!(LINK_FAILOVERS).increment(1);
}

/// History could not provide `count` events.
pub fn events_lost(count: u64) {
    counter!(EVENTS_LOST).increment(count);
}

/// The edge started draining.
pub fn draining() {
    gauge!(DRAINING).set(1.0);
}

/// The fan-out counters, registered once per index shard so a delivery only adds to them.
#[derive(Debug, Clone)]
pub struct Sent {
    messages: Counter,
    bytes: Counter,
}

impl Default for Sent {
    fn default() -> Self {
        Self {
            messages: counter!(MESSAGES_SENT),
            bytes: counter!(BYTES_SENT),
        }
    }
}

impl Sent {
    /// One event's frame of `frame_bytes` went to `sockets` outboxes.
    pub fn add(&self, sockets: u64, frame_bytes: usize) {
        if sockets > 0 {
            self.messages.increment(sockets);
            self.bytes.increment(sockets * frame_bytes as u64);
        }
    }
}

/// A frame of an event the hub accepted at `accepted_micros` was written now. Unstamped events
/// (0) and clocks that disagree (a stamp in the future) are not observed.
pub fn delivered(accepted_micros: u64, now: SystemTime) {
    let now = UnixTime::from_system(now).as_micros();
    if accepted_micros > 0 && now >= accepted_micros {
        metrics::histogram!(DELIVERY_SECONDS)
            .record(Duration::from_micros(now - accepted_micros).as_secs_f64());
    }
}
