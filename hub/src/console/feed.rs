//! What the console shows live: a bounded broadcast of what happens on this hub (subscriber
//! counts reported by edges, triggers, client events, vacated channels), and each edge's
//! connections per app. The link sessions and the API write here with one call each; the
//! console's event streams read. Each event is also offered to the region's [`Relay`], which
//! sends it on to other hubs' consoles only while one watches its app.
//!
//! A browser that reads too slowly misses events: the stream tells it how many
//! (`{"type":"skipped"}`), so nothing is dropped silently.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use herald_shared::ids::{AppId, EdgeId, HubId};
use herald_shared::link::{ClientEvent, Interest};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::region::Relay;
use crate::region::relay::NoRelay;

/// Events held for slow readers before they skip.
const FEED_CAPACITY: usize = 1024;

/// One thing that happened, as the console's event log shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsoleEvent {
    /// An edge's subscriber count for a channel changed (its sockets subscribed or left).
    Subscribers {
        /// The app.
        app_id: AppId,
        /// The channel.
        channel: String,
        /// The reporting edge.
        edge_id: String,
        /// Its subscribers now.
        subscribers: u32,
    },
    /// The last subscriber of a channel on an edge left.
    Vacated {
        /// The app.
        app_id: AppId,
        /// The channel.
        channel: String,
        /// The edge.
        edge_id: String,
    },
    /// An event was triggered through the HTTP API (or the console's form).
    Trigger {
        /// The app.
        app_id: AppId,
        /// The channel.
        channel: String,
        /// The event name.
        event: String,
    },
    /// A client sent a `client-*` event.
    ClientEvent {
        /// The app.
        app_id: AppId,
        /// The channel.
        channel: String,
        /// The event name.
        event: String,
        /// The sender's user, on presence channels.
        user_id: Option<String>,
    },
    /// An edge's connections changed (or it went: no connections).
    Connections {
        /// The app.
        app_id: AppId,
        /// The edge.
        edge_id: String,
        /// Its open connections of the app.
        connections: u32,
    },
}

impl ConsoleEvent {
    /// The app the event belongs to (a console shows one app).
    pub fn app_id(&self) -> &AppId {
        match self {
            Self::Subscribers { app_id, .. }
            | Self::Vacated { app_id, .. }
            | Self::Trigger { app_id, .. }
            | Self::ClientEvent { app_id, .. }
            | Self::Connections { app_id, .. } => app_id,
        }
    }
}

/// An event as the console's stream sends it: with the hub it happened on.
#[derive(Serialize)]
struct Envelope<'a> {
    hub_id: &'a str,
    #[serde(flatten)]
    event: &'a ConsoleEvent,
}

#[derive(Debug)]
struct Shared {
    hub: String,
    relay: Arc<dyn Relay>,
    events: broadcast::Sender<ConsoleEvent>,
    /// Each linked edge's connections per app, as it last reported them.
    edges: Mutex<BTreeMap<EdgeId, Vec<(AppId, u32)>>>,
}

/// The handle every writer and reader holds.
#[derive(Debug, Clone)]
pub struct ConsoleFeed {
    shared: Arc<Shared>,
}

impl Default for ConsoleFeed {
    /// A hub alone's feed (nothing to relay), for hub 0.
    fn default() -> Self {
        Self::new(HubId(0), Arc::new(NoRelay))
    }
}

