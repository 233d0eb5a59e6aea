// Drives two pages of the same user (two browser windows, headless Chromium via
// playwright-core) for tests/e2e/test_browser_inbox.py, one step per line over
// stdin/stdout, so the test can check the server between the steps:
//
//   script → test   READY {a, b}                both pages live, inbox loaded
//   test → script   MARKALL                     page A clicks "Mark all read"
//   script → test   MARKED {ms, b, a}           page B's badge shows 0 (waits at most 1 s)
//   test → script   TOOL <archive|snooze|delete> <id>   page A clicks that row button
//   script → test   TOOL {ms, a, b}             the row left the tab on A and on B (B: 1 s)
//   test → script   TAB <a|b> <all|unread|archived>
//   script → test   TAB {tab, ids}              that page shows the tab's rows
//   test → script   ACTION <id> <action id>     page A clicks the action button
//   script → test   ACTIONED {popup, opener}    the new tab's url; the row shows actioned
//   test → script   ROW <a|b> <id>              what the row shows (text, markup, links)
//   script → test   ROW {...}
//   test → script   SHOT <path>                 a screenshot of page A
//   script → test   SHOT {path}
//   test → script   QUIT (or end of input)
//
// Anything else it prints starts with LOG or ERROR. Env: INBOX_URL (the page,
// with ?api=...), CHROMIUM (default /usr/bin/chromium), CHECK_TIMEOUT_MS.

import { createInterface } from "node:readline";
import { log, logPage, say, startCheck } from "./harness.mjs";

const check = startCheck();
const { url } = check;
const WITHIN_MS = 1_000;
const STEP_MS = 10_000;

let browser;

/** One window of the inbox, and the locators the steps use on it. */
async function openPage(name) {
  const context = await browser.newContext({ viewport: { width: 900, height: 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  logPage(page, `${name} `);
  await page.goto(url, { waitUntil: "load" });
  await page.locator('[data-testid="status"][data-state="connected"]').waitFor();
  await page.locator('[data-testid="inbox"][data-loaded="true"]').waitFor();
  const rows = page.getByTestId("notification");
  const row = (id) => page.locator(`[data-testid="notification"][data-notification-id="${id}"]`);
  const badge = page.getByTestId("unread-count");
  const state = async () => ({
    unread: Number(await badge.getAttribute("data-count")),
    ids: await rows.evaluateAll((els) => els.map((el) => el.dataset.notificationId)),
    read: await rows.evaluateAll((els) => els.map((el) => el.dataset.read)),
    severities: await rows.evaluateAll((els) => els.map((el) => el.dataset.severity)),
    tab: await page.getByTestId("inbox").getAttribute("data-tab"),
  });
  return { name, context, page, row, badge, state };
}

async function main() {
  browser = await check.launch(STEP_MS);
  const a = await openPage("A");
  const b = await openPage("B");
  const pages = { a, b };
  say("READY", { a: await a.state(), b: await b.state() });

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, ...args] = line.trim().split(/\s+/);
    if (command === "MARKALL") {
      const before = await b.state();
      const started = Date.now();
      await a.page.getByTestId("mark-all-read").click();
      await b.page
        .locator('[data-testid="unread-count"][data-count="0"]')
        .waitFor({ state: "attached", timeout: WITHIN_MS }); // a badge of 0 is hidden
      const ms = Date.now() - started;
      await a.page
        .locator('[data-testid="unread-count"][data-count="0"]')
        .waitFor({ state: "attached" });
      // The rows follow the update event too: every row on B shows read.
      await b.page
        .locator('[data-testid="notification"][data-read="false"]')
        .first()
        .waitFor({ state: "detached", timeout: WITHIN_MS });
      say("MARKED", { ms, before: before.unread, a: await a.state(), b: await b.state() });
    } else if (command === "TOOL") {
      const [tool, id] = args;
      const started = Date.now();
      await a.row(id).getByTestId(tool).click();
      await a.row(id).waitFor({ state: "detached" });
      await b.row(id).waitFor({ state: "detached", timeout: WITHIN_MS });
      say("TOOL", { ms: Date.now() - started, a: await a.state(), b: await b.state() });
    } else if (command === "TAB") {
      const [which, tab] = args;
      const p = pages[which];
      await p.page.getByTestId(`tab-${tab}`).click();
      await p.page
        .locator(`[data-testid="inbox"][data-tab="${tab}"][data-loaded="true"]`)
        .waitFor();
      say("TAB", await p.state());
    } else if (command === "ACTION") {
      const [id, actionId] = args;
      const popup = a.context.waitForEvent("page");
      await a.row(id).locator(`[data-testid="action"][data-action-id="${actionId}"]`).click();
      const opened = await popup;
      await opened.waitForLoadState("domcontentloaded");
      const opener = await opened.evaluate(() => window.opener === null);
      const popupUrl = opened.url();
      await opened.close();
      await a.page.locator(`[data-notification-id="${id}"][data-actioned="true"]`).waitFor();
      await b.page
        .locator(`[data-notification-id="${id}"][data-actioned="true"]`)
        .waitFor({ timeout: WITHIN_MS });
      say("ACTIONED", {
        popup: popupUrl,
        noOpener: opener,
        read: await a.row(id).getAttribute("data-read"),
        taken: await a.row(id).locator('[data-taken="true"]').getAttribute("data-action-id"),
      });
    } else if (command === "ROW") {
      const [which, id] = args;
      const r = pages[which].row(id);
      await r.waitFor();
      say("ROW", {
        title: await r.locator(".title").textContent(),
        body: await r.locator(".body").textContent(),
        chips: await r.locator(".chip").allTextContents(),
        severity: await r.getAttribute("data-severity"),
        actions: await r.getByTestId("action").evaluateAll((els) =>
          els.map((el) => ({
            id: el.dataset.actionId,
            label: el.textContent,
            safe: el.dataset.safe,
            primary: el.classList.contains("primary"),
          })),
        ),
        // Elements inside the row that markup in the data would have made.
        injected: await r.locator("img:not(.thumb), script, b, a, iframe").count(),
        pwned: await pages[which].page.evaluate(() => window.__pwned ?? null),
      });
    } else if (command === "SHOT") {
      const [path] = args;
      await a.page.screenshot({ path, fullPage: true });
      say("SHOT", { path });
    } else if (command === "QUIT") {
      break;
    } else {
      console.log(`ERROR unknown command ${JSON.stringify(line)}`);
    }
  }
}

await check.run(main);
