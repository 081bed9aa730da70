//! Pusher webhooks (R-OPS-7): `channel_occupied`/`channel_vacated`, `member_added`/
//! `member_removed`, `client_event`, `cache_miss` and the opt-in `subscription_count`, POSTed to
//! each app's endpoints exactly as Pusher sends them — batched, signed with the app secret,
//! retried with backoff — once per region, and not lost when a hub dies.
//!
//! The code that sees a cause calls [`Webhooks`] (`occupied`, `member_removed`, …). That never
//! waits: the event goes into a bounded queue of this hub's emitter task (full: dropped and
//! counted). The emitter applies the delay of removals ([`debounce`]) and queues each event for
//! every endpoint that wants it; each endpoint's queue is delivered by a
//! [`Courier`](delivery::Courier) task ([`delivery`]).
//!
//! A hub alone keeps queues and delays in memory ([`memory`]). In a region both live in Redis
//! and one hub at a time delivers ([`region`]): whichever hub saw a cause, the event is queued
//! once, and the courier that dies is replaced by another hub that delivers what it left.
//!
//! # Layout
//! - [`event`] — the events and their JSON, the request body.
//! - [`endpoint`] — a configured endpoint: URL, event types, channel filters, headers.
//! - [`debounce`] — the 3 s delay of removals, as a pure state machine.
//! - [`retry`] — backoff and the retry window, pure.
//! - [`sender`] — one signed HTTP request.
//! - [`delivery`] — batching and retrying one endpoint's queue.
//! - [`memory`] — queues and delays of a hub alone.
//! - [`region`] — queues, delays and the courier lease in Redis.
//! - [`stats`] — counters for `/stats`.
//!
//! # Invariants
//! - Emitting never awaits and never blocks the caller (shard, link session, HTTP handler).
//! - Every queue is bounded; an overflow drops the oldest event and counts it.
//! - An event leaves its queue only once delivered (2xx) or given up on after the retry window.
//! - Endpoints' URLs and headers are never logged (they may hold credentials), and never sent
//!   to edges.

pub mod debounce;
pub mod delivery;
pub mod endpoint;
pub mod event;
mod memory;
pub mod region;
pub mod retry;
pub mod sender;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::apps::Apps;
use herald_shared::channel::{ChannelKey, ChannelKind, ChannelName};
use herald_shared::event::{EventData, EventName};
use herald_shared::ids::{AppId, SocketId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use debounce::Delayed;
pub use delivery::{Batching, Target};
pub use endpoint::{Endpoint, EndpointError, EndpointId};
pub use event::{EventType, EventTypes, WebhookEvent};
pub use region::RedisSetup;
pub use retry::RetryPolicy;

use crate::stats::HubStats;
use delivery::Courier;
use memory::MemoryQueue;

/// Events waiting for this hub's emitter; more are dropped and counted.
const EMIT_QUEUE: usize = 65_536;
/// A channel's `cache_miss` is sent at most once this often, region-wide: Pusher "handles
/// de-duplication when multiple clients are subscribed to an empty channel".
pub const CACHE_MISS_ONCE_PER: Duration = Duration::from_secs(10);

/// How a hub sends webhooks. [`WebhookSettings::default`] has no endpoints and Pusher's timings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Every app's endpoints, in configuration order.
    pub endpoints: Vec<(AppId, Endpoint)>,
    /// Grouping into requests.
    pub batching: Batching,
    /// Timeouts and retries.
    pub retry: RetryPolicy,
    /// Most events queued per endpoint; beyond it the oldest are dropped.
    pub queue_max: usize,
    /// How long `channel_vacated` and `member_removed` wait.
    pub delay: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            batching: Batching::default(),
            retry: RetryPolicy::default(),
            queue_max: 10_000,
            delay: debounce::DELAY,
        }
    }
}

/// Why webhooks could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// An endpoint belongs to an app the hub does not serve.
    #[error("a webhook endpoint belongs to app {0:?}, which is not configured")]
    UnknownApp(String),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] sender::ClientError),
}

/// An event emitted for an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// The app.
    pub app: AppId,
    /// The event.
    pub event: WebhookEvent,
}

/// How an event relates to the delay of removals.
#[derive(Debug)]
enum Delay {
    /// A removal: wait, then send unless undone.
    Leave(Delayed),
    /// An arrival that undoes this removal if it still waits.
    Arrive(Delayed),
}

