// An app's webhook endpoint: a real HTTP server that checks every request with the official
// SDKs' webhook verification — the npm `pusher` SDK's webhook() / isValid() here, and the PyPI
// `pusher` SDK's validate_webhook() in webhook_verify.py — and answers as told.
//
// Usage: node webhook_receiver.mjs '{"appId", "key", "secret", "python": "<venv python>"}'
//
// stdout, one JSON line each:
//   {"type": "ready", "port": 41234}
//   {"type": "request", "n": 1, "status": 200, "node_valid": true, "python_valid": true,
//    "answered_ms": <when the answer went out: ms on this process's monotonic clock>,
//    "key": "<X-Pusher-Key>", "content_type": "application/json", "time_ms": ..., "events": [...],
//    "headers": {<lower-case request headers, signature excluded>, "path": "<request path>",
//                "names": [<header names as sent>]}}
// stdin, one JSON command a line:
//   {"respond": [500, 500, 500]}   answer the next requests with these statuses, then as the mode says
//   {"mode": "ok"}                  answer 200 (the start)
//   {"mode": "fail"}                answer 500
//   {"mode": "hang"}                never answer (the sender times out)
// A request that either SDK rejects is answered 401 and reported with the verdicts.

import http from 'node:http';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import Pusher from 'pusher';

const options = JSON.parse(process.argv[2]);
const pusher = new Pusher({ appId: options.appId, key: options.key, secret: options.secret });
const here = path.dirname(fileURLToPath(import.meta.url));

const out = (line) => process.stdout.write(JSON.stringify(line) + '\n');

// The Python verifier: one JSON request a line in, one verdict a line out, in order.
const python = spawn(options.python, [path.join(here, 'webhook_verify.py'), JSON.stringify(options)], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
python.on('exit', (code) => {
  process.stderr.write(`webhook_verify.py exited with ${code}\n`);
  process.exit(1);
});
const verdicts = [];
readline.createInterface({ input: python.stdout }).on('line', (line) => {
  const waiting = verdicts.shift();
  if (waiting) waiting(JSON.parse(line));
});
// Requests are verified one after another, so verdicts come back in order.
let chain = Promise.resolve();
const verifyInPython = (key, signature, body) => {
  const verdict = new Promise((resolve) => verdicts.push(resolve));
  python.stdin.write(JSON.stringify({ key, signature, body }) + '\n');
  return verdict;
};

let mode = 'ok';
const planned = [];
let n = 0;

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const rawBody = Buffer.concat(chunks).toString('utf8');
    chain = chain.then(async () => {
      n += 1;
      const webhook = pusher.webhook({ headers: req.headers, rawBody });
      const nodeValid = req.method === 'POST' && webhook.isValid();
      const verdict = await verifyInPython(
        req.headers['x-pusher-key'] ?? '',
        req.headers['x-pusher-signature'] ?? '',
        rawBody,
      );
      const valid = nodeValid && verdict.valid;
      let status = 401;
      if (valid) {
        status = planned.length > 0 ? planned.shift() : mode === 'fail' ? 500 : mode === 'hang' ? 0 : 200;
      }
      const headers = { ...req.headers, path: req.url, names: req.rawHeaders.filter((_, i) => i % 2 === 0) };
      delete headers['x-pusher-signature'];
      out({
        type: 'request',
        n,
        status,
        answered_ms: performance.now(),
        node_valid: nodeValid,
        python_valid: verdict.valid,
        key: req.headers['x-pusher-key'] ?? null,
        content_type: req.headers['content-type'] ?? null,
        time_ms: nodeValid ? webhook.getTime().getTime() : null,
        events: nodeValid ? webhook.getEvents() : null,
        python_events: verdict.events ?? null,
        headers,
      });
      if (status === 0) return; // hang: never answer
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'no');
    });
  });
});

server.listen(0, '127.0.0.1', () => out({ type: 'ready', port: server.address().port }));

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line);
  if (command.respond) planned.push(...command.respond);
  if (command.mode) mode = command.mode;
  out({ type: 'ack' });
});
process.stdin.on('end', () => process.exit(0));
