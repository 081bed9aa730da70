//! Every metric the hub exports, declared once: names, help texts, and the one-line calls the
//! rest of the crate makes. docs/metrics.md lists them for operators.
//!
//! The hub records through the `metrics` facade; the process (`herald`) installs the Prometheus
//! recorder and hands the hub a [`Render`] for `GET /metrics`. Without a recorder (unit tests)
//! every call is a no-op. Gauges that describe state the registry owns (channels per app, the
//! Redis connection) are read when `/metrics` is scraped rather than updated on every change.
//!
//! Labels stay bounded: `app_id`, `route` (the route's pattern, never the path), `status` —
//! never a channel, socket or user.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use herald_shared::ids::AppId;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Renders the process's metrics in the Prometheus text format.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// HTTP requests answered, by route and status.
pub const HTTP_REQUESTS: &str = "herald_hub_http_requests_total";
/// How long HTTP requests took, by route.
pub const HTTP_REQUEST_SECONDS: &str = "herald_hub_http_request_seconds";
/// Events published (one per channel of a trigger), by app.
pub const EVENTS_PUBLISHED: &str = "herald_hub_events_published_total";
/// Edges linked to this hub and relaying through it.
pub const EDGES: &str = "herald_hub_edges";
/// Standby links of edges relaying through another hub.
pub const STANDBY_LINKS: &str = "herald_hub_standby_links";
/// Channels some edge of this hub subscribes to, by app.
pub const CHANNELS: &str = "herald_hub_channels";
/// 1 while a hub of a region hears Redis.
pub const REDIS_UP: &str = "herald_hub_redis_up";
/// How long Redis commands and pipelines took.
pub const REDIS_COMMAND_SECONDS: &str = "herald_hub_redis_command_seconds";
/// Backfills served to edges from history.
pub const HISTORY_BACKFILLS: &str = "herald_hub_history_backfills_total";
/// Client resumes (`docs/resume.md`) edges asked history for.
pub const HISTORY_REPLAYS: &str = "herald_hub_history_replays_total";
/// 1 while the hub drains.
pub const DRAINING: &str = "herald_hub_draining";
/// Webhook events delivered (2xx), by app.
pub const WEBHOOKS_SENT: &str = "herald_hub_webhooks_sent_total";
/// Webhook requests sent again after a failure, by app.
pub const WEBHOOKS_RETRIED: &str = "herald_hub_webhooks_retried_total";
/// Webhook events dropped after the retry window, by app.
pub const WEBHOOKS_FAILED: &str = "herald_hub_webhooks_failed_total";
/// Webhook events dropped because a queue was full, by app.
pub const WEBHOOKS_DROPPED: &str = "herald_hub_webhooks_dropped_total";
/// Webhook events waiting for delivery, by app.
pub const WEBHOOKS_PENDING: &str = "herald_hub_webhooks_pending";
/// App store refreshes, by result.
pub const APP_STORE_REFRESHES: &str = "herald_hub_app_store_refreshes_total";
/// Console events that could not be sent to the region's consoles.
pub const CONSOLE_DROPPED: &str = "herald_hub_console_events_dropped_total";
/// Sharded pub/sub channels subscribed again after a slot move, failover or lost connection.
pub const REDIS_SHARD_REHOMES: &str = "herald_hub_redis_shard_rehomes_total";

/// The `route` of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// Describes every metric (help text and unit) and registers those without labels at zero, so
/// dashboards and alerts see them before anything happened; called once by the process.
pub fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route and status."
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "How long HTTP requests took, by route."
    );
    describe_counter!(
        EVENTS_PUBLISHED,
        "Events published through the HTTP API (one per channel of a trigger), by app."
    );
    describe_gauge!(
        EDGES,
        "Edges linked to this hub and relaying through it (standby links not counted)."
    );
    describe_gauge!(
        STANDBY_LINKS,
        "Standby links to this hub of edges relaying through another hub."
    );
    describe_gauge!(
        CHANNELS,
        "Channels some edge of this hub subscribes to, by app."
    );
    describe_gauge!(
        REDIS_UP,
        "1 while the hub hears its region's Redis, 0 when it does not (absent for a hub alone)."
    );
    describe_histogram!(
        REDIS_COMMAND_SECONDS,
        Unit::Seconds,
        "How long Redis commands and pipelines took."
    );
    describe_counter!(
        HISTORY_BACKFILLS,
        "Backfills edges asked for after a sequence gap."
    );
    describe_counter!(HISTORY_REPLAYS, "Client resumes edges asked history for.");
    describe_gauge!(DRAINING, "1 while the hub drains.");
    describe_counter!(
        WEBHOOKS_SENT,
        "Webhook events delivered (the endpoint answered 2xx), by app."
    );
    describe_counter!(
        WEBHOOKS_RETRIED,
        "Webhook requests sent again after a failure, by app."
    );
    describe_counter!(
        WEBHOOKS_FAILED,
        "Webhook events dropped after failing for the whole retry window, by app."
    );
    describe_counter!(
        WEBHOOKS_DROPPED,
        "Webhook events dropped because a queue was full, by app."
    );
    describe_gauge!(
        WEBHOOKS_PENDING,
        "Webhook events waiting for delivery, by app (in a region: the region's queues, on the delivering hub)."
    );
    describe_counter!(
        APP_STORE_REFRESHES,
        "Reads of the app store (app_store.url), by result: ok, or failed (the cached apps keep serving)."
    );
    describe_counter!(
        CONSOLE_DROPPED,
        "Debug-console events a hub of a region could not send to the region's consoles (queue full or Redis unreachable)."
    );
    describe_counter!(
        REDIS_SHARD_REHOMES,
        "Channels a hub on a Redis Cluster subscribed again (SSUBSCRIBE) after a slot move, a failover or a lost node connection; each is back-filled from history."
    );
    counter!(HISTORY_BACKFILLS).increment(0);
    counter!(HISTORY_REPLAYS).increment(0);
    gauge!(EDGES).increment(0.0);
    gauge!(STANDBY_LINKS).increment(0.0);
    gauge!(DRAINING).set(0.0);
}

