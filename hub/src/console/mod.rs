//! The live debug console on the hub's HTTP port: `GET /console`, one page served from the
//! binary (no build step, no CDN), that shows an app's connections per edge, occupied channels
//! with subscriber counts and presence members, and a live event log, and triggers test events.
//!
//! Sign-in: the app's key and secret (or `hub.console_token` with an app id) are checked once
//! and exchanged for a random session token in an `HttpOnly`, `SameSite=Strict` cookie scoped to
//! `/console`. Without it every console route answers 401 (the page itself with its sign-in
//! form). No response ever contains an app secret.
//!
//! # Layout
//! - [`feed`] — the live events and each edge's connections, written by the link sessions and
//!   the API.
//! - `page.html` — the page.

pub mod feed;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::apps::Apps;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use herald_shared::app::App;
use herald_shared::channel::{ChannelKey, ChannelKind, ChannelName, ChannelNameError};
use herald_shared::event::{EventData, EventName, EventNameError};
use herald_shared::ids::{AppId, EdgeId, HubId};
use herald_shared::secret::Secret;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

pub use feed::{ConsoleEvent, ConsoleFeed};

use crate::connections::Connections;
use crate::region::RegionError;
use crate::region::{Publication, Relayed, Store};

/// The page.
const PAGE: &str = include_str!("page.html");
/// The session cookie.
const COOKIE: &str = "herald_console";
/// How long a sign-in lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Most sessions held; the oldest go first.
const MAX_SESSIONS: usize = 1024;

/// The console's shared state: the feed, the sign-ins, and the optional console token.
#[derive(Debug, Clone, Default)]
pub struct Console {
    /// Live events and edge connections.
    pub feed: ConsoleFeed,
    sessions: Arc<Mutex<HashMap<String, (AppId, Instant)>>>,
    token: Option<Secret>,
}