impl Emitted {
    fn delay(&self) -> Option<Delay> {
        let key = || ChannelKey::new(self.app.clone(), self.event.channel().clone());
        match &self.event {
            WebhookEvent::ChannelVacated { .. } => Some(Delay::Leave(Delayed::Vacated(key()))),
            WebhookEvent::ChannelOccupied { .. } => Some(Delay::Arrive(Delayed::Vacated(key()))),
            WebhookEvent::MemberRemoved { user_id, .. } => {
                Some(Delay::Leave(Delayed::Removed(key(), user_id.clone())))
            }
            WebhookEvent::MemberAdded { user_id, .. } => {
                Some(Delay::Arrive(Delayed::Removed(key(), user_id.clone())))
            }
            WebhookEvent::ClientEvent { .. }
            | WebhookEvent::CacheMiss { .. }
            | WebhookEvent::SubscriptionCount { .. } => None,
        }
    }
}

impl Emitted {
    /// The channel whose `cache_miss` this is (sent once per [`CACHE_MISS_ONCE_PER`]).
    fn once_per_channel(&self) -> Option<ChannelKey> {
        match &self.event {
            WebhookEvent::CacheMiss { channel } => {
                Some(ChannelKey::new(self.app.clone(), channel.clone()))
            }
            _ => None,
        }
    }
}

impl Delayed {
    /// The arrival that undoes this removal (`channel_occupied`, `member_added`).
    pub fn arrival(&self) -> Emitted {
        match self {
            Self::Vacated(key) => Emitted {
                app: key.app.clone(),
                event: WebhookEvent::ChannelOccupied {
                    channel: key.channel.clone(),
                },
            },
            Self::Removed(key, user_id) => Emitted {
                app: key.app.clone(),
                event: WebhookEvent::MemberAdded {
                    channel: key.channel.clone(),
                    user_id: user_id.clone(),
                },
            },
        }
    }

    /// The event sent when this removal is due.
    pub fn event(&self) -> Emitted {
        match self {
            Self::Vacated(key) => Emitted {
                app: key.app.clone(),
                event: WebhookEvent::ChannelVacated {
                    channel: key.channel.clone(),
                },
            },
            Self::Removed(key, user_id) => Emitted {
                app: key.app.clone(),
                event: WebhookEvent::MemberRemoved {
                    channel: key.channel.clone(),
                    user_id: user_id.clone(),
                },
            },
        }
    }
}

/// Which endpoints an event goes to, and its JSON.
#[derive(Debug)]
pub struct Plan {
    endpoints: Vec<usize>,
    json: Arc<str>,
}

/// Every endpoint with its app's credentials, by app.
#[derive(Debug, Default)]
pub struct Targets {
    targets: Vec<Arc<Target>>,
    by_app: HashMap<AppId, Vec<usize>>,
}

impl Targets {
    fn new(endpoints: Vec<(AppId, Endpoint)>, apps: &Apps) -> Result<Self, WebhookError> {
        let mut targets = Self::default();
        for (app_id, endpoint) in endpoints {
            let Some(app) = apps.by_id(app_id.as_str()) else {
                return Err(WebhookError::UnknownApp(app_id.to_string()));
            };
            targets
                .by_app
                .entry(app_id.clone())
                .or_default()
                .push(targets.targets.len());
            targets.targets.push(Arc::new(Target {
                id: endpoint.id(&app_id),
                app: app_id,
                key: app.key.clone(),
                secret: app.secret.clone(),
                apps: apps.clone(),
                endpoint,
            }));
        }
        Ok(targets)
    }

    fn endpoints(&self, app: &AppId) -> impl Iterator<Item = (usize, &Endpoint)> {
        self.by_app
            .get(app)
            .into_iter()
            .flatten()
            .map(|index| (*index, &self.targets[*index].endpoint))
    }

    /// Where an event goes; `None` when no endpoint wants it.
    pub fn plan(&self, emitted: &Emitted) -> Option<Plan> {
        let (kind, channel) = (emitted.event.kind(), emitted.event.channel());
        let endpoints: Vec<usize> = self
            .endpoints(&emitted.app)
            .filter(|(_, endpoint)| endpoint.wants(kind, channel))
            .map(|(index, _)| index)
            .collect();
        (!endpoints.is_empty()).then(|| Plan {
            endpoints,
            json: emitted.event.to_json().into(),
        })
    }