/// An event was published on one channel of `app_id`.
pub fn published(app_id: &AppId) {
    counter!(EVENTS_PUBLISHED, "app_id" => app_id.as_str().to_string()).increment(1);
}

/// An edge's link came (`1.0`) or went (`-1.0`): a relaying edge or a standby link.
pub fn edge_linked(standby: bool, change: f64) {
    let name = if standby { STANDBY_LINKS } else { EDGES };
    gauge!(name).increment(change);
}

/// Registers an app's webhook metrics at zero (an app with endpoints), so alerts see them
/// before anything failed.
pub fn webhooks_registered(app_id: &AppId) {
    for name in [
        WEBHOOKS_SENT,
        WEBHOOKS_RETRIED,
        WEBHOOKS_FAILED,
        WEBHOOKS_DROPPED,
    ] {
        counter!(name, "app_id" => app_id.as_str().to_string()).increment(0);
    }
    gauge!(WEBHOOKS_PENDING, "app_id" => app_id.as_str().to_string()).increment(0.0);
}

/// What happened to `n` webhook events (or requests, for [`WEBHOOKS_RETRIED`]) of an app.
pub fn webhooks(name: &'static str, app_id: &AppId, n: u64) {
    counter!(name, "app_id" => app_id.as_str().to_string()).increment(n);
}

/// An app's webhook events waiting: changed by `delta`.
pub fn webhooks_pending_moved(app_id: &AppId, delta: f64) {
    gauge!(WEBHOOKS_PENDING, "app_id" => app_id.as_str().to_string()).increment(delta);
}

/// An app's webhook events waiting, as last counted.
pub fn webhooks_pending(app_id: &AppId, pending: u64) {
    gauge!(WEBHOOKS_PENDING, "app_id" => app_id.as_str().to_string()).set(pending as f64);
}

/// An edge asked for a backfill.
pub fn backfill() {
    counter!(HISTORY_BACKFILLS).increment(1);
}

/// An edge asked for a client's replay.
pub fn replay() {
    counter!(HISTORY_REPLAYS).increment(1);
}

/// `channels` sharded channels were subscribed again at their slot's owner.
pub fn shard_rehomes(channels: usize) {
    counter!(REDIS_SHARD_REHOMES).increment(channels as u64);
}

/// A console event could not be sent to the region's consoles.
pub fn console_dropped() {
    counter!(CONSOLE_DROPPED).increment(1);
}

/// The number of channels of `app_id` some edge subscribes to, read at scrape time.
pub fn channels(app_id: &AppId, count: usize) {
    gauge!(CHANNELS, "app_id" => app_id.as_str().to_string()).set(count as f64);
}

/// Whether a hub of a region hears Redis, read at scrape time.
pub fn redis_up(up: bool) {
    gauge!(REDIS_UP).set(if up { 1.0 } else { 0.0 });
}

/// The app store was read (`ok`) or could not be.
pub fn app_store_refresh(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!(APP_STORE_REFRESHES, "result" => result).increment(1);
}

/// Whether the hub drains, read at scrape time.
pub fn draining(draining: bool) {
    gauge!(DRAINING).set(if draining { 1.0 } else { 0.0 });
}

/// Counts and times every request by its route pattern (`/apps/{app_id}/events`), so paths
/// with channel names never become labels.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |path| path.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    histogram!(HTTP_REQUEST_SECONDS, "route" => route.clone()).record(started.elapsed());
    let status = response.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "route" => route, "status" => status).increment(1);
    response
}

/// A Redis connection whose every command and pipeline is timed into
/// [`REDIS_COMMAND_SECONDS`].
#[derive(Clone)]
pub struct TimedRedis<C>(pub C);

impl<C: ConnectionLike + Send> ConnectionLike for TimedRedis<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.0.req_packed_command(cmd).await;
            histogram!(REDIS_COMMAND_SECONDS).record(started.elapsed());
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.0.req_packed_commands(pipeline, offset, count).await;
            histogram!(REDIS_COMMAND_SECONDS).record(started.elapsed());
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}