impl Console {
    /// A console with the feed `feed` that also accepts `token` (with an app id) as a sign-in.
    pub fn new(token: Option<Secret>, feed: ConsoleFeed) -> Self {
        Self {
            token,
            feed,
            ..Self::default()
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, (AppId, Instant)>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_session(&self, app: AppId) -> Result<String, ConsoleError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| ConsoleError::NoRandomness)?;
        let token = hex::encode(bytes);
        let now = Instant::now();
        let mut sessions = self.sessions();
        sessions.retain(|_, (_, expires)| *expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(token, _)| token.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), (app, now + SESSION_LIFETIME));
        Ok(token)
    }

    fn session(&self, headers: &HeaderMap) -> Option<AppId> {
        let token = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
        let sessions = self.sessions();
        let (app, expires) = sessions.get(token)?;
        (*expires > Instant::now()).then(|| app.clone())
    }
}

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No valid session cookie.
    #[error("Sign in to the console first")]
    NotSignedIn,
    /// The key, secret or token is wrong.
    #[error("Wrong app key and secret, or wrong console token and app id")]
    BadCredentials,
    /// The OS gave no randomness for a session token.
    #[error("Cannot make a session token: no randomness from the OS")]
    NoRandomness,
    /// The request body is not the expected JSON.
    #[error("Invalid request body: {0}")]
    Form(#[from] serde_json::Error),
    /// The channel name is invalid.
    #[error("Invalid channel name: {0}")]
    Channel(#[from] ChannelNameError),
    /// The event name is invalid.
    #[error("Invalid event name: {0}")]
    Event(#[from] EventNameError),
    /// The region cannot answer now.
    #[error("Unavailable, retry: {0}")]
    Unavailable(#[from] RegionError),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::NotSignedIn | Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::Form(_) | Self::Channel(_) | Self::Event(_) => StatusCode::BAD_REQUEST,
            Self::NoRandomness => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

/// What the console's handlers read.
#[derive(Clone)]
pub struct ConsoleState {
    /// This hub.
    pub hub_id: HubId,
    /// The apps one signs in to.
    pub apps: Apps,
    /// Channels, counts and members (the region's), and where test events are published.
    pub store: Arc<dyn Store>,
    /// Cancelled when the hub drains: event streams end.
    pub draining: CancellationToken,
    /// The region's edges and their connections.
    pub connections: Arc<Connections>,
    /// The feed and the sign-ins.
    pub console: Console,
}

/// The console's routes, under `/console`.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/console", get(page))
        .route("/console/session", post(sign_in))
        .route("/console/api/state", get(snapshot))
        .route("/console/api/events", get(events))
        .route("/console/api/trigger", post(trigger))
        .with_state(state)
}

/// The page: 200 once signed in, else 401 with the same page (its sign-in form).
async fn page(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let status = match state.console.session(&headers) {
        Some(_) => StatusCode::OK,
        None => StatusCode::UNAUTHORIZED,
    };
    let headers = [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ),
    ];
    (status, headers, Html(PAGE)).into_response()
}

/// A sign-in: an app's key and secret, or the console token and an app id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    key: Option<String>,
    secret: Option<String>,
    token: Option<String>,
    app_id: Option<String>,
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn signed_in_app(state: &ConsoleState, form: &SignIn) -> Option<Arc<App>> {
    match form {
        SignIn {
            key: Some(key),
            secret: Some(secret),
            ..
        } => state
            .apps
            .by_key(key)
            .filter(|app| same(app.secret.expose(), secret)),
        SignIn {
            token: Some(token),
            app_id,
            ..
        } => {
            let expected = state.console.token.as_ref()?;
            if !same(expected.expose(), token) {
                return None;
            }
            match app_id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => state.apps.by_id(id),
                None => state
                    .apps
                    .current()
                    .apps()
                    .next()
                    .map(|app| Arc::new(app.clone())),
            }
        }
        _ => None,
    }
}

async fn sign_in(State(state): State<ConsoleState>, body: Bytes) -> Result<Response, ConsoleError> {
    let form: SignIn = serde_json::from_slice(&body)?;
    let app = signed_in_app(&state, &form).ok_or(ConsoleError::BadCredentials)?;
    let token = state.console.open_session(app.id.clone())?;
    let cookie = format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({"app_id": app.id, "key": app.key.as_str()})),
    )
        .into_response())
}

fn signed_in(state: &ConsoleState, headers: &HeaderMap) -> Result<Arc<App>, ConsoleError> {
    let app = state
        .console
        .session(headers)
        .ok_or(ConsoleError::NotSignedIn)?;
    // An app removed from the configuration no longer has a console.
    state
        .apps
        .by_id(app.as_str())
        .ok_or(ConsoleError::NotSignedIn)
}

/// Edges with their connections, occupied channels with counts, presence members.
async fn snapshot(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let app = signed_in(&state, &headers)?;
    // Every edge of the region as the region last read it (at most a second old); this hub's
    // edges as they report (at once). An edge linked here that never reported is either
    // without connections or an idle standby link of an edge another hub serves.
    let mut edges: Vec<(EdgeId, HubId, u32)> = state
        .connections
        .region()
        .iter()
        .map(|load| (load.edge, load.hub, load.of(&app.id)))
        .collect();
    for (edge, reported) in state.console.feed.connections(&app.id) {
        let known = edges.iter().position(|(e, ..)| *e == edge);
        match (reported, known) {
            (Some(count), Some(index)) => edges[index] = (edge, state.hub_id, count),
            (Some(count), None) => edges.push((edge, state.hub_id, count)),
            (None, Some(_)) => {}
            (None, None) => edges.push((edge, state.hub_id, 0)),
        }
    }
    edges.sort_by_key(|(edge, hub, _)| (*hub != state.hub_id, *hub, *edge));
    let edges: Vec<_> = edges
        .into_iter()
        .map(|(edge, hub, connections)| {
            json!({"edge_id": edge.to_string(), "hub_id": hub.to_string(), "connections": connections})
        })
        .collect();
    let mut channels = Vec::new();
    for (name, counts) in state.store.list(app.id.clone(), String::new()).await? {
        let members = if name.kind() == ChannelKind::Presence {
            state
                .store
                .users(ChannelKey::new(app.id.clone(), name.clone()))
                .await?
        } else {
            Vec::new()
        };
        channels.push(json!({
            "name": name.as_str(),
            "subscription_count": counts.subscription_count,
            "user_count": counts.user_count,
            "members": members,
        }));
    }
    Ok(Json(json!({
        "app": {"id": app.id, "key": app.key.as_str()},
        "hub_id": state.hub_id.to_string(),
        "edges": edges,
        "channels": channels,
    }))
    .into_response())
}