    /// Whether an event matters to any endpoint: it is wanted, or it is one half of a removal
    /// and its undoing whose other half is wanted (the delay needs both).
    fn interested(&self, emitted: &Emitted) -> bool {
        let kind = emitted.event.kind();
        let pair = match kind {
            EventType::ChannelOccupied => Some(EventType::ChannelVacated),
            EventType::ChannelVacated => Some(EventType::ChannelOccupied),
            EventType::MemberAdded => Some(EventType::MemberRemoved),
            EventType::MemberRemoved => Some(EventType::MemberAdded),
            EventType::ClientEvent | EventType::CacheMiss | EventType::SubscriptionCount => None,
        };
        let channel = emitted.event.channel();
        self.endpoints(&emitted.app).any(|(_, endpoint)| {
            endpoint.wants(kind, channel) || pair.is_some_and(|pair| endpoint.wants(pair, channel))
        })
    }

    /// How many endpoints there are.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    fn target(&self, index: usize) -> &Target {
        &self.targets[index]
    }

    fn target_arc(&self, index: usize) -> Arc<Target> {
        self.targets[index].clone()
    }
}

/// A cheap-to-clone handle that emits webhook events; every method returns at once.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    inner: Option<Arc<Emitter>>,
}

#[derive(Debug)]
struct Emitter {
    queue: mpsc::Sender<Emitted>,
    targets: Arc<Targets>,
    stats: Arc<HubStats>,
    delay: Duration,
}

impl Webhooks {
    /// Webhooks that send nothing (no endpoint configured).
    pub fn none() -> Self {
        Self::default()
    }

    /// Emits an event of an app's channel. User channels (`#server-to-user-…`) are Herald's
    /// plumbing for `pusher:signin`, not channels apps subscribe to: they send no webhooks.
    pub fn emit(&self, app: &AppId, event: WebhookEvent) {
        let Some(emitter) = &self.inner else {
            return;
        };
        let channel = event.channel();
        if channel.kind() == ChannelKind::ServerToUser
            || (event.kind() == EventType::SubscriptionCount
                && channel.kind() == ChannelKind::Presence)
        {
            return;
        }
        let emitted = Emitted {
            app: app.clone(),
            event,
        };
        if !emitter.targets.interested(&emitted) {
            return;
        }
        if emitter.queue.try_send(emitted).is_err() {
            emitter.stats.webhooks.count_dropped(app, 1);
            tracing::debug!(message = "Webhook emitter queue full; event dropped.", app_id = %app);
        }
    }

    /// A channel got its first subscriber in the region.
    pub fn occupied(&self, key: &ChannelKey) {
        let channel = key.channel.clone();
        self.emit(&key.app, WebhookEvent::ChannelOccupied { channel });
    }

    /// A channel lost its last subscriber in the region.
    pub fn vacated(&self, key: &ChannelKey) {
        let channel = key.channel.clone();
        self.emit(&key.app, WebhookEvent::ChannelVacated { channel });
    }

    /// A user's first socket joined a presence channel, region-wide.
    pub fn member_added(&self, key: &ChannelKey, user_id: &str) {
        let (channel, user_id) = (key.channel.clone(), user_id.to_string());
        self.emit(&key.app, WebhookEvent::MemberAdded { channel, user_id });
    }

    /// A user's last socket left a presence channel, region-wide.
    pub fn member_removed(&self, key: &ChannelKey, user_id: &str) {
        let (channel, user_id) = (key.channel.clone(), user_id.to_string());
        self.emit(&key.app, WebhookEvent::MemberRemoved { channel, user_id });
    }

    /// A client sent a `client-*` event.
    pub fn client_event(
        &self,
        key: &ChannelKey,
        event: &EventName,
        data: &EventData,
        socket_id: SocketId,
        user_id: Option<&str>,
    ) {
        self.emit(
            &key.app,
            WebhookEvent::ClientEvent {
                channel: key.channel.clone(),
                event: event.clone(),
                data: data.clone(),
                socket_id,
                user_id: user_id.map(str::to_string),
            },
        );
    }

    /// A client subscribed to a cache channel that had no cached event.
    pub fn cache_miss(&self, key: &ChannelKey) {
        let channel = key.channel.clone();
        self.emit(&key.app, WebhookEvent::CacheMiss { channel });
    }

