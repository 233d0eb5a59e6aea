// Drives the built inbox in headless Chromium (Debian's /usr/bin/chromium via
// playwright-core) for tests/e2e/test_browser.py, step by step over stdin/stdout
// so the test can act on the server at exactly the right moments:
//
//   script → test   READY {...}         page shows "live" and the first inbox page
//   test → script   SENT <id>           a Notify for <id> was just sent
//   script → test   SEEN {...}          <id> is on the page (waits at most 1 s)
//   test → script   CLICK <id>          click it
//   script → test   ACKED {...}         it shows read and the badge dropped by one
//   test → script   KICKED <session>    the server just ended the page's stream
//   script → test   RECONNECTED {...}   the page reconnected with a new session
//   test → script   SHOT <path>         write a screenshot
//   script → test   SHOT <path>
//   test → script   QUIT (or end of input)
//
// Anything else it prints starts with LOG or ERROR. Env: INBOX_URL (the page,
// with ?api=...), CHROMIUM (default /usr/bin/chromium), CHECK_TIMEOUT_MS.

import { createInterface } from "node:readline";
import { log, logPage, say, startCheck } from "./harness.mjs";

const check = startCheck();
const { url } = check;
const SEE_WITHIN_MS = 1_000;
const STEP_MS = 10_000;

let browser;

async function main() {
  browser = await check.launch(STEP_MS);
  const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
  page.setDefaultTimeout(STEP_MS);
  logPage(page);
  page.on("requestfailed", (req) => {
    // A stream the page (or the server) ends on purpose shows up here too.
    log(`requestfailed: ${req.method()} ${req.url()} ${req.failure()?.errorText ?? ""}`);
  });

  // Every status the page goes through, recorded in the page itself.
  await page.addInitScript(() => {
    window.__states = [];
    new MutationObserver(() => {
      const el = document.getElementById("status");
      if (el) window.__states.push(el.dataset.state);
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
  });

  await page.goto(url, { waitUntil: "load" });
  const status = page.getByTestId("status");
  const badge = page.getByTestId("unread-count");
  const items = page.getByTestId("notification");
  const item = (id) => page.locator(`[data-testid="notification"][data-notification-id="${id}"]`);
  const unread = async () => Number(await badge.getAttribute("data-count"));
  const session = () => status.getAttribute("data-session");

  await page.locator('[data-testid="status"][data-state="connected"]').waitFor();
  await page.locator('[data-testid="inbox"][data-loaded="true"]').waitFor();
  say("READY", {
    unread: await unread(),
    items: await items.count(),
    ids: await items.evaluateAll((els) => els.map((el) => el.dataset.notificationId)),
    read: await items.evaluateAll((els) => els.map((el) => el.dataset.read)),
    session: await session(),
    status: await status.textContent(),
  });

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, arg = ""] = line.trim().split(/\s+/, 2);
    if (command === "SENT") {
      const started = Date.now();
      await item(arg).waitFor({ timeout: SEE_WITHIN_MS });
      say("SEEN", {
        ms: Date.now() - started,
        unread: await unread(),
        read: await item(arg).getAttribute("data-read"),
        title: await item(arg).locator(".title").textContent(),
        body: await item(arg).locator(".body").textContent(),
        first: await items.first().getAttribute("data-notification-id"),
      });
    } else if (command === "CLICK") {
      const before = await unread();
      await item(arg).click();
      await page.locator(`[data-notification-id="${arg}"][data-read="true"]`).waitFor();
      await page.locator(`[data-testid="unread-count"][data-count="${before - 1}"]`).waitFor();
      say("ACKED", { before, after: await unread() });
    } else if (command === "KICKED") {
      await page
        .locator(`[data-testid="status"][data-state="connected"]:not([data-session="${arg}"])`)
        .waitFor();
      say("RECONNECTED", {
        session: await session(),
        states: await page.evaluate(() => window.__states),
        unread: await unread(),
      });
    } else if (command === "SHOT") {
      await page.screenshot({ path: arg, fullPage: true });
      say("SHOT", { path: arg });
    } else if (command === "QUIT") {
      break;
    } else {
      console.log(`ERROR unknown command ${JSON.stringify(line)}`);
    }
  }
}

await check.run(main);
