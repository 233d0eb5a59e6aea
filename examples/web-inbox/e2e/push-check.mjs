// Drives the inbox's "Enable push" and its service worker in headless Chromium
// (Debian's /usr/bin/chromium via playwright-core) for tests/e2e/test_browser_push.py,
// step by step over stdin/stdout:
//
//   script → test   READY {...}        the page is live, the button shown, permission granted
//   test → script   ENABLE             click "Enable push"
//   script → test   ENABLED {state, detail, worker}
//                                      the button's end state ("on", or "error" with the
//                                      browser's reason) and whether sw.js is active
//   test → script   PUSH <json>        deliver <json> to the service worker as a push
//                                      (DevTools' ServiceWorker.deliverPushMessage: the
//                                      browser's push service is bypassed, not the worker)
//   script → test   SHOWN {...}        the system notification the worker showed
//   test → script   QUIT (or end of input)
//
// Anything else it prints starts with LOG or ERROR. Env: INBOX_URL (the page,
// with ?api=...&vapid=...), CHROMIUM (default /usr/bin/chromium), CHECK_TIMEOUT_MS.

import { createInterface } from "node:readline";
import { log, logPage, say, startCheck } from "./harness.mjs";

const check = startCheck({ timeoutMs: 60_000 });
const { url } = check;
const STEP_MS = 15_000;

let browser;

async function main() {
  browser = await check.launch(STEP_MS, { backgroundNetworking: true });
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const origin = new URL(url).origin;
  await context.grantPermissions(["notifications"], { origin });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  logPage(page);

  // The worker's registration id, for delivering pushes through DevTools.
  const cdp = await context.newCDPSession(page);
  const registrations = new Map(); // scope url -> registration id
  cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations: updated }) => {
    for (const r of updated) if (!r.isDeleted) registrations.set(r.scopeURL, r.registrationId);
  });
  await cdp.send("ServiceWorker.enable");
  // Playwright grants "notifications"; a push subscription needs "push" too.
  await cdp.send("Browser.setPermission", {
    permission: { name: "push", userVisibleOnly: true },
    setting: "granted",
    origin,
  });

  await page.goto(url, { waitUntil: "load" });
  await page.locator('[data-testid="status"][data-state="connected"]').waitFor();
  const button = page.getByTestId("enable-push");
  await button.waitFor({ state: "visible" });
  say("READY", {
    label: await button.textContent(),
    permission: await page.evaluate(() => Notification.permission),
  });

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const space = line.indexOf(" ");
    const command = (space < 0 ? line : line.slice(0, space)).trim();
    const arg = space < 0 ? "" : line.slice(space + 1);
    if (command === "ENABLE") {
      await button.click();
      await page
        .locator('[data-testid="enable-push"]:is([data-state="on"], [data-state="error"])')
        .waitFor();
      const worker = await page.evaluate(async () => {
        const registration = await navigator.serviceWorker.getRegistration();
        return {
          active: Boolean(registration?.active),
          scope: registration?.scope ?? "",
          script: registration?.active?.scriptURL ?? "",
        };
      });
      say("ENABLED", {
        state: await button.getAttribute("data-state"),
        label: await button.textContent(),
        detail: await button.getAttribute("title"),
        worker,
      });
    } else if (command === "PUSH") {
      const message = JSON.parse(arg);
      const scope = await page.evaluate(
        async () => (await navigator.serviceWorker.ready).scope,
      );
      const deadline = Date.now() + STEP_MS;
      while (!registrations.has(scope) && Date.now() < deadline) {
        await new Promise((resolve) => cdp.once("ServiceWorker.workerRegistrationUpdated", resolve));
      }
      await cdp.send("ServiceWorker.deliverPushMessage", {
        origin,
        registrationId: registrations.get(scope),
        data: JSON.stringify(message),
      });
      const shown = await page.waitForFunction(
        async (tag) => {
          const registration = await navigator.serviceWorker.ready;
          const found = await registration.getNotifications({ tag });
          if (!found.length) return null;
          const n = found[0];
          return {
            title: n.title,
            body: n.body,
            tag: n.tag,
            data: n.data,
            actions: (n.actions ?? []).map((a) => ({ action: a.action, title: a.title })),
            requireInteraction: n.requireInteraction,
            count: found.length,
          };
        },
        message.id,
        { polling: 100 },
      );
      say("SHOWN", await shown.jsonValue());
    } else if (command === "QUIT") {
      break;
    } else {
      console.log(`ERROR unknown command ${JSON.stringify(line)}`);
    }
  }
}

await check.run(main);
