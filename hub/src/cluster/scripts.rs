//! The Lua scripts that make each cluster-wide decision atomic in Redis.
//!
//! Every channel script receives the channel's keys in `KEYS` ([`super::keys::CHANNEL_KINDS`]
//! order) and the key prefix, the app id and the channel name as its first three arguments. A
//! script touches only its channel's keys — one hash slot on a Redis Cluster — and never a
//! region-wide key: the live hubs are read before and passed in (`live`, hub ids joined by `,`),
//! and the indexes of channels per app and per hub are kept by the caller around the script.
//! Events are published with `PUBLISH`, or with `SPUBLISH` on a Redis Cluster ([`Scripts::new`]).
//!
//! - **Sequences** are `INCR`ed; a channel's first sequence is seeded from the server clock in
//!   microseconds, so sequences never go backwards, even after Redis lost its data.
//! - **Publications** carry an id (the hub's and a counter): the publish script keeps each one's
//!   sequence for a minute under it, so a publish the hub retries after losing the reply (Redis
//!   ran it, then the connection or the primary died) is answered, never published twice.
//! - **History** is a stream per channel whose entry ids are the sequences (`{seq}-0`), trimmed
//!   by count and expired by age, so "everything after N" is one `XRANGE (N-0 +`.
//! - **Presence** keeps sockets (socket → `{hub}\n{user}`), users' socket counts and infos, and per
//!   hub the sockets it holds, so joins, leaves and the reaping of a dead hub's sockets decide
//!   `member_added`/`member_removed` exactly once for the whole region, and publish them with
//!   their sequence in the same step.
//! - **Subscription counts** are kept per edge in each channel's `cnt` hash, with the edge's link
//!   session and the hub that wrote them: an edge that moves to another hub has its entries
//!   rewritten there (never counted twice), an earlier session never overwrites a later one, and
//!   an entry counts only while its hub's heartbeat is fresh.
//! - **Webhook removals** (`channel_vacated`, `member_removed`) are decided and delayed in the
//!   same step: the script that vacates a channel or removes a user's last socket records the
//!   removal with its due time in the channel's `whp` hash and the region's delayed set, and the
//!   script that occupies the channel again / adds the user back removes it there and says so
//!   (then neither is sent). Whichever hub acts second sees the first's decision. On a Redis
//!   Cluster the delayed set is another slot's: the scripts keep the `whp` record only (and an
//!   undoing of a removal already due leaves a note there for the courier), and the hubs keep
//!   the delayed set around them ([`WEBHOOK_INDEX`], `hub/src/webhooks/region.rs`).
//! - **Reads** are scripts too, so one answer reads counts and members at one instant and never
//!   contradicts itself.

use std::time::Duration;

use herald_shared::channel::ChannelKey;
use redis::{Script, ScriptInvocation};

use super::keys::{Keys, LUA_KEYS};

/// How long Redis keeps a publication's sequence under its id: far longer than a hub retries a
/// publish (seconds), short enough that the ids of a busy region stay a small set.
pub const PUBLICATION_ID_TTL: Duration = Duration::from_secs(60);

/// How the scripts stamp the events they make (see [`super::wire`]), checked by its tests.
#[cfg(test)]
pub(super) const STAMP_LUA: &str = PRELUDE;

/// Helpers every channel script starts with (after [`LUA_KEYS`] and the publishing command).
const PRELUDE: &str = r#"
local SEQ_TTL_MS = 7 * 24 * 3600 * 1000

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function current_seq()
  local seq = redis.call('GET', key('seq'))
  if not seq then
    seq = string.format('%.0f', now_us())
    redis.call('SET', key('seq'), seq, 'PX', SEQ_TTL_MS)
  end
  return seq
end

local function field(text) return #text .. ':' .. text end

