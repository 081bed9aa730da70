// A pusher-js 8 client (the Node build) driven by JSON-line commands.
//
// Usage: node client.mjs '<options JSON>'
//
// Options: {"key", "host", "port", "signer"?, "user"?, "pusher"?: {extra pusher-js options}};
// `signer` and `user` set up the app's channel authorizer and user authenticator (see
// common.mjs): private, presence and encrypted channels and sign-in need them.
//
// stdin, one JSON command per line (the "plan", fed step by step by the Rust test):
//   {"op": "subscribe", "channel": "orders"}
//   {"op": "unsubscribe", "channel": "orders"}
//   {"op": "signin", "events": ["notice"]}   pusher.signin(), pusher.user.bind(each event), and
//                                             pusher.user.watchlist.bind('online' / 'offline')
//   {"op": "disconnect"}                      (also what closing stdin does)
//
// stdout, one JSON object per line, in the order pusher-js reported things:
//   {"type": "state", "previous": "connecting", "current": "connected"}
//   {"type": "connected", "socket_id": "123.456"}
//   {"type": "subscribed", "channel": "orders", "data": {}}
//   {"type": "subscribed", "channel": "presence-x", "count": 2, "me": {"id", "info"},
//    "members": {"<id>": <info>, ...}}        (a presence channel's `channel.members`)
//   {"type": "subscription_error", "channel": "orders", "data": {...}}
//   {"type": "member_added", "channel": "presence-x", "member": {"id", "info"}, "count": 3}
//   {"type": "member_removed", "channel": "presence-x", "member": {"id", "info"}, "count": 2}
//   {"type": "cache_miss", "channel": "cache-x", "data": <what the handler got>}
//   {"type": "subscription_count", "channel": "x", "data": {...}, "count": channel.subscriptionCount}
//   {"type": "event", "channel": "orders", "event": "order.created", "data": <as pusher-js parsed it>,
//    "metadata"?: {"user_id"}}
//   {"type": "signed_in", "user_data": {...}}  sign-in done and #server-to-user-<id> subscribed
//   {"type": "signin_error", "data": {...}}
//   {"type": "user_event", "event": "notice", "data": ...}   (pusher.user.bind)
//   {"type": "watchlist", "event": {"name": "online", "user_ids": [...]}}
//   {"type": "error", "error": {...}}          (connection errors, pusher:error frames, close codes)
//   {"type": "exit"}
// pusher-js's own log goes to stderr.

import {
  Pusher,
  emit,
  logToStderr,
  pusherOptions,
  reportConnection,
  runCommands,
} from './common.mjs';

const options = JSON.parse(process.argv[2] ?? '{}');
logToStderr();
const pusher = new Pusher(options.key, pusherOptions(options));
reportConnection(pusher);

/** `pusher:` events with a report of their own; bind_global reports every other event. */
const REPORTED = new Set([
  'pusher:subscription_succeeded',
  'pusher:subscription_error',
  'pusher:member_added',
  'pusher:member_removed',
  'pusher:cache_miss',
  'pusher:subscription_count',
]);

function membersOf(channel) {
  const members = {};
  channel.members.each(({ id, info }) => {
    members[id] = info;
  });
  return { count: channel.members.count, me: channel.members.me, members };
}

function subscribe(name) {
  const channel = pusher.subscribe(name);
  const presence = name.startsWith('presence-');
  channel.bind('pusher:subscription_succeeded', (data) => {
    if (presence) {
      emit({ type: 'subscribed', channel: name, ...membersOf(channel) });
    } else {
      emit({ type: 'subscribed', channel: name, data });
    }
  });
  channel.bind('pusher:subscription_error', (data) => {
    emit({ type: 'subscription_error', channel: name, data });
  });
  if (presence) {
    channel.bind('pusher:member_added', (member) => {
      emit({ type: 'member_added', channel: name, member, count: channel.members.count });
    });
    channel.bind('pusher:member_removed', (member) => {
      emit({ type: 'member_removed', channel: name, member, count: channel.members.count });
    });
  }
  channel.bind('pusher:cache_miss', (data) => {
    emit({ type: 'cache_miss', channel: name, data });
  });
  channel.bind('pusher:subscription_count', (data) => {
    emit({ type: 'subscription_count', channel: name, data, count: channel.subscriptionCount });
  });
  channel.bind_global((event, data, metadata) => {
    if (REPORTED.has(event)) {
      return;
    }
    const line = { type: 'event', channel: name, event, data };
    if (metadata && Object.keys(metadata).length > 0) {
      line.metadata = metadata;
    }
    emit(line);
  });
}

function signin({ events = [] }) {
  for (const event of events) {
    pusher.user.bind(event, (data) => emit({ type: 'user_event', event, data }));
  }
  pusher.user.bind('pusher:signin_error', (data) => emit({ type: 'signin_error', data }));
  for (const name of ['online', 'offline']) {
    pusher.user.watchlist.bind(name, (event) => emit({ type: 'watchlist', event }));
  }
  pusher.signin();
  // Resolves on signin_success (user_data set, #server-to-user-<id> being subscribed) and also
  // when sign-in is abandoned (user_data null; pusher-js logged why).
  pusher.user.signinDonePromise.then(() => {
    const { user_data: userData, serverToUserChannel } = pusher.user;
    if (!userData || !serverToUserChannel) {
      return;
    }
    serverToUserChannel.bind('pusher:subscription_succeeded', () => {
      emit({ type: 'signed_in', user_data: userData });
    });
  });
}

runCommands(
  {
    subscribe: ({ channel }) => subscribe(channel),
    unsubscribe: ({ channel }) => pusher.unsubscribe(channel),
    signin,
  },
  () => pusher.disconnect(),
);
