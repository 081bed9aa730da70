//! Watchlist events: signed-in users are told when users on their watchlist go online or
//! offline.
//!
//! A user is online while their own `#server-to-user-{id}` channel is occupied — every signed-in
//! socket holds that subscription — so the registry shards report occupancy changes here. Edges
//! report each signed-in user's watchlist. This actor keeps who watches whom, and publishes
//! `pusher_internal:watchlist_events` on the watcher's own channel: the current state when a
//! watchlist arrives, then one event per change.
//!
//! Each hub records its users online in the region ([`Online`]) and learns of changes from the
//! region ([`Told`]), so a watcher hears of a friend on any hub. A hub alone is a region of one:
//! it decides each change at once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::apps::Apps;
use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::event::{EventData, EventName, WATCHLIST_EVENTS};
use herald_shared::ids::AppId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::edge::LinkId;
use crate::region::{Online, OnlineChange, Publication, Store, Told};
use crate::registry::{Occupancy, Registry};

/// Capacity of the actor's queue.
const QUEUE: usize = 4096;
/// How long a failed re-assertion waits before it is tried again: at first briefly (the
/// region's connection that just came back reconnects on its first failed command), then longer.
const RESYNC_RETRY: [Duration; 2] = [Duration::from_millis(20), Duration::from_millis(500)];
/// How long a new watchlist's answer waits for the watcher's channel to be attached.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
enum Command {
    Watchlist {
        link: LinkId,
        app: AppId,
        watcher: String,
        watched: Vec<String>,
    },
    EdgeGone(LinkId),
}

/// A cheap handle to the watchlist actor.
#[derive(Debug, Clone)]
pub struct WatchlistSender(mpsc::Sender<Command>);

/// The receiving side, for [`run`].
pub struct WatchlistReceiver(mpsc::Receiver<Command>);

/// Creates the actor's queue.
pub fn channel() -> (WatchlistSender, WatchlistReceiver) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (WatchlistSender(tx), WatchlistReceiver(rx))
}

impl WatchlistSender {
    /// Records a watcher's watchlist as reported by one edge link (empty: none any more).
    pub async fn set(&self, link: LinkId, app: AppId, watcher: String, watched: Vec<String>) {
        let _ = self
            .0
            .send(Command::Watchlist {
                link,
                app,
                watcher,
                watched,
            })
            .await;
    }

    /// Forgets the watchlists a link reported.
    pub async fn edge_gone(&self, link: LinkId) {
        let _ = self.0.send(Command::EdgeGone(link)).await;
    }
}

type UserKey = (AppId, String);

#[derive(Default)]
struct State {
    online: HashSet<UserKey>,
    /// Per watcher, the watchlist each link reported.
    lists: HashMap<UserKey, HashMap<LinkId, Vec<String>>>,
    /// Per watched user, who watches them.
    watchers: HashMap<UserKey, BTreeSet<String>>,
}

impl State {
    fn watched_by(&self, watcher: &UserKey) -> BTreeSet<String> {
        self.lists
            .get(watcher)
            .into_iter()
            .flat_map(|links| links.values().flatten().cloned())
            .collect()
    }

    /// Replaces one link's list for a watcher; returns the full watchlist when it is new.
    fn set(
        &mut self,
        link: LinkId,
        watcher: UserKey,
        watched: Vec<String>,
    ) -> Option<BTreeSet<String>> {
        let before = self.watched_by(&watcher);
        let links = self.lists.entry(watcher.clone()).or_default();
        if watched.is_empty() {
            links.remove(&link);
        } else {
            links.insert(link, watched);
        }
        if links.is_empty() {
            self.lists.remove(&watcher);
        }
        let after = self.watched_by(&watcher);
        for gone in before.difference(&after) {
            if let Some(set) = self.watchers.get_mut(&(watcher.0.clone(), gone.clone())) {
                set.remove(&watcher.1);
            }
        }
        for added in after.difference(&before) {
            self.watchers
                .entry((watcher.0.clone(), added.clone()))
                .or_default()
                .insert(watcher.1.clone());
        }
        (!after.is_empty() && after != before).then_some(after)
    }

