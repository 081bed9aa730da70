//! A hub in a region: webhook queues and delays live in Redis, so each event is sent once for
//! the whole region and nothing is lost when a hub dies.
//!
//! - **Queues.** Each endpoint has a stream (`{prefix}:{wh}:q:{endpoint}`): whichever hub saw
//!   the cause appends the event, the stream's bound trims the oldest (counted as dropped), and
//!   an entry is deleted only once delivered or given up on — so the stream *is* the list of
//!   undelivered events.
//! - **One courier.** One hub at a time holds the courier lease (`{prefix}:{wh}:courier`,
//!   renewed every second, [`LEASE`] long) and delivers every endpoint's stream in order. When
//!   it dies, the lease runs out and another hub takes over, reading each stream from its start:
//!   what the dead courier had not deleted — pending, or being retried — is delivered by the
//!   new one. Only a batch the dead hub had sent but not yet deleted can arrive twice.
//! - **Delays.** `channel_vacated` and `member_removed` are decided and delayed in one step: the
//!   region's script that vacates a channel, or removes a user's last socket, records the removal
//!   with its due time (Redis's clock, so hubs' clocks do not matter) in the channel's `whp` hash
//!   and in the region's delayed set; the script that occupies the channel again, or adds the
//!   user back, removes it there and tells nobody (`crate::cluster::scripts`). Whichever hub acts
//!   second sees the first's decision. The courier moves due ones into the streams with a script
//!   that checks the channel's record, removes and queues at once — a delay is in Redis or in
//!   the streams, never only in a hub.
//! - **On a Redis Cluster** the channel's record and the `{wh}` keys are in different slots: the
//!   scripts record removals in the record only, and the hubs keep the delayed set around them —
//!   the channel's marker before a script that may decide a removal, its check after one that
//!   did (`Cluster::mark_removals`). The courier settles a due entry in steps that are each safe
//!   to repeat ([`Region::settle`]); the record stays the truth, so a removal whose hub died
//!   before adding the check is found by the marker, and one undone while it was being queued
//!   has its arrival queued after it. All commands go through the cluster connection
//!   ([`RedisConnection`]), which follows slot moves and failovers.
//!
//! A hub that cannot reach Redis keeps the events it was given in its emitter queue and retries;
//! when that queue is full, new events are dropped and counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::ids::{AppId, HubId};
use redis::streams::{StreamRangeReply, StreamReadReply};
use redis::{AsyncCommands, Script};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::debounce::Delayed;
use super::delivery::{Courier, EndpointQueue, QueueError, Queued};
use super::{CACHE_MISS_ONCE_PER, Delay, Emitted, Plan, Targets};
use crate::cluster::connection::RedisConnection;
use crate::cluster::keys::Keys;
use crate::cluster::scripts::WEBHOOK_INDEX;
use crate::cluster::{ClusterSettings, RedisMode};
use crate::stats::HubStats;

/// How long the courier lease lasts without renewal: a dead courier's successor starts within
/// about this long.
pub const LEASE: Duration = Duration::from_secs(3);
/// How often the lease is taken or renewed.
const LEASE_ROUND: Duration = Duration::from_secs(1);
/// How long a blocking read of the streams waits.
const BLOCK: Duration = Duration::from_secs(1);
/// The longest wait between two looks at the delayed set.
const DELAY_LOOK: Duration = Duration::from_secs(1);
/// Delayed events moved per round.
const DUE_BATCH: usize = 100;
/// The longest wait before retrying Redis.
const MAX_RETRY: Duration = Duration::from_secs(2);
/// The bound on each command's answer (a blocking read: on top of its block).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a Redis Cluster remembers that a delayed removal was queued (so that a courier
/// claiming it again after a crash does not queue it twice, and an arrival that undid it while
/// it was being queued is sent after it): far longer than any courier takes over.
const QUEUED_FOR: Duration = Duration::from_secs(3600);
/// How long the delay mover pauses after a failed move (a shard failing over), rather than
/// trying again at once.
const FAILED_MOVE_PAUSE: Duration = Duration::from_millis(200);
/// Rounds of claims one look at a channel's record makes before it comes back later.
const CLAIM_ROUNDS: usize = 3;

