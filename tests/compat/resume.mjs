// Many pusher-js 8 clients in one process, each behind its own proxy port, with or without the
// herald-resume add-on (clients/js), counting what each receives per channel.
//
// Usage: node resume.mjs '<options JSON>'
//
// Options: as client.mjs ({"key", "host", "signer", "user"?}) plus
//   "ports": [p0, p1, …]       one client per port (its proxy), all on `host`
//   "channels": ["feed", …]    each client subscribes to all of them
//   "resume": true             install the add-on on every client
// Every event the test triggers has data {"n": k}, k = 1, 2, … per channel.
//
// stdout, one JSON object per line:
//   {"type": "connected", "socket_id": "<first client's>"}   once every client connected
//   {"type": "subscribed"}       once every client has every channel subscribed (first time)
//   {"type": "report", "clients": [{"connections", "resumed", "failed", "replayed",
//     "failures": [...], "channels": {name: {"count", "in_order", "duplicates", "missing",
//     "first_missing": [...]}}}]}
// stdin:
//   {"op": "wait", "last": {channel: n}}   waits until every client received event n (the
//                                          fence) on each channel, then prints the report
//   {"op": "until_subscribed", "times": k}  prints {"type": "subscribed"} once every client
//                                          had every channel confirmed k times (k - 1 reconnects)
//   {"op": "disconnect"}

import { createRequire } from 'node:module';
import { Pusher, emit, logToStderr, pusherOptions, runCommands } from './common.mjs';

const require = createRequire(import.meta.url);
const { install } = require('../../clients/js/index.cjs');

const options = JSON.parse(process.argv[2] ?? '{}');
logToStderr();

const clients = options.ports.map((port, index) => {
  const pusher = new Pusher(options.key, pusherOptions({ ...options, port }));
  const client = {
    index,
    pusher,
    connections: 0,
    socketId: null,
    subscribed: new Map(),
    received: new Map(options.channels.map((name) => [name, []])),
    failures: [],
    herald: options.resume ? install(pusher) : null,
  };
  pusher.connection.bind('connected', () => {
    client.connections += 1;
    client.socketId = pusher.connection.socket_id;
    progress();
  });
  for (const name of options.channels) {
    const channel = pusher.subscribe(name);
    channel.bind('pusher:subscription_succeeded', () => {
      client.subscribed.set(name, (client.subscribed.get(name) ?? 0) + 1);
      progress();
    });
    channel.bind('pusher:subscription_error', (data) => {
      process.stderr.write(`client ${index}: subscription error on ${name}: ${JSON.stringify(data)}\n`);
    });
    channel.bind('herald:resume_failed', (data) => client.failures.push(data));
    channel.bind_global((event, data) => {
      if (event.startsWith('pusher:') || event.startsWith('herald:')) {
        return;
      }
      client.received.get(name).push(data?.n);
      progress();
    });
  }
  return client;
});

let announcedConnected = false;
let announcedSubscribed = false;
let waiting = null;
let subscribedTimes = null;

function progress() {
  if (!announcedConnected && clients.every((c) => c.connections > 0)) {
    announcedConnected = true;
    emit({ type: 'connected', socket_id: clients[0].socketId });
  }
  if (
    announcedConnected &&
    !announcedSubscribed &&
    clients.every((c) => c.subscribed.size === options.channels.length)
  ) {
    announcedSubscribed = true;
    emit({ type: 'subscribed' });
  }
  if (
    subscribedTimes !== null &&
    clients.every((c) => options.channels.every((name) => (c.subscribed.get(name) ?? 0) >= subscribedTimes))
  ) {
    subscribedTimes = null;
    emit({ type: 'subscribed' });
  }
  if (waiting && clients.every((c) => reached(c, waiting))) {
    waiting = null;
    emit(report());
  }
}

function reached(client, last) {
  return Object.entries(last).every(([name, n]) => client.received.get(name).includes(n));
}

function summary(received, last) {
  const seen = new Set();
  let duplicates = 0;
  let inOrder = true;
  let previous = 0;
  for (const n of received) {
    if (seen.has(n)) {
      duplicates += 1;
    }
    seen.add(n);
    if (!(n > previous)) {
      inOrder = false;
    }
    previous = n;
  }
  const missing = [];
  for (let n = 1; n <= last; n += 1) {
    if (!seen.has(n)) {
      missing.push(n);
    }
  }
  return {
    count: received.length,
    in_order: inOrder,
    duplicates,
    missing: missing.length,
    first_missing: missing.slice(0, 10),
  };
}

let lastAsked = {};

function report() {
  return {
    type: 'report',
    clients: clients.map((client) => ({
      connections: client.connections,
      resumed: client.herald?.stats.resumed ?? 0,
      failed: client.herald?.stats.failed ?? 0,
      replayed: client.herald?.stats.replayed ?? 0,
      failures: client.failures,
      channels: Object.fromEntries(
        options.channels.map((name) => [
          name,
          summary(client.received.get(name), lastAsked[name] ?? 0),
        ]),
      ),
    })),
  };
}

runCommands(
  {
    until_subscribed: ({ times }) => {
      subscribedTimes = times;
      progress();
    },
    wait: ({ last }) => {
      lastAsked = last;
      waiting = last;
      progress();
    },
  },
  () => {
    for (const client of clients) {
      client.pusher.disconnect();
    }
  },
);
