//! Who is online across the region, for watchlist events: the Redis [`Online`].
//!
//! Each hub records the signed-in users it has (`user_online`); Redis counts, per user, the hubs
//! that have them and announces a user's first and last hub on the app's watchlist channel as a
//! numbered [`OnlineChange`]. Every hub hears every change, and for each of its watchers one
//! hub — whoever claims the change first — tells the watcher, so a watcher whose sockets sit on
//! several hubs hears each change once. The reaper takes a dead hub's users offline.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use herald_shared::ids::{AppId, HubId};
use redis::{AsyncCommands, ScriptInvocation};

use super::{Cluster, ClusterError};
use crate::region::{Online, OnlineChange, RegionError};

/// How long a claim on telling a watcher of a change is kept (long past any bus delay).
const CLAIM_TTL_MS: u64 = 60_000;

/// Decodes a watchlist channel message: `{online|offline}\n{number}\n{user}`.
pub fn decode_change(payload: &str) -> Option<OnlineChange> {
    let mut parts = payload.splitn(3, '\n');
    let online = match parts.next()? {
        "online" => true,
        "offline" => false,
        _ => return None,
    };
    let number = parts.next()?.parse().ok()?;
    let user_id = parts.next()?.to_string();
    Some(OnlineChange {
        online,
        number,
        user_id,
    })
}

impl Online for Cluster {
    fn set(
        &self,
        app: AppId,
        user: String,
        online: bool,
    ) -> BoxFuture<'_, Result<Option<OnlineChange>, RegionError>> {
        async move {
            // The change, if it is one, arrives through the bus.
            self.user_online(&app, &user, online).await?;
            Ok(None)
        }
        .boxed()
    }

    fn reassert(&self, users: Vec<(AppId, String)>) -> BoxFuture<'_, Result<(), RegionError>> {
        async move {
            let hub = self.hub_id();
            let recorded = self.online_on(hub).await?;
            let stale = recorded
                .iter()
                .filter(|user| !users.contains(user))
                .map(|(app, user)| (app, user.as_str(), false));
            let here = users.iter().map(|(app, user)| (app, user.as_str(), true));
            let asserted: Vec<_> = stale.chain(here).collect();
            self.users_online_on(hub, &asserted).await?;
            Ok(())
        }
        .boxed()
    }

    fn among(
        &self,
        app: AppId,
        users: Vec<String>,
    ) -> BoxFuture<'_, Result<(Vec<bool>, u64), RegionError>> {
        async move { Ok(self.online_among(&app, &users).await?) }.boxed()
    }

    fn claim(
        &self,
        app: AppId,
        number: u64,
        watchers: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<bool>, RegionError>> {
        async move { Ok(self.claim_change(&app, number, &watchers).await?) }.boxed()
    }
}

impl Cluster {
    /// Records whether a user is online on this hub.
    pub async fn user_online(
        &self,
        app: &AppId,
        user: &str,
        online: bool,
    ) -> Result<(), ClusterError> {
        self.users_online_on(self.hub_id(), &[(app, user, online)])
            .await
    }

    /// Records, in one round trip, whether each user is online on `hub`: this hub re-asserting
    /// its users after a reconnect, or the reaper taking a dead hub's users offline.
    pub async fn users_online_on(
        &self,
        hub: HubId,
        users: &[(&AppId, &str, bool)],
    ) -> Result<(), ClusterError> {
        if users.is_empty() {
            return Ok(());
        }
        // The hub's apps gain an app before its users are recorded: in one pipeline on one
        // Redis; first, on their own, on a cluster (which splits pipelines by slot).
        let mut connection = self.connection();
        let apart = connection.0.splits_pipelines();
        let mut apps = redis::pipe();
        let mut pipe = redis::pipe();
        pipe.load_script(&self.scripts().user_online).ignore();
        for &(app, user, online) in users {
            if online {
                let index = if apart { &mut apps } else { &mut pipe };
                index
                    .sadd(self.keys().hub_online_apps(hub), app.as_str())
                    .ignore();
            }
            pipe.invoke_script(&self.user_online_call(hub, app, user, online))
                .ignore();
        }
        if !apps.is_empty() {
            let () = apps.query_async(&mut connection).await?;
        }
        let () = pipe.query_async(&mut connection).await?;
        Ok(())
    }