/// What a regional hub's webhooks need of Redis.
#[derive(Clone)]
pub struct RedisSetup {
    /// Their commands: on a Redis Cluster routed by slot (every webhook key is in the `{wh}`
    /// slot but a channel's `whp` record), following slot moves and failovers.
    pub connection: RedisConnection,
    /// The courier's blocking stream reads, on a connection of their own (a blocked read holds
    /// up every command behind it on its connection).
    pub watch: RedisConnection,
    /// Key names.
    pub keys: Keys,
    /// This hub.
    pub hub_id: HubId,
    /// Whether Redis is a Redis Cluster: delayed removals are then kept in the delayed set by
    /// the hubs around the channel scripts, and claimed in steps (see the module's documentation).
    pub cluster: bool,
}

impl RedisSetup {
    /// Webhooks' own way to the region's Redis (their commands have timeouts of their own),
    /// the region's key names.
    pub fn new(settings: &ClusterSettings, hub_id: HubId) -> Result<Self, redis::RedisError> {
        Ok(Self {
            connection: crate::cluster::connect(settings, COMMAND_TIMEOUT)?,
            watch: crate::cluster::connect(settings, BLOCK + COMMAND_TIMEOUT)?,
            keys: Keys::new(settings.prefix.clone()),
            hub_id,
            cluster: settings.mode == RedisMode::Cluster,
        })
    }
}

/// Appends an event to the streams in `KEYS[3..]`, trimming each to `max` (returns how many
/// entries were trimmed), unless the mode says otherwise: `once` — it is queued only if the key
/// `KEYS[1]` could be set, for `member` ms; `after` — the same, and only if the key `KEYS[2]`
/// exists (the removal this arrival undid was queued); `claim` — it *is* the delayed event
/// `member` of the set `KEYS[1]`, due at the time its channel's record `KEYS[2]` holds: queued
/// once that time has come, by whoever removes it from both; dropped when the record holds none
/// (an arrival undid it); left in the set, at the recorded time, when that time is still to come
/// (returns -1 when nothing was queued). `claim` touches two slots: one Redis only.
const PUSH: &str = r#"
local mode, member, max, event = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if mode == 'once' or mode == 'after' then
  if mode == 'after' and redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
  if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', member) then return -1 end
elseif mode == 'claim' then
  local due = redis.call('HGET', KEYS[2], member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if due and tonumber(due) > now then
    redis.call('ZADD', KEYS[1], 'XX', due, member)
    return -1
  end
  redis.call('ZREM', KEYS[1], member)
  if not due then return -1 end
  redis.call('HDEL', KEYS[2], member)
end
local dropped = 0
for i = 3, #KEYS do
  redis.call('XADD', KEYS[i], '*', 'e', event)
  local over = redis.call('XLEN', KEYS[i]) - max
  if over > 0 then
    redis.call('XTRIM', KEYS[i], 'MAXLEN', max)
    dropped = dropped + over
  end
end
return dropped
"#;

/// The delayed members due now (at most `ARGV[1]`) with their scores, and how many ms until the
/// next one is due (-1: none).
const DUE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local members, scores = {}, {}
for i = 1, #due, 2 do
  table.insert(members, due[i])
  table.insert(scores, due[i + 1])
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if first[2] then wait = math.max(0, tonumber(first[2]) - now) end
return {wait, members, scores}
"#;

/// A Redis Cluster's look at a channel's record of removals `KEYS[1]` (its `whp` hash, in the
/// channel's slot): `{wait, {member, due, …}, {note, …}}` — the removals due now, the notes of
/// removals an arrival undid once they were due (`u{due}\n{member}`: the courier may have been
/// queueing them; see `undo_removal` in `crate::cluster::scripts`), and the ms until the next
/// removal is due (-1: none waits).
const PEEK: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due, undone, wait = {}, {}, -1
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local field, at = all[i], tonumber(all[i + 1])
  if string.sub(field, 1, 1) == 'u' then
    table.insert(undone, field)
  elseif at and at <= now then
    table.insert(due, field)
    table.insert(due, all[i + 1])
  elseif at then
    local left = at - now
    if wait < 0 or left < wait then wait = left end
  end
end
return {wait, due, undone}
"#;

/// Forgets the removal `ARGV[1]` due at `ARGV[2]` from the channel's record `KEYS[1]` once it is
/// queued, if the record still holds it (an arrival may have undone it meanwhile: it left a
/// note instead); 1 if it did.
const FINISH: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"#;

/// Settles an entry `ARGV[1]` of the delayed set `KEYS[1]` read with the score `ARGV[2]` after
/// its channel was looked at: when a removal still waits (`ARGV[4]` ms ≥ 0) the channel's check
/// `ARGV[3]` is due then (and a marker is no longer needed); else the entry goes — unless it
/// changed since it was read (a hub marked the channel again). 1 when it went (the caller looks
/// at the channel once more: a removal recorded meanwhile brings the check back).
const SETTLE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = tonumber(ARGV[4])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local unchanged = score and tonumber(score) == tonumber(ARGV[2])
if wait >= 0 then
  if ARGV[1] == ARGV[3] then
    redis.call('ZADD', KEYS[1], now + wait, ARGV[3])
  else
    redis.call('ZADD', KEYS[1], 'LT', now + wait, ARGV[3])
    if unchanged then redis.call('ZREM', KEYS[1], ARGV[1]) end
  end
  return 0
end
if unchanged then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"#;

/// Takes or renews the lease `KEYS[1]` for `ARGV[1]` for `ARGV[2]` ms; 1 if held.
const LEAD: &str = r#"
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Gives the lease up if `ARGV[1]` holds it.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The scripts, hashed once.
struct Scripts {
    push: Script,
    due: Script,
    lead: Script,
    release: Script,
    peek: Script,
    finish: Script,
    settle: Script,
    index: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            push: Script::new(PUSH),
            due: Script::new(DUE),
            lead: Script::new(LEAD),
            release: Script::new(RELEASE),
            peek: Script::new(PEEK),
            finish: Script::new(FINISH),
            settle: Script::new(SETTLE),
            index: Script::new(WEBHOOK_INDEX),
        }
    }
}

