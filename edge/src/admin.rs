//! The edge's admin HTTP port: `/up` for load balancers, `/stats` for people, `/metrics` for
//! Prometheus.
//!
//! `/up` tells the truth: 200 only while the edge is linked to a hub, not draining and not at
//! its connection cap; otherwise 503, so a deaf, departing or full edge leaves the load
//! balancer. It is plain HTTP on its
//! own port because ALB health checks cannot speak WebSocket. `/stats` and `/metrics` answer
//! only whom [`AdminAccess`] admits (the admin token beyond loopback); `/up` answers everyone.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use herald_shared::admin::{AdminAccess, AdminRefusal};
use herald_shared::ids::EdgeId;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::index::IndexHandle;
use crate::link::{LinkFailure, LinkState};
use crate::metrics::{PROMETHEUS_TEXT, Render};
use crate::quota::Quotas;
use crate::stats::EdgeStats;

/// What the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// This edge's id.
    pub edge_id: EdgeId,
    /// The link state.
    pub link: watch::Receiver<LinkState>,
    /// Why the link last ended or could not be made.
    pub link_failure: watch::Receiver<Option<Arc<LinkFailure>>>,
    /// Cancelled once the edge drains.
    pub drain: CancellationToken,
    /// Counters.
    pub stats: Arc<EdgeStats>,
    /// For channel and subscription counts.
    pub index: IndexHandle,
    /// Renders `/metrics`.
    pub metrics: Render,
    /// Who may read `/stats` and `/metrics`.
    pub access: Arc<AdminAccess>,
    /// The connection cap `/up` reports on.
    pub quotas: Arc<Quotas>,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    let guarded = Router::new()
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.access.clone(), guard));
    Router::new()
        .route("/up", get(up))
        .merge(guarded)
        .with_state(state)
}

/// Lets through only requests [`AdminAccess`] admits.
async fn guard(State(access): State<Arc<AdminAccess>>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION);
    match access.check(authorization.map(|value| value.as_bytes())) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            let status = match refusal {
                AdminRefusal::NotConfigured => StatusCode::FORBIDDEN,
                AdminRefusal::Missing | AdminRefusal::Wrong => StatusCode::UNAUTHORIZED,
            };
            let body = Json(json!({"error": refusal.to_string()}));
            (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        }
    }
}

async fn up(State(state): State<AdminState>) -> Response {
    let link = *state.link.borrow();
    if state.drain.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"health": "unavailable", "reason": "draining"})),
        )
            .into_response();
    }
    match link {
        // Full: the load balancer should send new clients elsewhere (they would get 4100).
        LinkState::Up(_) if state.quotas.full() => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"health": "unavailable", "reason": "full"})),
        )
            .into_response(),
        LinkState::Up(_) => Json(json!({"health": "OK"})).into_response(),
        LinkState::Down => {
            let mut body = json!({"health": "unavailable", "reason": "no hub link"});
            // Why, so an operator sees a certificate the edge cannot verify without its logs.
            if let Some(failure) = state.link_failure.borrow().as_ref() {
                body["link_error"] = json!(failure.to_string());
            }
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// `/metrics`: the process's metrics in the Prometheus text format.
async fn metrics(State(state): State<AdminState>) -> Response {
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], (state.metrics)()).into_response()
}

async fn stats(State(state): State<AdminState>) -> Response {
    let (channels, subscriptions) = state.index.count().await;
    let link = match *state.link.borrow() {
        LinkState::Up(hub) => json!({"state": "up", "hub_id": hub.to_string()}),
        LinkState::Down => json!({
            "state": "down",
            "error": state.link_failure.borrow().as_ref().map(|failure| failure.to_string()),
        }),
    };
    let counters = state.stats.snapshot();
    Json(json!({
        "role": "edge",
        // Top-level, for the deployment's connection-count scaling metric.
        "connections": counters.connections,
        "edge_id": state.edge_id.to_string(),
        "draining": state.drain.is_cancelled(),
        "link": link,
        "channels": channels,
        "subscriptions": subscriptions,
        "counters": counters,
        // Per app: this edge's connections, and the region's as its hub last reported them.
        "apps": state.quotas.snapshot().into_iter().map(|(app, edge, region)| {
            (app.to_string(), json!({"connections": edge, "region_connections": region}))
        }).collect::<serde_json::Map<_, _>>(),
    }))
    .into_response()
}