/// The app's live events on every hub of the region, as server-sent events (one JSON object
/// each, with the `hub_id` it happened on). The stream ends when the browser goes or the hub
/// drains; it watches the app in the region (other hubs send its events) while it is open.
async fn events(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ConsoleError> {
    let app = signed_in(&state, &headers)?.id.clone();
    let local = state.console.feed.subscribe();
    // Watching before answering: once the browser sees the stream open, other hubs send.
    let watching = state.console.feed.relay().watch(app.clone()).await;
    let stream = LiveEvents {
        local,
        remote: watching.events,
        _guard: watching.guard,
        feed: state.console.feed.clone(),
        app,
        stop: state.draining.clone(),
    };
    let stream = futures_util::stream::unfold(stream, |mut stream| async move {
        let payload = stream.next().await?;
        Some((Ok(SseEvent::default().data(payload)), stream))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One console's event stream: this hub's events and other hubs' relayed ones.
struct LiveEvents {
    local: broadcast::Receiver<ConsoleEvent>,
    remote: Option<broadcast::Receiver<Relayed>>,
    _guard: Option<Box<dyn Send + Sync>>,
    feed: ConsoleFeed,
    app: AppId,
    stop: CancellationToken,
}

impl LiveEvents {
    /// The next payload, or `None` once the stream ends.
    async fn next(&mut self) -> Option<String> {
        loop {
            let remote = async {
                match self.remote.as_mut() {
                    Some(remote) => remote.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.stop.cancelled() => return None,
                received = self.local.recv() => match received {
                    Ok(event) if *event.app_id() == self.app => return Some(self.feed.render(&event)),
                    Ok(_) => {}
                    Err(RecvError::Lagged(skipped)) => return Some(skipped_json(skipped)),
                    Err(RecvError::Closed) => return None,
                },
                received = remote => match received {
                    Ok(relayed) => return Some(relayed.json),
                    Err(RecvError::Lagged(skipped)) => return Some(skipped_json(skipped)),
                    // The region's relay stopped (the hub stops): this hub's events go on.
                    Err(RecvError::Closed) => self.remote = None,
                },
            }
        }
    }
}

fn skipped_json(skipped: u64) -> String {
    json!({"type": "skipped", "events": skipped}).to_string()
}

/// The test-event form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEvent {
    channel: String,
    event: String,
    data: String,
}

async fn trigger(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    // Signed in first: a stranger learns nothing, not even whether the body was well formed.
    let app = signed_in(&state, &headers)?;
    let form: TestEvent = serde_json::from_slice(&body)?;
    let channel = ChannelName::parse(&form.channel)?;
    let name = EventName::parse(&form.event)?;
    let publication = Publication {
        key: ChannelKey::new(app.id.clone(), channel.clone()),
        name,
        data: EventData::from_string(&form.data),
        exclude: None,
        user_id: None,
    };
    state.store.publish(publication).await?;
    crate::metrics::published(&app.id);
    state.console.feed.publish(ConsoleEvent::Trigger {
        app_id: app.id.clone(),
        channel: channel.as_str().to_string(),
        event: form.event,
    });
    Ok(Json(json!({})).into_response())
}