/// A delayed event's member in the delayed set, as the region's scripts write it
/// (`vacated_member`, `removed_member` in `crate::cluster::scripts`).
#[cfg(test)]
fn member(delayed: &Delayed) -> String {
    match delayed {
        Delayed::Vacated(key) => format!("v\n{}\n{}", key.app, key.channel),
        Delayed::Removed(key, user) => format!("r\n{}\n{}\n{user}", key.app, key.channel),
    }
}

/// The delayed event of a member of the delayed set.
fn parse_member(text: &str) -> Option<Delayed> {
    let mut parts = text.splitn(4, '\n');
    let kind = parts.next()?;
    let key = ChannelKey::new(
        AppId::new(parts.next()?),
        ChannelName::parse(parts.next()?).ok()?,
    );
    match (kind, parts.next()) {
        ("v", None) => Some(Delayed::Vacated(key)),
        ("r", Some(user)) => Some(Delayed::Removed(key, user.to_string())),
        _ => None,
    }
}

/// The channel of a Redis Cluster's entry of the delayed set: its check (`c`, due when its
/// next removal is) or its marker (`p`, set before a channel script that may decide a removal);
/// see [`Keys::webhook_check`].
fn parse_channel_entry(text: &str) -> Option<ChannelKey> {
    let rest = text
        .strip_prefix("c\n")
        .or_else(|| text.strip_prefix("p\n"))?;
    let (app, channel) = rest.split_once('\n')?;
    Some(ChannelKey::new(
        AppId::new(app),
        ChannelName::parse(channel).ok()?,
    ))
}

/// One endpoint's stream.
#[derive(Clone)]
pub struct StreamQueue {
    connection: RedisConnection,
    key: String,
    changed: Arc<Notify>,
}

impl EndpointQueue for StreamQueue {
    async fn head(&self, max: usize) -> Result<Vec<Queued>, QueueError> {
        let reply: StreamRangeReply = self
            .connection
            .clone()
            .xrange_count(&self.key, "-", "+", max)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|entry| {
                let json: String = entry.get("e")?;
                let at_ms = entry.id.split('-').next()?.parse().ok()?;
                Some(Queued {
                    id: entry.id,
                    at_ms,
                    json: json.into(),
                })
            })
            .collect())
    }

    async fn remove(&self, ids: &[String]) -> Result<(), QueueError> {
        let _: usize = self.connection.clone().xdel(&self.key, ids).await?;
        Ok(())
    }

    async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// The regional side of a hub's webhooks.
pub struct Region {
    setup: RedisSetup,
    scripts: Arc<Scripts>,
    targets: Arc<Targets>,
    stats: Arc<HubStats>,
    queue_max: usize,
}

