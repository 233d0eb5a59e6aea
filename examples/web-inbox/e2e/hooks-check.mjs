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
import { chromium } from "playwright-core";

const url = process.env.INBOX_URL;
if (!url) {
  console.log("ERROR INBOX_URL is not set");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const overall = Number(process.env.CHECK_TIMEOUT_MS || 45_000);
const WITHIN_MS = 1_000;
const STEP_MS = 10_000;

const say = (word, data = {}) => console.log(`${word} ${JSON.stringify(data)}`);
const log = (text) => console.log(`LOG ${text.replace(/\s+/g, " ")}`);

let browser;
const watchdog = setTimeout(async () => {
  console.log(`ERROR the check took longer than ${overall} ms`);
  await browser?.close().catch(() => {});
  process.exit(3);
}, overall);

async function main() {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    timeout: STEP_MS,
  });
  const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
  page.setDefaultTimeout(STEP_MS);
  page.on("console", (msg) => log(`console.${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => log(`pageerror: ${err.message}`));

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

try {
  await main();
  console.log("DONE");
} catch (err) {
  console.log(
    `ERROR ${String(err?.stack ?? err)
      .split("\n")
      .slice(0, 6)
      .join(" | ")}`,
  );
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser?.close().catch(() => {});
  process.stdin.destroy();
}