    /// A channel's subscription count changed (presence channels send none).
    pub fn subscription_count(&self, key: &ChannelKey, subscription_count: u64) {
        let channel: ChannelName = key.channel.clone();
        self.emit(
            &key.app,
            WebhookEvent::SubscriptionCount {
                channel,
                subscription_count,
            },
        );
    }
}

/// The region's decisions are the webhook events of occupancy, membership and counts.
impl crate::region::Decisions for Webhooks {
    fn occupied(&self, key: &ChannelKey) {
        Webhooks::occupied(self, key);
    }

    fn vacated(&self, key: &ChannelKey) {
        Webhooks::vacated(self, key);
    }

    fn member_added(&self, key: &ChannelKey, user_id: &str) {
        Webhooks::member_added(self, key, user_id);
    }

    fn member_removed(&self, key: &ChannelKey, user_id: &str) {
        Webhooks::member_removed(self, key, user_id);
    }

    fn counted(&self, key: &ChannelKey, subscription_count: u64) {
        Webhooks::subscription_count(self, key, subscription_count);
    }

    fn removal_delay(&self, key: &ChannelKey) -> Duration {
        let Some(emitter) = &self.inner else {
            return Duration::ZERO;
        };
        if key.channel.kind() == ChannelKind::ServerToUser {
            return Duration::ZERO;
        }
        // Recorded when an endpoint wants a removal or its undoing (for presence channels,
        // membership too): `vacated` stands for the channel, a user for its members.
        let channel = key.channel.clone();
        let vacated = Emitted {
            app: key.app.clone(),
            event: WebhookEvent::ChannelVacated {
                channel: channel.clone(),
            },
        };
        let removed = Emitted {
            app: key.app.clone(),
            event: WebhookEvent::MemberRemoved {
                channel,
                user_id: String::new(),
            },
        };
        if emitter.targets.interested(&vacated)
            || (key.channel.kind() == ChannelKind::Presence && emitter.targets.interested(&removed))
        {
            emitter.delay
        } else {
            Duration::ZERO
        }
    }
}

/// Starts a hub's webhooks: in memory alone, through Redis in a region (`redis`). Without
/// endpoints nothing starts and [`Webhooks::none`] is returned.
pub fn start(
    settings: WebhookSettings,
    apps: &Apps,
    redis: Option<RedisSetup>,
    stats: Arc<HubStats>,
    stop: CancellationToken,
    tasks: &TaskTracker,
) -> Result<Webhooks, WebhookError> {
    let targets = Arc::new(Targets::new(settings.endpoints, apps)?);
    if targets.is_empty() {
        return Ok(Webhooks::none());
    }
    for app in targets.by_app.keys() {
        crate::metrics::webhooks_registered(app);
    }
    let courier = Courier {
        sender: sender::Sender::new(settings.retry.timeout)?,
        batching: settings.batching,
        retry: settings.retry,
        stats: stats.clone(),
    };
    let (queue, events) = mpsc::channel(EMIT_QUEUE);
    match redis {
        None => {
            stats.webhooks.delivering.store(true, Ordering::Relaxed);
            let queues: Vec<MemoryQueue> = (0..targets.len())
                .map(|index| {
                    let app = targets.target(index).app.clone();
                    MemoryQueue::new(settings.queue_max, stats.clone(), app)
                })
                .collect();
            for (index, queue) in queues.iter().enumerate() {
                tasks.spawn(courier.clone().run(
                    targets.target_arc(index),
                    queue.clone(),
                    stop.clone(),
                ));
            }
            tasks.spawn(memory::emit(
                events,
                targets.clone(),
                queues,
                debounce::Debounce::new(settings.delay),
                stop,
            ));
        }
        Some(setup) => {
            let region =
                region::Region::new(setup, targets.clone(), stats.clone(), settings.queue_max);
            tasks.spawn(region.clone().emit(events, stop.clone()));
            tasks.spawn(region.lead(courier, stop));
        }
    }
    tracing::info!(message = "Webhooks enabled.", endpoints = targets.len());
    Ok(Webhooks {
        inner: Some(Arc::new(Emitter {
            queue,
            targets,
            stats,
            delay: settings.delay,
        })),
    })
}
