//! The Pusher HTTP API that Laravel's broadcaster and the server SDKs call, plus `/up` and
//! `/stats`. Thin handlers over the region's [`Store`]; one error type ([`ApiError`]); tower layers for
//! the body limit, the request timeout and tracing.
//!
//! # Layout
//! - [`signed`] — the signature-checking extractor.
//! - [`events`] — triggers and batch triggers.
//! - [`channels`] — channel queries.
//! - [`users`] — terminating a user's connections.
//! - [`info`] — the `info` attribute list.
//! - [`rate`] — requests per app per second.
//! - [`error`] — the error type and its HTTP mapping.

mod channels;
mod error;
mod events;
mod info;
mod rate;
mod signed;
mod users;

use std::sync::Arc;
use std::time::Duration;

use crate::apps::Apps;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_shared::admin::AdminAccess;
use herald_shared::ids::HubId;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use rate::ApiRates;

use crate::console::ConsoleFeed;
use crate::metrics::{self as hub_metrics, PROMETHEUS_TEXT, Render};
use crate::region::{Health, Store};
use crate::registry::Registry;
use crate::stats::HubStats;

/// HTTP limits.
#[derive(Debug, Clone, Copy)]
pub struct ApiSettings {
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// This hub.
    pub hub_id: HubId,
    /// The apps.
    pub apps: Apps,
    /// Where events go and queries are answered.
    pub store: Arc<dyn Store>,
    /// This hub's own channels (what its edges subscribe to).
    pub registry: Registry,
    /// Counters.
    pub stats: Arc<HubStats>,
    /// Cancelled when the hub drains.
    pub draining: CancellationToken,
    /// Renders `/metrics`.
    pub metrics: Render,
    /// Who may read `/stats` and `/metrics`.
    pub access: Arc<AdminAccess>,
    /// What the debug console shows live.
    pub console: ConsoleFeed,
    /// Requests per app per second.
    pub rates: Arc<ApiRates>,
}

/// The hub's HTTP routes with their layers.
pub fn router(state: ApiState, settings: ApiSettings) -> Router {
    Router::new()
        .route("/apps/{app_id}/events", post(events::trigger))
        .route("/apps/{app_id}/batch_events", post(events::batch))
        .route("/apps/{app_id}/channels", get(channels::list))
        .route(
            "/apps/{app_id}/channels/{channel_name}",
            get(channels::show),
        )
        .route(
            "/apps/{app_id}/channels/{channel_name}/users",
            get(channels::users),
        )
        .route(
            "/apps/{app_id}/users/{user_id}/terminate_connections",
            post(users::terminate),
        )
        // The Python SDK (pusher 3.3) posts here without the /apps/{id} prefix; the app is
        // the one whose key signed the request.
        .route(
            "/users/{user_id}/terminate_connections",
            post(users::terminate),
        )
        .route("/up", get(up))
        .merge(
            Router::new()
                .route("/stats", get(stats))
                .route("/metrics", get(metrics))
                .route_layer(middleware::from_fn_with_state(
                    state.access.clone(),
                    admin_only,
                )),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(crate::metrics::track))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `/stats` and `/metrics` answer only whom [`AdminAccess`] admits (the admin token beyond
/// loopback).
async fn admin_only(
    State(access): State<Arc<AdminAccess>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let authorization = request.headers().get(header::AUTHORIZATION);
    access.check(authorization.map(|value| value.as_bytes()))?;
    Ok(next.run(request).await)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

/// `/up`: 200 while serving; 503 once draining, or while a clustered hub does not hear Redis
/// (a deaf hub must leave the load balancer). An unreachable app store keeps it 200 (the apps
/// read last serve) and says so in the body.
async fn up(State(state): State<ApiState>) -> Response {
    let reason = if state.draining.is_cancelled() {
        Some("draining")
    } else if !state.store.health().ready() {
        Some("not connected to Redis")
    } else {
        None
    };
    match reason {
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"health": "unavailable", "reason": reason})),
        )
            .into_response(),
        None => match state.apps.store().and_then(|store| store.problem()) {
            Some(problem) => Json(json!({
                "health": "OK",
                "app_store": "unreachable: serving the apps read last",
                "app_store_error": problem,
            }))
            .into_response(),
            None => Json(json!({"health": "OK"})).into_response(),
        },
    }
}

/// `/metrics`: the process's metrics in the Prometheus text format, with the gauges of state
/// other tasks own read now.
async fn metrics(State(state): State<ApiState>) -> Response {
    for app in state.apps.current().apps() {
        // A stopped registry means the hub is stopping; the gauge keeps its last value.
        if let Ok(channels) = state.registry.channels(app.id.clone()).await {
            hub_metrics::channels(&app.id, channels);
        }
    }
    match state.store.health() {
        Health::Alone => {}
        health => hub_metrics::redis_up(health == Health::Connected),
    }
    hub_metrics::draining(state.draining.is_cancelled());
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], (state.metrics)()).into_response()
}

async fn stats(State(state): State<ApiState>) -> Response {
    Json(json!({
        "role": "hub",
        "hub_id": state.hub_id.to_string(),
        "draining": state.draining.is_cancelled(),
        "redis": match state.store.health() {
            Health::Alone => "none",
            Health::Connected => "connected",
            Health::Disconnected => "disconnected",
        },
        "counters": &*state.stats,
        "app_store": state.apps.store().map(|store| json!({
            "reachable": store.reachable.load(std::sync::atomic::Ordering::Relaxed),
            "refreshes": store.refreshes.load(std::sync::atomic::Ordering::Relaxed),
            "failures": store.failures.load(std::sync::atomic::Ordering::Relaxed),
            "apps": store.apps.load(std::sync::atomic::Ordering::Relaxed),
            "bad_rows": store.bad_rows.load(std::sync::atomic::Ordering::Relaxed),
            "error": store.problem(),
        })),
    }))
    .into_response()
}