impl Region {
    /// Webhooks through Redis.
    pub fn new(
        setup: RedisSetup,
        targets: Arc<Targets>,
        stats: Arc<HubStats>,
        queue_max: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            setup,
            scripts: Arc::new(Scripts::default()),
            targets,
            stats,
            queue_max: queue_max.max(1),
        })
    }

    fn stream(&self, index: usize) -> String {
        self.setup.keys.webhook_queue(self.targets.target(index).id)
    }

    /// Runs the emitter: hands each emitted event to Redis, in order, retrying while Redis is
    /// unreachable.
    pub async fn emit(
        self: Arc<Self>,
        mut events: mpsc::Receiver<Emitted>,
        stop: CancellationToken,
    ) {
        while let Some(emitted) = tokio::select! {
            _ = stop.cancelled() => None,
            emitted = events.recv() => emitted,
        } {
            let mut wait = Duration::from_millis(50);
            loop {
                match self.hand_over(&emitted).await {
                    Ok(dropped) => {
                        self.stats.webhooks.count_dropped(&emitted.app, dropped);
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(message = "Cannot queue a webhook in Redis; retrying.", %error);
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                        wait = (wait * 2).min(MAX_RETRY);
                    }
                }
            }
        }
    }

    /// One event into Redis; returns how many queued events the streams' bound dropped.
    ///
    /// Removals and the arrivals that undo them were decided, and removals delayed, by the
    /// region's scripts (see the module's documentation): an arrival that reaches this hub is
    /// sent, and a removal does not reach it.
    async fn hand_over(&self, emitted: &Emitted) -> Result<usize, redis::RedisError> {
        if let Some(Delay::Leave(delayed)) = emitted.delay() {
            tracing::debug!(
                message = "A removal reached the webhooks of a region, which delays removals in Redis; ignored.",
                ?delayed
            );
            return Ok(0);
        }
        let Some(plan) = self.targets.plan(emitted) else {
            return Ok(0);
        };
        match emitted.once_per_channel() {
            Some(key) => {
                let once = self.setup.keys.webhook_once(&key);
                let window = CACHE_MISS_ONCE_PER.as_millis().to_string();
                self.push([&once, &once], "once", &window, Some(&plan))
                    .await
            }
            None => {
                let delayed = self.setup.keys.webhook_delayed();
                self.push([&delayed, &delayed], "", "", Some(&plan)).await
            }
        }
    }

    /// Runs [`PUSH`] for an event planned to its endpoints' streams (`None`: to none), with
    /// `first` as its first two keys (the key of `once`; the delayed set and the channel's
    /// record of `claim`).
    async fn push(
        &self,
        first: [&str; 2],
        mode: &str,
        member: &str,
        plan: Option<&Plan>,
    ) -> Result<usize, redis::RedisError> {
        let mut invocation = self.scripts.push.key(first[0]);
        invocation.key(first[1]);
        let json = match plan {
            Some(plan) => {
                for index in &plan.endpoints {
                    invocation.key(self.stream(*index));
                }
                plan.json.to_string()
            }
            None => String::new(),
        };
        invocation
            .arg(mode)
            .arg(member)
            .arg(self.queue_max)
            .arg(json);
        let dropped: i64 = invocation
            .invoke_async(&mut self.setup.connection.clone())
            .await?;
        Ok(dropped.max(0) as usize)
    }

    /// Runs for the hub's life: takes the courier lease when it is free, delivers while holding
    /// it, and gives it up when the hub stops.
    pub async fn lead(self: Arc<Self>, courier: Courier, stop: CancellationToken) {
        let lease = self.setup.keys.webhook_courier();
        let me = self.setup.hub_id.to_string();
        let tasks = TaskTracker::new();
        let mut leading: Option<CancellationToken> = None;
        loop {
            let held: Result<i64, _> = self
                .scripts
                .lead
                .key(&lease)
                .arg(&me)
                .arg(LEASE.as_millis() as u64)
                .invoke_async(&mut self.setup.connection.clone())
                .await;
            match (held, &leading) {
                (Ok(1), None) => {
                    tracing::info!(message = "This hub delivers the region's webhooks now.");
                    let token = stop.child_token();
                    self.deliver(&courier, &tasks, &token);
                    leading = Some(token);
                }
                (Ok(1), Some(_)) => {}
                (held, Some(token)) => {
                    // Lost (or cannot confirm) the lease: stop before another hub starts.
                    if let Err(error) = held {
                        tracing::warn!(message = "Cannot renew the webhook courier lease; stepping down.", %error);
                    } else {
                        tracing::info!(message = "Another hub delivers the region's webhooks now.");
                    }
                    token.cancel();
                    leading = None;
                    self.stats
                        .webhooks
                        .delivering
                        .store(false, Ordering::Relaxed);
                    // The hub that delivers now reports the queues.
                    let apps = self.targets.by_app.keys();
                    self.stats.webhooks.set_pending(apps.map(|app| (app, 0)));
                }
                (_, None) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(LEASE_ROUND) => {}
            }
        }
        tasks.close();
        tasks.wait().await;
        if leading.is_some() {
            let released: Result<i64, _> = self
                .scripts
                .release
                .key(&lease)
                .arg(&me)
                .invoke_async(&mut self.setup.connection.clone())
                .await;
            if let Err(error) = released {
                tracing::debug!(message = "Cannot give the webhook courier lease up; it expires.", %error);
            }
        }
    }

    /// Starts the courier's tasks: one per endpoint, the stream watcher, the delay mover.
    fn deliver(self: &Arc<Self>, courier: &Courier, tasks: &TaskTracker, stop: &CancellationToken) {
        self.stats
            .webhooks
            .delivering
            .store(true, Ordering::Relaxed);
        let mut notifies = HashMap::new();
        for index in 0..self.targets.len() {
            let changed = Arc::new(Notify::new());
            let key = self.stream(index);
            notifies.insert(key.clone(), changed.clone());
            let queue = StreamQueue {
                connection: self.setup.connection.clone(),
                key,
                changed,
            };
            tasks.spawn(
                courier
                    .clone()
                    .run(self.targets.target_arc(index), queue, stop.clone()),
            );
        }
        tasks.spawn(self.clone().watch(notifies, stop.clone()));
        tasks.spawn(self.clone().move_due(stop.clone()));
    }

    /// Wakes endpoints' couriers when their stream grows (a blocking read on a connection of its
    /// own), and keeps the queue depth current.
    async fn watch(
        self: Arc<Self>,
        notifies: HashMap<String, Arc<Notify>>,
        stop: CancellationToken,
    ) {
        let keys: Vec<String> = notifies.keys().cloned().collect();
        let mut last: Vec<String> = vec!["0-0".to_string(); keys.len()];
        let mut conn = self.setup.watch.clone();
        while !stop.is_cancelled() {
            let mut command = redis::cmd("XREAD");
            command
                .arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&keys)
                .arg(&last);
            let read = command.query_async::<Option<StreamReadReply>>(&mut conn);
            let reply = tokio::select! {
                _ = stop.cancelled() => return,
                reply = read => reply,
            };
            match reply {
                Ok(reply) => {
                    for stream in reply.map(|r| r.keys).unwrap_or_default() {
                        if let (Some(position), Some(newest)) = (
                            keys.iter().position(|key| *key == stream.key),
                            stream.ids.last(),
                        ) {
                            last[position] = newest.id.clone();
                            notifies[&stream.key].notify_one();
                        }
                    }
                    let mut pipe = redis::pipe();
                    for key in &keys {
                        pipe.xlen(key);
                    }
                    if let Ok(lengths) = pipe.query_async::<Vec<u64>>(&mut conn).await {
                        self.stats
                            .webhooks
                            .set_pending(self.pending_by_app(&keys, &lengths));
                    }
                }
                Err(error) => {
                    // The connection reconnects by itself (on a cluster: to the slot's owner).
                    tracing::debug!(message = "Webhook watch read failed; retrying.", %error);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(MAX_RETRY) => {}
                    }
                }
            }
        }
    }

    /// The events waiting per app, from the lengths of the streams `keys` (every app with an
    /// endpoint, once).
    fn pending_by_app(&self, keys: &[String], lengths: &[u64]) -> Vec<(&AppId, u64)> {
        let mut by_app: Vec<(&AppId, u64)> =
            self.targets.by_app.keys().map(|app| (app, 0)).collect();
        for index in 0..self.targets.len() {
            let target = self.targets.target(index);
            let stream = self.stream(index);
            let length = keys
                .iter()
                .position(|key| *key == stream)
                .and_then(|position| lengths.get(position));
            if let (Some(length), Some(entry)) = (
                length,
                by_app.iter_mut().find(|(app, _)| **app == target.app),
            ) {
                entry.1 += length;
            }
        }
        by_app
    }

    /// Moves due delayed events into their endpoints' streams.
    async fn move_due(self: Arc<Self>, stop: CancellationToken) {
        let delayed_key = self.setup.keys.webhook_delayed();
        while !stop.is_cancelled() {
            let due: Result<(i64, Vec<String>, Vec<String>), _> = self
                .scripts
                .due
                .key(&delayed_key)
                .arg(DUE_BATCH)
                .invoke_async(&mut self.setup.connection.clone())
                .await;
            let wait = match due {
                Ok((_, members, scores)) if !members.is_empty() => {
                    // Entries are independent (on a cluster each channel's record is on its own
                    // shard): one that fails waits for the next round, the others go on.
                    let mut failed = None;
                    for (text, score) in members.iter().zip(&scores) {
                        let moved = match parse_channel_entry(text) {
                            Some(key) => self.settle(text, score, &key).await,
                            None if text.starts_with("c\n") || text.starts_with("p\n") => {
                                // An entry of a channel this hub cannot name: it goes.
                                self.forget(text, score).await
                            }
                            None => self.claim(text).await,
                        };
                        if let Err(error) = moved {
                            failed.get_or_insert(error);
                        }
                    }
                    match failed {
                        Some(error) => {
                            tracing::warn!(message = "Cannot move a delayed webhook; retrying.", %error);
                            FAILED_MOVE_PAUSE
                        }
                        None => Duration::ZERO,
                    }
                }
                Ok((wait, _, _)) if wait >= 0 => Duration::from_millis(wait as u64).min(DELAY_LOOK),
                Ok(_) => DELAY_LOOK,
                Err(error) => {
                    tracing::warn!(message = "Cannot read the delayed webhooks; retrying.", %error);
                    MAX_RETRY
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// One Redis: claims a due member of the delayed set and queues its event in one step.
    async fn claim(&self, text: &str) -> Result<(), redis::RedisError> {
        let delayed_key = self.setup.keys.webhook_delayed();
        // A member this hub cannot read is removed all the same (its record, a key no channel
        // has, holds no time).
        let parsed = parse_member(text);
        let (record, app) = match &parsed {
            Some(Delayed::Vacated(key) | Delayed::Removed(key, _)) => {
                (self.setup.keys.webhook_pending(key), key.app.clone())
            }
            None => (self.setup.keys.webhook_pending_unknown(), AppId::new("")),
        };
        let plan = parsed.and_then(|delayed| self.targets.plan(&delayed.event()));
        let dropped = self
            .push([&delayed_key, &record], "claim", text, plan.as_ref())
            .await?;
        self.stats.webhooks.count_dropped(&app, dropped);
        Ok(())
    }

    /// A Redis Cluster: the channel's record (its slot) and the queues (the `{wh}` slot) cannot
    /// change in one step, so a due entry of the delayed set — the channel's check or marker —
    /// is settled in steps that are each safe to repeat:
    /// 1. look at the record: the removals due, the notes of removals undone once due;
    /// 2. for each note whose removal was queued (its queued key exists), queue the arrival that
    ///    undid it (once), then drop the note — so the endpoint sees the removal, then the
    ///    arrival, as it happened;
    /// 3. queue each due removal (once: its queued key is set in the same step), then forget it
    ///    from the record if the record still holds it (else an arrival undid it meanwhile and
    ///    left a note: the next round sends that arrival);
    /// 4. when nothing is due any more, schedule the channel's check for its next removal, or
    ///    remove the entry — then look once more, and bring the check back if a removal was
    ///    recorded meanwhile.
    ///
    /// A courier that dies between two steps leaves the entry in the delayed set: the next one
    /// repeats the steps, and the queued keys keep it from queueing anything twice.
    async fn settle(
        &self,
        text: &str,
        score: &str,
        key: &ChannelKey,
    ) -> Result<(), redis::RedisError> {
        let record = self.setup.keys.webhook_pending(key);
        let mut rounds = 0;
        let wait = loop {
            let (wait, due, notes) = self.peek(&record).await?;
            if due.is_empty() && notes.is_empty() {
                break wait;
            }
            if rounds == CLAIM_ROUNDS {
                break 0;
            }
            rounds += 1;
            for note in &notes {
                if let Some((at, member)) = note.strip_prefix('u').and_then(|n| n.split_once('\n'))
                    && let Some(delayed) = parse_member(member)
                {
                    let queued = self.setup.keys.webhook_queued(member, at);
                    let back = self.setup.keys.webhook_undone(member, at);
                    let plan = self.targets.plan(&delayed.arrival());
                    let dropped = self
                        .push([&back, &queued], "after", &ttl(QUEUED_FOR), plan.as_ref())
                        .await?;
                    self.stats.webhooks.count_dropped(&key.app, dropped);
                }
                let _: i64 = self.setup.connection.clone().hdel(&record, note).await?;
            }
            for pair in due.chunks(2) {
                let [member, at] = pair else { continue };
                if let Some(delayed) = parse_member(member) {
                    let queued = self.setup.keys.webhook_queued(member, at);
                    let plan = self.targets.plan(&delayed.event());
                    let dropped = self
                        .push([&queued, &queued], "once", &ttl(QUEUED_FOR), plan.as_ref())
                        .await?;
                    self.stats.webhooks.count_dropped(&key.app, dropped);
                }
                let _finished: i64 = self
                    .scripts
                    .finish
                    .key(&record)
                    .arg(member)
                    .arg(at)
                    .invoke_async(&mut self.setup.connection.clone())
                    .await?;
            }
        };
        let check = Keys::webhook_check(key);
        let gone: i64 = self
            .scripts
            .settle
            .key(self.setup.keys.webhook_delayed())
            .arg(text)
            .arg(score)
            .arg(&check)
            .arg(wait)
            .invoke_async(&mut self.setup.connection.clone())
            .await?;
        if gone == 1 {
            let (wait, due, notes) = self.peek(&record).await?;
            if wait >= 0 || !due.is_empty() || !notes.is_empty() {
                let _: i64 = self
                    .scripts
                    .index
                    .key(self.setup.keys.webhook_delayed())
                    .arg("LT")
                    .arg(&check)
                    .arg(wait.max(0))
                    .invoke_async(&mut self.setup.connection.clone())
                    .await?;
            }
        }
        Ok(())
    }

    /// Step 1 of [`Region::settle`]: `(ms until the next removal or -1, [member, due, …], notes)`.
    async fn peek(
        &self,
        record: &str,
    ) -> Result<(i64, Vec<String>, Vec<String>), redis::RedisError> {
        self.scripts
            .peek
            .key(record)
            .invoke_async(&mut self.setup.connection.clone())
            .await
    }

    /// Removes an entry of the delayed set nobody can settle (unless it changed since read).
    async fn forget(&self, text: &str, score: &str) -> Result<(), redis::RedisError> {
        let _: i64 = self
            .scripts
            .settle
            .key(self.setup.keys.webhook_delayed())
            .arg(text)
            .arg(score)
            .arg(text)
            .arg(-1)
            .invoke_async(&mut self.setup.connection.clone())
            .await?;
        Ok(())
    }
}

/// A duration as script arguments take it: whole milliseconds.
fn ttl(duration: Duration) -> String {
    duration.as_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_members_round_trip() {
        let key = ChannelKey::new(AppId::new("1"), ChannelName::parse("presence-a").unwrap());
        for delayed in [
            Delayed::Vacated(key.clone()),
            Delayed::Removed(key.clone(), "user\nwith a newline".into()),
        ] {
            assert_eq!(parse_member(&member(&delayed)), Some(delayed));
        }
        assert_eq!(parse_member("x\n1\na"), None);
        assert_eq!(parse_member("v\n1\nbad name!"), None);
    }

    #[test]
    fn a_clusters_channel_entries_name_their_channel() {
        let key = ChannelKey::new(AppId::new("1"), ChannelName::parse("presence-a").unwrap());
        for entry in [Keys::webhook_check(&key), Keys::webhook_marker(&key)] {
            assert_eq!(parse_channel_entry(&entry), Some(key.clone()));
        }
        assert_eq!(parse_channel_entry(&member(&Delayed::Vacated(key))), None);
        assert_eq!(parse_channel_entry("c\n1\nbad name!"), None);
    }
}