    /// Forgets every list a link reported.
    fn forget_link(&mut self, link: LinkId) {
        let watchers: Vec<UserKey> = self
            .lists
            .iter()
            .filter(|(_, links)| links.contains_key(&link))
            .map(|(watcher, _)| watcher.clone())
            .collect();
        for watcher in watchers {
            self.set(link, watcher, Vec::new());
        }
    }
}

fn watchlist_event(groups: &[(&str, Vec<String>)]) -> EventData {
    let events: Vec<serde_json::Value> = groups
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(name, ids)| serde_json::json!({"name": name, "user_ids": ids}))
        .collect();
    EventData::from_json_text(serde_json::json!({ "events": events }).to_string())
}

/// The actor: the watch state and where it tells watchers.
struct Actor {
    state: State,
    store: Arc<dyn Store>,
    online: Arc<dyn Online>,
    registry: Registry,
    apps: Apps,
    /// The users this hub has online (what it recorded in the region).
    local: HashSet<UserKey>,
    /// Per user, the change number their status was read at; changes up to it (still on their
    /// way from the region) are already reflected.
    read_at: HashMap<UserKey, u64>,
}

impl Actor {
    fn watched_users(&self) -> impl Iterator<Item = &UserKey> {
        self.state
            .watchers
            .iter()
            .filter(|(_, watchers)| !watchers.is_empty())
            .map(|(user, _)| user)
    }

