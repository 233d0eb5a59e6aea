// Drives the React page (react.html, on @notify/web/react's hooks) in headless
// Chromium for tests/e2e/test_browser_hooks.py, one step per line over
// stdin/stdout, so the test can act on the server between the steps:
//
//   script → test   READY {...}            live (useNotificationStream), rows loaded
//                                          (useNotifications), badge (useCounts)
//   test → script   SENT <id>              a Notify for <id> was just sent
//   script → test   SEEN {...}             <id> is listed (waits at most 1 s)
//   test → script   CLICK <id>             click the row (useMarkNotifications: read)
//   script → test   ACKED {before, after}  the row shows read, the badge dropped by one
//   test → script   TAB <all|unread>
//   script → test   TAB {...}              that tab's rows (a second useNotifications)
//   test → script   KICKED <session>       the server just ended the page's stream
//   script → test   RECONNECTED {...}      live again on a new session; every status seen
//   test → script   WAITFOR <id>           wait (1 s at most) until <id> is listed
//   script → test   LISTED {...}
//   test → script   MARKALL                click "Mark all read"
//   script → test   MARKED {...}           the badge shows 0, no row unread
//   test → script   PREF <category>        toggle usePreferences' checkbox
//   script → test   PREF {checked}
//   test → script   SHOT <path>            a screenshot
//   script → test   SHOT {path}
//   test → script   QUIT (or end of input)
//
// Anything else it prints starts with LOG or ERROR. Env: INBOX_URL (react.html
// with ?api=...), CHROMIUM (default /usr/bin/chromium), CHECK_TIMEOUT_MS.

import { createInterface } from "node:readline";
import { log, logPage, say, startCheck } from "./harness.mjs";

const check = startCheck();
const { url } = check;
const WITHIN_MS = 1_000;
const STEP_MS = 10_000;

let browser;

async function main() {
  browser = await check.launch(STEP_MS);
  const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
  page.setDefaultTimeout(STEP_MS);
  logPage(page);

  // Every status the stream hook goes through, recorded in the page itself.
  await page.addInitScript(() => {
    window.__states = [];
    new MutationObserver(() => {
      const el = document.getElementById("status");
      const state = el?.dataset.state;
      if (state && window.__states.at(-1) !== state) window.__states.push(state);
    }).observe(document, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ["data-state"],
    });
  });

  await page.goto(url, { waitUntil: "load" });
  const status = page.getByTestId("status");
  const badge = page.getByTestId("unread-count");
  const rows = page.getByTestId("notification");
  const row = (id) => page.locator(`[data-testid="notification"][data-notification-id="${id}"]`);
  const unread = async () => Number(await badge.getAttribute("data-count"));
  const state = async () => ({
    unread: await unread(),
    ids: await rows.evaluateAll((els) => els.map((el) => el.dataset.notificationId)),
    read: await rows.evaluateAll((els) => els.map((el) => el.dataset.read)),
    tab: await page.getByTestId("inbox").getAttribute("data-tab"),
    session: await status.getAttribute("data-session"),
  });

  await page.locator('[data-testid="status"][data-state="live"]').waitFor();
  await page.locator('[data-testid="inbox"][data-loaded="true"]').waitFor();
  await page.locator('[data-testid="preferences"][data-loaded="true"]').waitFor();
  say("READY", await state());

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, arg = ""] = line.trim().split(/\s+/, 2);
    if (command === "SENT" || command === "WAITFOR") {
      const started = Date.now();
      await row(arg).waitFor({ timeout: WITHIN_MS });
      say(command === "SENT" ? "SEEN" : "LISTED", {
        ms: Date.now() - started,
        title: await row(arg).locator(".title").textContent(),
        ...(await state()),
      });
    } else if (command === "CLICK") {
      const before = await unread();
      await row(arg).locator(".item").click();
      await page.locator(`[data-notification-id="${arg}"][data-read="true"]`).waitFor();
      await page.locator(`[data-testid="unread-count"][data-count="${before - 1}"]`).waitFor();
      say("ACKED", { before, after: await unread() });
    } else if (command === "TAB") {
      await page.getByTestId(`tab-${arg}`).click();
      await page.locator(`[data-testid="inbox"][data-tab="${arg}"][data-loaded="true"]`).waitFor();
      say("TAB", await state());
    } else if (command === "KICKED") {
      await page
        .locator(`[data-testid="status"][data-state="live"]:not([data-session="${arg}"])`)
        .waitFor();
      say("RECONNECTED", {
        states: await page.evaluate(() => window.__states),
        ...(await state()),
      });
    } else if (command === "MARKALL") {
      await page.getByTestId("mark-all-read").click();
      await page.locator('[data-testid="unread-count"][data-count="0"]').waitFor();
      await page
        .locator('[data-testid="notification"][data-read="false"]')
        .first()
        .waitFor({ state: "detached", timeout: WITHIN_MS });
      say("MARKED", await state());
    } else if (command === "PREF") {
      const box = page.getByTestId(`pref-${arg}`);
      const before = await box.isChecked();
      await box.click();
      await page
        .locator(`[data-testid="pref-${arg}"]${before ? ":not(:checked)" : ":checked"}`)
        .waitFor();
      say("PREF", { before, checked: await box.isChecked() });
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