    /// The `user_online` script call recording whether a user is online on `hub`. The caller
    /// first adds the app to the hub's apps with online users.
    fn user_online_call(
        &self,
        hub: HubId,
        app: &AppId,
        user: &str,
        online: bool,
    ) -> ScriptInvocation<'_> {
        let keys = self.keys();
        let mut invocation = self.scripts().user_online.prepare_invoke();
        invocation
            .key(keys.hub_online(app, hub))
            .key(keys.online(app))
            .key(keys.watchlist_changes(app))
            .arg(user)
            .arg(if online { "1" } else { "0" })
            .arg(keys.watchlist(app));
        invocation
    }

    /// The users Redis has online on `hub`.
    pub async fn online_on(&self, hub: HubId) -> Result<Vec<(AppId, String)>, ClusterError> {
        let apps: Vec<String> = self
            .connection()
            .smembers(self.keys().hub_online_apps(hub))
            .await?;
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for app in &apps {
            pipe.smembers(self.keys().hub_online(&AppId::new(app.as_str()), hub));
        }
        let users: Vec<Vec<String>> = pipe.query_async(&mut self.connection()).await?;
        Ok(apps
            .iter()
            .zip(users)
            .flat_map(|(app, users)| {
                users
                    .into_iter()
                    .map(move |user| (AppId::new(app.as_str()), user))
            })
            .collect())
    }

    /// Takes every user of a dead hub offline there, then forgets the hub's list.
    pub async fn forget_online_on(&self, hub: HubId) -> Result<usize, ClusterError> {
        let users = self.online_on(hub).await?;
        let offline: Vec<_> = users
            .iter()
            .map(|(app, user)| (app, user.as_str(), false))
            .collect();
        self.users_online_on(hub, &offline).await?;
        let apps: Vec<String> = self
            .connection()
            .smembers(self.keys().hub_online_apps(hub))
            .await?;
        let mut connection = self.connection();
        let mut pipe = redis::pipe();
        for app in &apps {
            pipe.del(self.keys().hub_online(&AppId::new(app.as_str()), hub))
                .ignore();
        }
        if connection.0.splits_pipelines() {
            // The list goes last: on a cluster the deletions above may run in any order.
            if !pipe.is_empty() {
                let () = pipe.query_async(&mut connection).await?;
            }
            pipe = redis::pipe();
        }
        pipe.del(self.keys().hub_online_apps(hub)).ignore();
        let () = pipe.query_async(&mut connection).await?;
        Ok(users.len())
    }

    /// Which of `users` are online anywhere in the region, as of the app's change number
    /// returned with them (changes up to it are reflected).
    pub async fn online_among(
        &self,
        app: &AppId,
        users: &[String],
    ) -> Result<(Vec<bool>, u64), ClusterError> {
        if users.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let (number, counts): (Option<u64>, Vec<Option<u64>>) = redis::pipe()
            .atomic()
            .get(self.keys().watchlist_changes(app))
            .cmd("HMGET")
            .arg(self.keys().online(app))
            .arg(users)
            .query_async(&mut self.connection())
            .await?;
        let online = counts.into_iter().map(|count| count.unwrap_or(0) > 0);
        Ok((online.collect(), number.unwrap_or(0)))
    }

    /// Claims telling each of `watchers` of change `number`; `true` where this hub won.
    pub async fn claim_change(
        &self,
        app: &AppId,
        number: u64,
        watchers: &[String],
    ) -> Result<Vec<bool>, ClusterError> {
        let mut pipe = redis::pipe();
        for watcher in watchers {
            pipe.cmd("SET")
                .arg(self.keys().watchlist_claim(app, number, watcher))
                .arg(self.hub_id().to_string())
                .arg("NX")
                .arg("PX")
                .arg(CLAIM_TTL_MS);
        }
        let won: Vec<Option<String>> = pipe.query_async(&mut self.connection()).await?;
        Ok(won.into_iter().map(|claim| claim.is_some()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_decode_and_reject_garbage() {
        assert_eq!(
            decode_change("online\n7\nuser\nwith newline"),
            Some(OnlineChange {
                online: true,
                number: 7,
                user_id: "user\nwith newline".into()
            })
        );
        assert_eq!(
            decode_change("offline\n8\nu").map(|c| c.online),
            Some(false)
        );
        assert_eq!(decode_change("online\nx\nu"), None);
        assert_eq!(decode_change("away\n1\nu"), None);
        assert_eq!(decode_change("online\n1"), None);
    }
}