    /// A user's own channel on this hub was occupied or vacated.
    async fn occupancy(&mut self, occupancy: Occupancy) {
        let Occupancy {
            app,
            user_id,
            online,
        } = occupancy;
        let key = (app, user_id);
        if online {
            self.local.insert(key.clone());
        } else {
            self.local.remove(&key);
        }
        // The region announces the change if it is one (at once, or through its bus); a failure
        // is repaired when the hub hears the region again (see `resync`).
        match self.online.set(key.0.clone(), key.1, online).await {
            Ok(Some(change)) => self.changed(key.0, change).await,
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(message = "Cannot record a user online in the region.", %error)
            }
        }
    }

    /// Records a user's status; returns who watches them.
    fn set_online(&mut self, key: &UserKey, online: bool) -> Vec<String> {
        if online {
            self.state.online.insert(key.clone());
        } else {
            self.state.online.remove(key);
        }
        self.state
            .watchers
            .get(key)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Records a status read from Redis as of change `read_at`; returns who watches the user.
    fn read(&mut self, key: &UserKey, online: bool, read_at: u64) -> Vec<String> {
        self.read_at.insert(key.clone(), read_at);
        self.set_online(key, online)
    }

    /// The region announced a change; each watcher hears it from the hub that claims it.
    async fn changed(&mut self, app: AppId, change: OnlineChange) {
        let key = (app.clone(), change.user_id.clone());
        if let Some(read_at) = self.read_at.get(&key) {
            if change.number <= *read_at {
                return;
            }
            self.read_at.remove(&key);
        }
        if self.state.watchers.get(&key).is_none_or(|w| w.is_empty()) {
            // Nobody here watches the user: keep no status (a new watchlist reads it from Redis),
            // so a hub does not hold every online user of the region.
            self.state.online.remove(&key);
            return;
        }
        let watchers = self.set_online(&key, change.online);
        let claimed = self
            .online
            .claim(app.clone(), change.number, watchers.clone())
            .await;
        let won = match claimed {
            Ok(won) => won,
            Err(error) => {
                tracing::warn!(message = "Cannot claim a watchlist change in the region.", %error);
                return;
            }
        };
        for (watcher, won) in watchers.into_iter().zip(won) {
            if won {
                let groups = [(status(change.online), vec![change.user_id.clone()])];
                self.tell(&app, watcher, &groups).await;
            }
        }
    }

    /// A watcher's list from one link; a new list is answered with its users' current status.
    async fn watchlist(&mut self, link: LinkId, app: AppId, watcher: String, watched: Vec<String>) {
        let enabled = self
            .apps
            .by_id(app.as_str())
            .is_some_and(|a| a.settings.watchlist_events);
        let Some(list) = self
            .state
            .set(link, (app.clone(), watcher.clone()), watched)
        else {
            return;
        };
        if !enabled {
            return;
        }
        let list: Vec<String> = list.into_iter().collect();
        match self.online.among(app.clone(), list.clone()).await {
            Ok((statuses, read_at)) => {
                for (user, online) in list.iter().zip(statuses) {
                    self.read(&(app.clone(), user.clone()), online, read_at);
                }
            }
            Err(error) => {
                tracing::warn!(message = "Cannot read who is online in the region.", %error)
            }
        }
        let (online, offline): (Vec<String>, Vec<String>) = list
            .into_iter()
            .partition(|id| self.state.online.contains(&(app.clone(), id.clone())));
        // The watcher's sockets subscribed to their own channel just before reporting the list;
        // this hub may still be attaching it, and would miss its own answer.
        if let Some(key) = own_channel(&app, &watcher) {
            let settled = self.registry.settled(key);
            if tokio::time::timeout(SETTLE_TIMEOUT, settled).await.is_err() {
                tracing::warn!(message = "A watcher's channel did not settle; answering anyway.");
            }
        }
        self.tell(&app, watcher, &[("online", online), ("offline", offline)])
            .await;
    }

    /// The hub hears the region again: record again who is online here, and tell watchers of
    /// any change announced while the hub was deaf.
    /// Returns whether it succeeded; a failure is retried (the region's connection may still be
    /// recovering).
    async fn resync(&mut self) -> bool {
        let local: Vec<UserKey> = self.local.iter().cloned().collect();
        if let Err(error) = self.online.reassert(local).await {
            tracing::warn!(message = "Cannot record users online in the region; retrying.", %error);
            return false;
        }
        let mut by_app: HashMap<AppId, Vec<String>> = HashMap::new();
        for (app, user) in self.watched_users() {
            by_app.entry(app.clone()).or_default().push(user.clone());
        }
        for (app, users) in by_app {
            let Ok((statuses, read_at)) = self.online.among(app.clone(), users.clone()).await
            else {
                continue;
            };
            for (user, online) in users.into_iter().zip(statuses) {
                let key = (app.clone(), user);
                let changed = self.state.online.contains(&key) != online;
                let watchers = self.read(&key, online, read_at);
                if !changed {
                    continue;
                }
                for watcher in watchers {
                    self.tell(&app, watcher, &[(status(online), vec![key.1.clone()])])
                        .await;
                }
            }
        }
        true
    }

    /// Publishes a watchlist event on the watcher's own channel.
    async fn tell(&self, app: &AppId, watcher: String, groups: &[(&str, Vec<String>)]) {
        let Some(key) = own_channel(app, &watcher) else {
            return;
        };
        let publication = Publication {
            key,
            name: EventName::internal(WATCHLIST_EVENTS),
            data: watchlist_event(groups),
            exclude: None,
            user_id: None,
        };
        if let Err(error) = self.store.publish(publication).await {
            tracing::warn!(message = "A watchlist event could not be published.", %error);
        }
    }
}

/// A user's own `#server-to-user-{id}` channel.
fn own_channel(app: &AppId, user: &str) -> Option<ChannelKey> {
    let channel = ChannelName::server_to_user(user).ok()?;
    Some(ChannelKey::new(app.clone(), channel))
}

fn status(online: bool) -> &'static str {
    if online { "online" } else { "offline" }
}

