// Herald's debug console (/console on a hub) in a real, headless Chromium driven by
// playwright-core (no browser download: Debian's chromium, at CHROMIUM or /usr/bin/chromium).
//
// Usage: node console.mjs '{"url": "http://127.0.0.1:8081/console", "key", "secret", "profile"}'
//
// stdin, one JSON command per line:
//   {"op": "signin"}                                   sign in with the key and secret, wait for the event stream
//   {"op": "channel", "channel": "x", "subscribers": 1} wait until the channel shows that count
//   {"op": "edges", "connections": 1, "hub"?}          wait until the edges (of that hub) show that many in all
//   {"op": "trigger", "channel", "event", "data"}      submit the test-event form, wait for its log line
//   {"op": "log", "type": "subscribers", "hub"?, "text"?} wait for a log line of that type (from that hub, containing that text)
//   {"op": "screenshot", "path": "..."}
//   {"op": "html"}                                     the page's HTML as it is now
// stdout, one JSON line per command: {"type": "<op>", ...} or {"type": "error", "message"}.
// Browser console messages and page errors go to stderr.

import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const options = JSON.parse(process.argv[2]);
const emit = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const WAIT = 15000;

// A fresh profile directory per run (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(options.profile, {
  viewport: { width: 1280, height: 900 },
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = browser.pages()[0] || (await browser.newPage());
page.on("console", (message) => process.stderr.write(`[page ${message.type()}] ${message.text()}\n`));
page.on("pageerror", (error) => process.stderr.write(`[page error] ${error.message}\n`));

const first = await page.goto(options.url);
emit({ type: "loaded", status: first.status() });

async function run(command) {
  switch (command.op) {
    case "signin": {
      await page.locator("#signin-key").waitFor({ timeout: WAIT });
      await page.fill("#signin-key", options.key);
      await page.fill("#signin-secret", options.secret);
      await page.click("#signin-submit");
      await page.locator("#console").waitFor({ state: "visible", timeout: WAIT });
      await page.waitForFunction(() => document.getElementById("status").textContent === "live", null, { timeout: WAIT });
      await page.waitForFunction(() => document.body.dataset.stream === "open", null, { timeout: WAIT });
      return { app: await page.textContent("#app") };
    }
    case "channel": {
      const row = page.locator(`#channels tr[data-channel="${command.channel}"]`);
      await page.waitForFunction(
        ([channel, subscribers]) => {
          const row = document.querySelector(`#channels tr[data-channel="${channel}"]`);
          return row && row.children[1].textContent === String(subscribers);
        },
        [command.channel, command.subscribers],
        { timeout: WAIT },
      );
      return { cells: await row.locator("td").allTextContents() };
    }
    case "edges": {
      const rows = command.hub ? `#edges tr[data-hub="${command.hub}"]` : "#edges tr[data-edge]";
      await page.waitForFunction(
        ([rows, connections]) => {
          const cells = [...document.querySelectorAll(`${rows} td.num`)];
          return cells.length > 0 && cells.reduce((sum, td) => sum + Number(td.textContent), 0) === connections;
        },
        [rows, command.connections],
        { timeout: WAIT },
      );
      return {
        rows: await page.locator("#edges tr[data-edge]").count(),
        hubs: await page.locator("#edges tr[data-edge]").evaluateAll((trs) => trs.map((tr) => tr.dataset.hub)),
      };
    }
    case "trigger": {
      const before = await page.locator('#log li[data-type="trigger"]').count();
      await page.fill("#trigger-channel", command.channel);
      await page.fill("#trigger-event", command.event);
      await page.fill("#trigger-data", command.data);
      await page.click("#trigger-submit");
      await page.waitForFunction(
        (before) => document.querySelectorAll('#log li[data-type="trigger"]').length > before,
        before,
        { timeout: WAIT },
      );
      return { error: await page.textContent("#trigger-error") };
    }
    case "log": {
      const selector = `#log li[data-type="${command.type}"]` + (command.hub ? `[data-hub="${command.hub}"]` : "");
      let line = page.locator(selector);
      if (command.text) line = line.filter({ hasText: command.text });
      line = line.first();
      await line.waitFor({ timeout: WAIT });
      return { text: await line.textContent() };
    }
    case "screenshot":
      await page.screenshot({ path: command.path, fullPage: true });
      return { path: command.path };
    case "html":
      return { html: await page.content() };
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  try {
    emit({ type: command.op, ...(await run(command)) });
  } catch (error) {
    emit({ type: "error", op: command.op, message: String(error && error.message || error) });
  }
}
await browser.close();