-- The accept time a body starts with (Redis's clock, for the events scripts make).
local function stamp() return '@' .. string.format('%.0f', now_us()) .. ':' end

-- Publishes a body; returns its sequence. cache_ttl_ms > 0 also caches it.
local function publish(body, maxlen, history_ttl_ms, cache_ttl_ms)
  current_seq()
  local seq = string.format('%.0f', redis.call('INCR', key('seq')))
  redis.call('PEXPIRE', key('seq'), SEQ_TTL_MS)
  local at = string.format('%.0f', math.floor(now_us() / 1000))
  redis.call('XADD', key('hist'), 'MAXLEN', maxlen, seq .. '-0', 't', at, 'b', body)
  redis.call('PEXPIRE', key('hist'), history_ttl_ms)
  if tonumber(cache_ttl_ms) > 0 then
    redis.call('SET', key('cache'), seq .. ':' .. body, 'PX', cache_ttl_ms)
  end
  redis.call(PUBLISH_COMMAND, key('ev'), seq .. ':' .. body)
  return seq
end

local function members()
  return redis.call('HGETALL', key('pu'))
end

-- The live hubs given as ids joined by ',', as a set.
local function live_hubs(list)
  local live = {}
  for hub in string.gmatch(list, '[^,]+') do live[hub] = true end
  return live
end

-- The channel's subscription count over entries of live hubs.
local function live_count(live)
  local total = 0
  for _, entry in ipairs(redis.call('HVALS', key('cnt'))) do
    local hub, count = string.match(entry, '^%d+:(.-):(%d+)$')
    if hub and live[hub] then total = total + tonumber(count) end
  end
  return total
end

-- The channel's present users (sockets of live hubs), sorted.
local function live_users(live)
  local seen, users = {}, {}
  local sockets = redis.call('HGETALL', key('ps'))
  for i = 2, #sockets, 2 do
    local hub, user = string.match(sockets[i], '^(.-)\n(.*)$')
    if hub and live[hub] and not seen[user] then
      seen[user] = true
      table.insert(users, user)
    end
  end
  table.sort(users)
  return users
end

-- Webhooks: a removal waits delay_ms (its member of the delayed set → its due time, in the
-- channel's whp hash and in the delayed set); delay_ms 0 or '': no endpoint wants it.
local function delay_removal(member, delay_ms)
  local delay = tonumber(delay_ms)
  if not delay or delay <= 0 then return end
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + delay
  redis.call('HSET', key('whp'), member, due)
  redis.call('PEXPIRE', key('whp'), 86400000)
  -- On a Redis Cluster the region's delayed set is in another slot and is not passed.
  if webhook_delayed() then redis.call('ZADD', webhook_delayed(), due, member) end
end

-- Webhooks: an arrival undoes a waiting removal; true if there was one (then neither is sent).
-- On a Redis Cluster the courier queues a due removal in steps (hub/src/webhooks/region.rs): one
-- undone once due may be being queued right now, so it leaves a note, and the courier sends
-- this arrival after the removal if it did queue it.
local function undo_removal(member)
  local due = redis.call('HGET', key('whp'), member)
  if not due then return false end
  redis.call('HDEL', key('whp'), member)
  if webhook_delayed() then
    redis.call('ZREM', webhook_delayed(), member)
  else
    local t = redis.call('TIME')
    if tonumber(due) <= tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then
      redis.call('HSET', key('whp'), 'u' .. due .. '\n' .. member, due)
    end
  end
  return true
end

local function vacated_member() return 'v\n' .. A .. '\n' .. C end
local function removed_member(user) return 'r\n' .. A .. '\n' .. C .. '\n' .. user end

-- Removes one socket; publishes member_removed when it was its user's last (and delays its
-- webhook by delay_ms).
local function leave(socket, announce, maxlen, history_ttl_ms, delay_ms)
  local entry = redis.call('HGET', key('ps'), socket)
  if not entry then return nil end
  local owner, user = string.match(entry, '^(.-)\n(.*)$')
  redis.call('HDEL', key('ps'), socket)
  local left = redis.call('HINCRBY', key('pn'), user, -1)
  if left <= 0 then
    redis.call('HDEL', key('pn'), user)
    redis.call('HDEL', key('pu'), user)
    if announce == '1' then
      local data = cjson.encode('{"user_id":' .. cjson.encode(user) .. '}')
      local body = stamp() .. field('pusher_internal:member_removed') .. field('') .. field('') .. data
      publish(body, maxlen, history_ttl_ms, 0)
    end
    delay_removal(removed_member(user), delay_ms)
    return user
  end
  return nil
end
"#;

/// `publish(P, A, C, body, maxlen, history_ttl_ms, cache_ttl_ms, id_ttl_ms)` → sequence, with
/// the publication's id key ([`super::keys::Keys::publication`]) as the last of `KEYS`: the
/// first run publishes and keeps the sequence under the id for `id_ttl_ms`; a repeat (the hub
/// retrying after a lost reply) publishes nothing and answers that sequence again.
const PUBLISH: &str = r#"
local id = KEYS[12]
local earlier = redis.call('GET', id)
if earlier then return earlier end
local seq = publish(ARGV[4], ARGV[5], ARGV[6], ARGV[7])
redis.call('SET', id, seq, 'PX', ARGV[8])
return seq
"#;

/// `fetch(P, A, C, after or '', oldest_ms)` → `{seq, {"seq:body", …}, cached "seq:body" or ''}`:
/// the current sequence, the history after `after` no older than `oldest_ms`, the cached event.
const FETCH: &str = r#"
local seq = current_seq()
local events = {}
if ARGV[4] ~= '' then
  for _, entry in ipairs(redis.call('XRANGE', key('hist'), '(' .. ARGV[4] .. '-0', '+')) do
    local at, body = nil, nil
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 't' then at = fields[i + 1] elseif fields[i] == 'b' then body = fields[i + 1] end
    end
    if body and tonumber(at) >= tonumber(ARGV[5]) then
      table.insert(events, string.sub(entry[1], 1, -3) .. ':' .. body)
    end
  end
end
return {seq, events, redis.call('GET', key('cache')) or ''}
"#;

/// `join(P, A, C, hub, socket, user, info, limit, announce, added_body, maxlen, history_ttl_ms,
/// webhook_delay_ms)` → `{'added' | 'returned' | 'joined' | 'existing' | 'full', seq, {user,
/// info, …}}` (`added`: joined as its user's first socket, and announced; `returned`: the same,
/// but it undid the user's waiting `member_removed` webhook, so no webhook is sent). The caller adds the channel to the hub's
/// presence channels (`hp`) first.
const JOIN: &str = r#"
local hub, socket, user, info, limit = ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local announce, added, maxlen, history_ttl_ms = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local webhook_delay_ms = ARGV[13]
local entry = redis.call('HGET', key('ps'), socket)
if entry then
  local owner, previous = string.match(entry, '^(.-)\n(.*)$')
  if previous == user then
    if owner ~= hub then
      -- The socket's edge moved to this hub: it takes the socket over, nobody is told.
      redis.call('HSET', key('ps'), socket, hub .. '\n' .. user)
    end
    return {'existing', current_seq(), members()}
  end
  leave(socket, announce, maxlen, history_ttl_ms, webhook_delay_ms)
end
local sockets = tonumber(redis.call('HGET', key('pn'), user) or '0')
if sockets == 0 and redis.call('HLEN', key('pu')) >= limit then
  return {'full', current_seq(), {}}
end
redis.call('HSET', key('ps'), socket, hub .. '\n' .. user)
redis.call('HINCRBY', key('pn'), user, 1)
redis.call('HSET', key('pu'), user, info)
if sockets == 0 and announce == '1' then
  publish(added, maxlen, history_ttl_ms, 0)
  if undo_removal(removed_member(user)) then return {'returned', current_seq(), members()} end
  return {'added', current_seq(), members()}
end
return {'joined', current_seq(), members()}
"#;

/// `leave(P, A, C, hub, socket, maxlen, history_ttl_ms, webhook_delay_ms)`: removes the socket if `hub` holds
/// it (a hub that lost an edge never removes what the edge's new hub re-asserted meanwhile);
/// returns the user when that was their last socket (`member_removed`), else ''.
const LEAVE: &str = r#"
local entry = redis.call('HGET', key('ps'), ARGV[5])
if entry and string.match(entry, '^(.-)\n') == ARGV[4] then
  return leave(ARGV[5], '1', ARGV[6], ARGV[7], ARGV[8]) or ''
end
return ''
"#;

/// `count(P, A, C, hub, edge, session, count, webhook_delay_ms)` → `{outcome, mine}`: records an
/// edge's subscription count of the channel. `outcome` is 0 when a later session of the edge
/// already wrote its count (nothing changed), 2 when the write made the channel occupied (its
/// first count), 3 when it made it vacated (its last one gone: its `channel_vacated` webhook
/// waits), 4 when it made it occupied again while that webhook waited (it is undone: neither is
/// sent), else 1; `mine` is 1 while `hub` still has an entry in the channel. The caller keeps the
/// app's channels (`chs`) and the hub's counted channels (`hc`) around it.
const COUNT: &str = r#"
local hub, edge, session, count = ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local counts = key('cnt')
local entry = redis.call('HGET', counts, edge)
if entry and tonumber(string.match(entry, '^(%d+):')) > session then
  return {0, 1}
end
if count > 0 then
  local before = redis.call('HLEN', counts)
  redis.call('HSET', counts, edge, session .. ':' .. hub .. ':' .. count)
  if before == 0 then
    if undo_removal(vacated_member()) then return {4, 1} end
    return {2, 1}
  end
  return {1, 1}
end
if entry then
  redis.call('HDEL', counts, edge)
  local remaining = redis.call('HVALS', counts)
  for _, other in ipairs(remaining) do
    if string.match(other, '^%d+:(.-):') == hub then return {1, 1} end
  end
  if #remaining == 0 then
    delay_removal(vacated_member(), ARGV[8])
    return {3, 0}
  end
  return {1, 0}
end
return {1, 1}
"#;

/// `reap_counts(P, A, C, dead_hub, webhook_delay_ms)` → `{entries removed, 1 if that vacated
/// the channel, 1 if the channel has no count}`: forgets the counts a dead hub wrote and no live
/// hub rewrote (a vacated channel's webhook waits, as in `count`).
const REAP_COUNTS: &str = r#"
local dead, counts, removed = ARGV[4], key('cnt'), 0
local entries = redis.call('HGETALL', counts)
for i = 2, #entries, 2 do
  if string.match(entries[i], '^%d+:(.-):') == dead then
    redis.call('HDEL', counts, entries[i - 1])
    removed = removed + 1
  end
end
local emptied, empty = 0, 0
if redis.call('HLEN', counts) == 0 then
  empty = 1
  if removed > 0 then
    emptied = 1
    delay_removal(vacated_member(), ARGV[5])
  end
end
return {removed, emptied, empty}
"#;

/// `read(P, A, C, live)` → `{subscription_count, user_count}`: one channel's counts over the live
/// hubs, read at one instant.
const READ: &str = r#"
local live = live_hubs(ARGV[4])
return {live_count(live), #live_users(live)}
"#;

/// `users(P, A, C, live)` → the channel's present users (sockets of live hubs), sorted.
const USERS: &str = r#"
return live_users(live_hubs(ARGV[4]))
"#;

/// `announce(P, A, C, hub, interval_ms, live, maxlen, history_ttl_ms)` → `{1, count}` once it
/// published the channel's subscription count, or `{0, ms}` when another announcement was made
/// within the interval and the lock expires in `ms`.
const ANNOUNCE: &str = r#"
local lock = key('sca')
if not redis.call('SET', lock, ARGV[4], 'NX', 'PX', ARGV[5]) then
  return {0, math.max(redis.call('PTTL', lock), 1)}
end
local count = live_count(live_hubs(ARGV[6]))
local data = cjson.encode('{"subscription_count":' .. count .. '}')
local body = stamp() .. field('pusher_internal:subscription_count') .. field('') .. field('') .. data
publish(body, ARGV[7], ARGV[8], 0)
return {1, count}
"#;

/// `reap(P, A, C, dead_hub, maxlen, history_ttl_ms, webhook_delay_ms)` → `{sockets removed,
/// user, …}` (the users whose last socket that was; their webhooks wait, as in `leave`): removes the dead hub's sockets that no live hub took over.
const REAP: &str = r#"
local dead = ARGV[4]
local removed = {0}
local sockets = redis.call('HGETALL', key('ps'))
for i = 1, #sockets, 2 do
  if string.match(sockets[i + 1], '^(.-)\n') == dead then
    local user = leave(sockets[i], '1', ARGV[5], ARGV[6], ARGV[7])
    removed[1] = removed[1] + 1
    if user then table.insert(removed, user) end
  end
end
return removed
"#;

/// `user_online(KEYS: the app's online users of the hub, the app's online counts, the app's change
/// number; ARGV: user, '1' | '0', the app's watchlist channel)`: records that a user is (not)
/// online on a hub; when the region's count of hubs with the user goes from 0 to 1 (or back) it
/// publishes `online\n{n}\n{user}` (or `offline\n…`) on the app's watchlist channel, `n`
/// numbering the app's changes so that hubs can agree on who tells each watcher. Idempotent per
/// hub. Every key has the app's hash tag.
const USER_ONLINE: &str = r#"
local mine, online, changes = KEYS[1], KEYS[2], KEYS[3]
local U, channel = ARGV[1], ARGV[3]
local function announce(status)
  local n = redis.call('INCR', changes)
  redis.call('PUBLISH', channel, status .. '\n' .. n .. '\n' .. U)
end
if ARGV[2] == '1' then
  if redis.call('SADD', mine, U) == 1 then
    if redis.call('HINCRBY', online, U, 1) == 1 then
      announce('online')
    end
  end
elseif redis.call('SREM', mine, U) == 1 then
  if redis.call('HINCRBY', online, U, -1) <= 0 then
    redis.call('HDEL', online, U)
    announce('offline')
  end
end
return 1
"#;

/// `webhook_index(KEYS: the region's delayed webhooks; ARGV: 'GT' | 'LT', then member, ms, …)`:
/// on a Redis Cluster, where the channel scripts cannot reach the delayed set, the hubs keep it
/// around them: each member is due `ms` after Redis's now — `GT` for the markers set before a
/// script that may decide a removal (a later marking pushes it later), `LT` for the checks set
/// after a script that decided one (never later than an earlier removal's).
pub const WEBHOOK_INDEX: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[1], now + tonumber(ARGV[i + 1]), ARGV[i])
end
return 1
"#;

/// A channel script call with the channel's keys (and the region's delayed webhooks) in `KEYS`
/// and its first three arguments (prefix, app, channel). On a Redis Cluster (`cluster`) the
/// delayed set lives in another slot and is not passed: the channel's `whp` key stands in its
/// place (`KEYS[11]`), which the scripts read as "no delayed set here" and then keep removals in
/// `whp` only (the hubs keep the delayed set around them: [`WEBHOOK_INDEX`]).
pub fn channel_invocation<'a>(
    keys: &Keys,
    script: &'a Script,
    key: &ChannelKey,
    cluster: bool,
) -> ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    for name in keys.channel_keys(key) {
        invocation.key(name);
    }
    if cluster {
        invocation.key(keys.webhook_pending(key));
    } else {
        invocation.key(keys.webhook_delayed());
    }
    invocation
        .arg(keys.prefix())
        .arg(key.app.as_str())
        .arg(key.channel.as_str());
    invocation
}