/// What the watchlist hears: occupancy changes from the registry, and the region.
pub struct WatchlistRegion {
    /// Users' own channels occupied or vacated on this hub (see [`crate::registry::occupancy`]).
    pub occupancy: mpsc::Receiver<Occupancy>,
    /// Where watchlist events are published.
    pub store: Arc<dyn Store>,
    /// Who is online.
    pub online: Arc<dyn Online>,
    /// What the region tells the watchlist.
    pub told: mpsc::Receiver<Told>,
}

/// Sleeps until `at` (forever without one).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the actor until `stop` or until every sender is gone.
pub async fn run(
    receiver: WatchlistReceiver,
    region: WatchlistRegion,
    registry: Registry,
    apps: Apps,
    stop: CancellationToken,
) {
    let WatchlistReceiver(mut commands) = receiver;
    let WatchlistRegion {
        mut occupancy,
        store,
        online,
        mut told,
    } = region;
    let mut actor = Actor {
        state: State::default(),
        store,
        online,
        registry,
        apps,
        local: HashSet::new(),
        read_at: HashMap::new(),
    };
    let mut resync_at: Option<tokio::time::Instant> = None;
    let mut retries = 0;
    loop {
        let command = tokio::select! {
            _ = stop.cancelled() => return,
            () = sleep_until(resync_at), if resync_at.is_some() => {
                retries += 1;
                resync_at = (!actor.resync().await).then(|| {
                    tokio::time::Instant::now() + RESYNC_RETRY[retries.min(1)]
                });
                continue;
            }
            occupancy = occupancy.recv() => {
                match occupancy {
                    Some(occupancy) => actor.occupancy(occupancy).await,
                    None => return,
                }
                continue;
            }
            told = told.recv() => {
                match told {
                    Some(Told::Change(app, change)) => actor.changed(app, change).await,
                    Some(Told::Resync) => {
                        retries = 0;
                        resync_at = (!actor.resync().await)
                            .then(|| tokio::time::Instant::now() + RESYNC_RETRY[0]);
                    }
                    None => return,
                }
                continue;
            }
            command = commands.recv() => match command {
                Some(command) => command,
                None => return,
            },
        };
        match command {
            Command::Watchlist {
                link,
                app,
                watcher,
                watched,
            } => actor.watchlist(link, app, watcher, watched).await,
            Command::EdgeGone(link) => actor.state.forget_link(link),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserKey {
        (AppId::new("1"), id.to_string())
    }

    #[test]
    fn watchers_follow_the_union_of_link_lists() {
        let mut state = State::default();
        let list = state
            .set(LinkId(1), user("w"), vec!["a".into(), "b".into()])
            .unwrap();
        assert_eq!(list.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(state.watchers[&user("a")].contains("w"));
        assert_eq!(
            state.set(LinkId(2), user("w"), vec!["a".into()]),
            None,
            "nothing new"
        );
        state.set(LinkId(1), user("w"), Vec::new());
        assert!(
            state.watchers[&user("a")].contains("w"),
            "link 2 still watches a"
        );
        assert!(!state.watchers[&user("b")].contains("w"));
        state.set(LinkId(2), user("w"), Vec::new());
        assert!(state.lists.is_empty());
    }

    #[test]
    fn a_gone_link_takes_only_its_own_lists() {
        let mut state = State::default();
        state.set(LinkId(1), user("w"), vec!["a".into()]);
        state.set(LinkId(2), user("w"), vec!["b".into()]);
        state.set(LinkId(2), user("v"), vec!["a".into()]);
        state.forget_link(LinkId(2));
        assert!(state.watchers[&user("a")].contains("w"));
        assert!(!state.watchers[&user("a")].contains("v"));
        assert!(!state.watchers[&user("b")].contains("w"));
        assert_eq!(state.lists.len(), 1);
    }

    #[test]
    fn events_group_ids_by_status() {
        let data = watchlist_event(&[("online", vec!["a".into()]), ("offline", vec![])]);
        assert_eq!(
            data.json(),
            r#"{"events":[{"name":"online","user_ids":["a"]}]}"#
        );
    }
}