impl ConsoleFeed {
    /// The feed of hub `hub`, relaying to the region through `relay`.
    pub fn new(hub: HubId, relay: Arc<dyn Relay>) -> Self {
        let (events, _) = broadcast::channel(FEED_CAPACITY);
        Self {
            shared: Arc::new(Shared {
                hub: hub.to_string(),
                relay,
                events,
                edges: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Publishes an event to whoever watches, here and (through the relay) on other hubs;
    /// nobody watching: it is gone, which is fine.
    pub fn publish(&self, event: ConsoleEvent) {
        self.shared
            .relay
            .offer(event.app_id(), &|| self.render(&event));
        let _ = self.shared.events.send(event);
    }

    /// An event of this hub as the console's stream sends it (JSON, with this hub's id).
    pub fn render(&self, event: &ConsoleEvent) -> String {
        serde_json::to_string(&Envelope {
            hub_id: &self.shared.hub,
            event,
        })
        .unwrap_or_default()
    }

    /// The region's relay of console events.
    pub fn relay(&self) -> &dyn Relay {
        &*self.shared.relay
    }

    /// A new reader of everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ConsoleEvent> {
        self.shared.events.subscribe()
    }

    fn edges(&self) -> std::sync::MutexGuard<'_, BTreeMap<EdgeId, Vec<(AppId, u32)>>> {
        self.shared
            .edges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An edge reported its connections per app.
    pub fn edge_connections(&self, edge: EdgeId, load: Vec<(AppId, u32)>) {
        let before = self.edges().insert(edge, load.clone()).unwrap_or_default();
        self.announce(edge, &before, &load);
    }

    /// An edge's link ended: its connections leave the console.
    pub fn edge_gone(&self, edge: EdgeId) {
        let before = self.edges().remove(&edge).unwrap_or_default();
        self.announce(edge, &before, &[]);
    }

    fn announce(&self, edge: EdgeId, before: &[(AppId, u32)], now: &[(AppId, u32)]) {
        let count = |list: &[(AppId, u32)], app: &AppId| {
            list.iter().find(|(a, _)| a == app).map_or(0, |(_, n)| *n)
        };
        let apps: std::collections::BTreeSet<&AppId> =
            before.iter().chain(now).map(|(app, _)| app).collect();
        for app in apps {
            let connections = count(now, app);
            if connections != count(before, app) {
                self.publish(ConsoleEvent::Connections {
                    app_id: app.clone(),
                    edge_id: edge.to_string(),
                    connections,
                });
            }
        }
    }

    /// Every linked edge with its connections of `app`: `None` for an edge that never reported
    /// on this link (it has no connections yet, or it is an idle standby link whose edge is
    /// served by another hub).
    pub fn connections(&self, app: &AppId) -> Vec<(EdgeId, Option<u32>)> {
        self.edges()
            .iter()
            .map(|(edge, load)| {
                let count = (!load.is_empty())
                    .then(|| load.iter().find(|(a, _)| a == app).map_or(0, |(_, n)| *n));
                (*edge, count)
            })
            .collect()
    }

    /// An edge reported its subscribers of a channel.
    pub fn interest(&self, edge: EdgeId, interest: &Interest) {
        let (app_id, channel) = (interest.key.app.clone(), interest.key.channel.to_string());
        let edge_id = edge.to_string();
        self.publish(match interest.subscribers {
            0 => ConsoleEvent::Vacated {
                app_id,
                channel,
                edge_id,
            },
            subscribers => ConsoleEvent::Subscribers {
                app_id,
                channel,
                edge_id,
                subscribers,
            },
        });
    }

    /// A client event arrived from an edge.
    pub fn client_event(&self, event: &ClientEvent) {
        self.publish(ConsoleEvent::ClientEvent {
            app_id: event.key.app.clone(),
            channel: event.key.channel.to_string(),
            event: event.name.as_str().to_string(),
            user_id: event.user_id.clone(),
        });
    }

    /// An edge linked (it shows with no connections until it reports).
    pub fn edge_linked(&self, edge: EdgeId) {
        self.edges().entry(edge).or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_report_connections_and_changes_are_announced() {
        let feed = ConsoleFeed::default();
        let mut events = feed.subscribe();
        let (edge, app) = (EdgeId(7), AppId::new("1"));
        feed.edge_linked(edge);
        assert_eq!(feed.connections(&app), vec![(edge, None)]);
        feed.edge_connections(edge, vec![(app.clone(), 3)]);
        feed.edge_connections(edge, vec![(app.clone(), 3)]);
        assert_eq!(feed.connections(&app), vec![(edge, Some(3))]);
        feed.edge_gone(edge);
        assert!(feed.connections(&app).is_empty());
        let counts: Vec<u32> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|event| match event {
                ConsoleEvent::Connections { connections, .. } => connections,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(counts, vec![3, 0]);
    }

    #[test]
    fn rendered_events_name_their_hub() {
        let feed = ConsoleFeed::new(HubId(10), Arc::new(NoRelay));
        let json = feed.render(&ConsoleEvent::Trigger {
            app_id: AppId::new("1"),
            channel: "c".into(),
            event: "e".into(),
        });
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"hub_id": "000000000000000a", "type": "trigger", "app_id": "1", "channel": "c", "event": "e"})
        );
    }
}
