// The official `pusher` npm server SDK, running a JSON list of operations in order.
//
// Usage: node trigger.mjs '<request JSON>'
//
// Request: {"server": {"appId", "key", "secret", "host", "port", "useTLS"?,
// "encryptionMasterKeyBase64"?},
// "ops": [...]}, where each op is
//   {"op": "trigger", "channels": "ch" | ["ch", ...], "event": "name", "data": <any>, "params": {...}}
//   {"op": "triggerBatch", "batch": [{"channel", "name", "data", "socket_id"?, "info"?}, ...]}
//   {"op": "sendToUser", "user": "id", "event": "name", "data": <any>}
//   {"op": "terminateUserConnections", "user": "id"}
//   {"op": "get", "path": "/channels", "params": {...}}
// With the master key, triggers on `private-encrypted-` channels are encrypted by the SDK.
// `params` is the SDK's own optional argument (`socket_id`, `info`). `data` goes to the SDK as it
// is: objects are JSON-encoded by the SDK, strings are sent unchanged.
//
// stdout, one JSON line per op, in order:
//   {"op": "trigger", "status": 200, "body": <the reply body, parsed>}
//   {"op": "trigger", "error": "message", "status": 400, "body": "<reply body text>"}
// The process exits 0 once every op has run, whatever their outcome: the Rust test judges them.

import PusherServer from 'pusher';

const request = JSON.parse(process.argv[2]);
const pusher = new PusherServer({ useTLS: false, ...request.server });

const operations = {
  trigger: (op) => pusher.trigger(op.channels, op.event, op.data, op.params),
  triggerBatch: (op) => pusher.triggerBatch(op.batch),
  sendToUser: (op) => pusher.sendToUser(op.user, op.event, op.data),
  terminateUserConnections: (op) => pusher.terminateUserConnections(op.user),
  get: (op) => pusher.get({ path: op.path, params: op.params ?? {} }),
};

for (const op of request.ops) {
  const run = operations[op.op];
  if (!run) {
    throw new Error(`unknown op ${JSON.stringify(op.op)}`);
  }
  try {
    const response = await run(op);
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    process.stdout.write(`${JSON.stringify({ op: op.op, status: response.status, body })}\n`);
  } catch (error) {
    // RequestError carries the HTTP status and body; anything else is a transport failure.
    const line = { op: op.op, error: error.message, status: error.status, body: error.body };
    if (error.error) {
      line.cause = String(error.error);
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
}