/// What a publish stores, besides its channel: the arguments of [`PUBLISH`].
#[derive(Debug, Clone, Copy)]
pub struct PublishArgs<'a> {
    /// The event's body ([`super::wire::body`]).
    pub body: &'a str,
    /// The most events the channel's history keeps.
    pub maxlen: usize,
    /// How long the channel's history lives after its last event, in ms.
    pub history_ttl_ms: u64,
    /// How long a cache channel keeps the event, in ms; 0 when it is not cached.
    pub cache_ttl_ms: u64,
    /// The publication's id (`{hub}:{counter}`): a repeat of it publishes nothing.
    pub id: &'a str,
}

/// The scripts, loaded once.
pub struct Scripts {
    /// Whether they run on a Redis Cluster (`SPUBLISH`; the delayed set is not passed).
    sharded: bool,
    /// See [`PUBLISH`].
    pub publish: Script,
    /// The text of `publish`, for `SCRIPT LOAD` in a pipeline.
    pub publish_code: String,
    /// See [`FETCH`].
    pub fetch: Script,
    /// See [`JOIN`].
    pub join: Script,
    /// See [`LEAVE`].
    pub leave: Script,
    /// See [`REAP`].
    pub reap: Script,
    /// See [`USER_ONLINE`].
    pub user_online: Script,
    /// See [`COUNT`].
    pub count: Script,
    /// See [`REAP_COUNTS`].
    pub reap_counts: Script,
    /// See [`READ`].
    pub read: Script,
    /// See [`USERS`].
    pub users: Script,
    /// See [`ANNOUNCE`].
    pub announce: Script,
    /// See [`WEBHOOK_INDEX`].
    pub webhook_index: Script,
}

