//! The debug console's events across the region: what a console shows happens on every hub,
//! not only on the one it is signed in to.
//!
//! A hub alone has nothing to relay ([`NoRelay`]). In a region (`cluster/relay.rs`) a hub
//! sends an app's console events to the other hubs only while some console of the region
//! watches that app, so a region where no console is open pays nothing but a lookup per event
//! (and, once a second per app with events, one Redis read).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use herald_shared::ids::AppId;
use tokio::sync::broadcast;

/// A console event of another hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    /// The hub it happened on.
    pub hub: String,
    /// The event, as the console's event stream sends it (JSON).
    pub json: String,
}

/// A console watching an app: other hubs' events of the app, while it is held.
pub struct Watching {
    /// Other hubs' events (`None`: nothing else to hear, a hub alone).
    pub events: Option<broadcast::Receiver<Relayed>>,
    /// Stops watching when dropped.
    pub guard: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Watching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watching")
            .field("relayed", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

/// How the console reaches the other hubs of the region.
pub trait Relay: Send + Sync + std::fmt::Debug {
    /// Offers an event of this hub to the region's consoles watching `app`. Never waits;
    /// `render` (the event's JSON) is called only when it is sent on.
    fn offer(&self, app: &AppId, render: &dyn Fn() -> String);

    /// Watches `app`'s events on the other hubs; returns once the region knows (as far as it
    /// can be told: a region that cannot be reached is logged, and the console shows this
    /// hub's events only).
    fn watch(&self, app: AppId) -> BoxFuture<'_, Watching>;
}

/// A hub alone: no other hub to tell or to hear.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRelay;

impl Relay for NoRelay {
    fn offer(&self, _app: &AppId, _render: &dyn Fn() -> String) {}

    fn watch(&self, _app: AppId) -> BoxFuture<'_, Watching> {
        async {
            Watching {
                events: None,
                guard: None,
            }
        }
        .boxed()
    }
}
