// Drives tests/e2e/sse_page/index.html (a plain `new EventSource(url)`) in
// headless Chromium (Debian's, via the web inbox's playwright-core) for
// tests/e2e/test_browser_sse.py, step by step over stdin/stdout:
//
//   script → test   READY {...}         the page's stream is open (its first session id)
//   test → script   SENT <id>           a Notify for <id> was sent
//   script → test   SEEN {...}          <id> reached the page (waits at most 1 s)
//   test → script   KICKED <session>    the server just ended that stream
//   script → test   RECONNECTED {...}   EventSource reconnected by itself (a new session)
//   test → script   QUIT (or end of input)
//
// Anything else it prints starts with LOG or ERROR. Env: INBOX_URL (the page,
// with ?events=...), CHROMIUM (default /usr/bin/chromium).

import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../../examples/web-inbox/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const url = process.env.INBOX_URL;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const SEE_WITHIN_MS = 1_000;
const STEP_MS = 10_000;

const say = (word, data = {}) => console.log(`${word} ${JSON.stringify(data)}`);
const log = (text) => console.log(`LOG ${text.replace(/\s+/g, " ")}`);

let browser;
const watchdog = setTimeout(async () => {
  console.log("ERROR the check took longer than 45 s");
  await browser?.close().catch(() => {});
  process.exit(3);
}, 45_000);

async function main() {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    timeout: STEP_MS,
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on("console", (msg) => log(`console.${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => log(`pageerror: ${err.message}`));
  // The Last-Event-ID each stream request carried, as the browser sent it.
  const lastEventIds = [];
  page.on("request", async (request) => {
    if (!request.url().includes("/v1/events")) return;
    const headers = await request.allHeaders();
    lastEventIds.push(headers["last-event-id"] ?? null);
  });
  const state = () => page.evaluate(() => window.__sse);

  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => window.__sse.sessions.length > 0);
  say("READY", await state());

  for await (const line of createInterface({ input: process.stdin })) {
    const [command, arg] = line.trim().split(/\s+/, 2);
    if (command === "SENT") {
      await page.waitForFunction(
        (id) => window.__sse.notifications.some((n) => n.id === id),
        arg,
        { timeout: SEE_WITHIN_MS },
      );
      say("SEEN", await state());
    } else if (command === "KICKED") {
      await page.waitForFunction(
        (old) => window.__sse.sessions.length > 0 && window.__sse.sessions.at(-1) !== old,
        arg,
      );
      say("RECONNECTED", { ...(await state()), lastEventIds });
    } else if (command === "QUIT") {
      break;
    }
  }
  await browser.close();
  say("DONE");
}

main()
  .catch(async (err) => {
    console.log(`ERROR ${String(err?.stack ?? err).replace(/\s+/g, " ")}`);
    await browser?.close().catch(() => {});
    process.exitCode = 1;
  })
  .finally(() => clearTimeout(watchdog));
