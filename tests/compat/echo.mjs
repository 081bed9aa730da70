// A Laravel Echo 2 client (`broadcaster: 'pusher'` over the pusher-js Node build) driven by
// JSON-line commands, the way a Laravel front end uses it.
//
// Usage: node echo.mjs '<options JSON>'
//
// Options: as client.mjs ({"key", "host", "port", "signer", "user", "pusher"?}, and "resume":
// true for the resume add-on of clients/js, which reports {"type": "resumed" | "resume_failed",
// "channel", …} lines); the app's
// authorizers go to pusher-js through Echo as `channelAuthorization.customHandler` and
// `userAuthentication.customHandler` (common.mjs), so no HTTP auth endpoint is needed.
//
// stdin, one JSON command per line. `kind` is the Echo method that names the channel:
// "channel", "private", "encryptedPrivate" or "join" (presence).
//   {"op": "subscribe", "kind": "private", "channel": "orders", "listen": [".shipped"],
//    "whispers": ["typing"]}
//       Echo[kind](channel).listen(each event) and .listenForWhisper(each whisper); "join" also
//       binds here / joining / leaving, the others bind subscribed / error.
//   {"op": "whisper", "kind": "private", "channel": "orders", "event": "typing", "data": {...}}
//   {"op": "leave", "channel": "orders"}       Echo.leave(channel)
//   {"op": "disconnect"}                       Echo.disconnect() (also what closing stdin does)
//
// stdout, one JSON object per line, in the order Echo called back (`channel` is the pusher-js
// channel name, e.g. "private-orders"):
//   {"type": "state" | "connected" | "error" | "exit", ...}    as client.mjs
//   {"type": "subscribed", "channel"}                           .subscribed()
//   {"type": "subscription_error", "channel", "data"}           .error()
//   {"type": "here", "channel", "users": [<user_info>, ...]}    .here()
//   {"type": "joining" | "leaving", "channel", "user": <user_info>}
//   {"type": "event", "channel", "event": ".shipped", "data"}   .listen(event) — `event` as given
//   {"type": "whisper", "channel", "event": "typing", "data", "metadata"?: {"user_id"}}
//                                                               .listenForWhisper(event)

import { createRequire } from 'node:module';
import Echo from 'laravel-echo';
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
// With `"resume": true`, the two-line setup of clients/js/README.md: the add-on wraps the
// pusher-js class Echo instantiates.
const { withResume } = createRequire(import.meta.url)('../../clients/js/index.cjs');
const echo = new Echo({
  broadcaster: 'pusher',
  key: options.key,
  Pusher: options.resume ? withResume(Pusher) : Pusher,
  withoutInterceptors: true,
  ...pusherOptions(options),
});
reportConnection(echo.connector.pusher);
if (options.resume) {
  echo.connector.pusher.herald.on('resumed', (data) => emit({ type: 'resumed', ...data }));
  echo.connector.pusher.herald.on('resume_failed', (data) => emit({ type: 'resume_failed', ...data }));
}

function channelOf(kind, name) {
  const method = { channel: 'channel', private: 'private', encryptedPrivate: 'encryptedPrivate', join: 'join' }[kind];
  if (!method) {
    throw new Error(`unknown channel kind ${JSON.stringify(kind)}`);
  }
  return echo[method](name);
}

function subscribe({ kind, channel: name, listen = [], whispers = [] }) {
  const channel = channelOf(kind, name);
  const channelName = channel.name;
  if (kind === 'join') {
    channel
      .here((users) => emit({ type: 'here', channel: channelName, users }))
      .joining((user) => emit({ type: 'joining', channel: channelName, user }))
      .leaving((user) => emit({ type: 'leaving', channel: channelName, user }));
  } else {
    channel.subscribed(() => emit({ type: 'subscribed', channel: channelName }));
  }
  channel.error((data) => emit({ type: 'subscription_error', channel: channelName, data }));
  for (const event of listen) {
    channel.listen(event, (data) => emit({ type: 'event', channel: channelName, event, data }));
  }
  for (const event of whispers) {
    // pusher-js passes presence whispers' `user_id` as the second argument; Echo passes it on.
    channel.listenForWhisper(event, (data, metadata) => {
      const line = { type: 'whisper', channel: channelName, event, data };
      if (metadata && Object.keys(metadata).length > 0) {
        line.metadata = metadata;
      }
      emit(line);
    });
  }
}

runCommands(
  {
    subscribe,
    whisper: ({ kind, channel, event, data }) => channelOf(kind, channel).whisper(event, data),
    leave: ({ channel }) => echo.leave(channel),
  },
  () => echo.disconnect(),
);