impl Scripts {
    /// The [`PUBLISH`] call of one publication on `key`.
    pub fn publish_call(
        &self,
        keys: &Keys,
        key: &ChannelKey,
        args: PublishArgs<'_>,
    ) -> ScriptInvocation<'_> {
        let mut invocation = channel_invocation(keys, &self.publish, key, self.sharded);
        invocation
            .key(keys.publication(key, args.id))
            .arg(args.body)
            .arg(args.maxlen)
            .arg(args.history_ttl_ms)
            .arg(args.cache_ttl_ms)
            .arg(PUBLICATION_ID_TTL.as_millis() as u64);
        invocation
    }

    /// Compiles the script texts (hashing them for `EVALSHA`); channel events are published with
    /// `SPUBLISH` when `sharded` (a Redis Cluster: classic `PUBLISH` would reach every node).
    pub fn new(sharded: bool) -> Self {
        let command = if sharded { "SPUBLISH" } else { "PUBLISH" };
        let code =
            |body: &str| format!("{LUA_KEYS}local PUBLISH_COMMAND = '{command}'\n{PRELUDE}{body}");
        let script = |body: &str| Script::new(&code(body));
        Self {
            sharded,
            publish: script(PUBLISH),
            publish_code: code(PUBLISH),
            fetch: script(FETCH),
            join: script(JOIN),
            leave: script(LEAVE),
            reap: script(REAP),
            user_online: Script::new(USER_ONLINE),
            count: script(COUNT),
            reap_counts: script(REAP_COUNTS),
            read: script(READ),
            users: script(USERS),
            announce: script(ANNOUNCE),
            webhook_index: Script::new(WEBHOOK_INDEX),
        }
    }
}
