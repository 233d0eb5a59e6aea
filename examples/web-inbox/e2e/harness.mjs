// What every browser check here shares: its environment (INBOX_URL, CHROMIUM,
// CHECK_TIMEOUT_MS), the line protocol it speaks to its test (a word and JSON;
// LOG and ERROR lines), headless Chromium launched for this machine, a watchdog
// that ends a check that hangs, and the run that closes everything.

import { chromium } from "playwright-core";

export const say = (word, data = {}) => console.log(`${word} ${JSON.stringify(data)}`);
export const log = (text) => console.log(`LOG ${text.replace(/\s+/g, " ")}`);

// Without the background-networking flags Chromium keeps dialling Google's
// hosts, which this machine's closed network refuses.
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Reads the environment and starts the watchdog; exits 2 without INBOX_URL. */
export function startCheck({ timeoutMs = 45_000 } = {}) {
  const url = process.env.INBOX_URL;
  if (!url) {
    console.log("ERROR INBOX_URL is not set");
    process.exit(2);
  }
  const overall = Number(process.env.CHECK_TIMEOUT_MS || timeoutMs);
  const check = {
    url,
    browser: undefined,
    /** Headless Chromium; `backgroundNetworking` keeps the push machinery's networking on. */
    async launch(stepMs, { backgroundNetworking = false } = {}) {
      check.browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        headless: true,
        args: backgroundNetworking
          ? ARGS.filter((arg) => arg !== "--disable-background-networking")
          : ARGS,
        timeout: stepMs,
      });
      return check.browser;
    },
    /** Runs the check's steps: DONE, or ERROR and exit code 1; always closes the browser. */
    async run(main) {
      try {
        await main();
        console.log("DONE");
      } catch (err) {
        console.log(`ERROR ${String(err?.stack ?? err).split("\n").slice(0, 6).join(" | ")}`);
        process.exitCode = 1;
      } finally {
        clearTimeout(watchdog);
        await check.browser?.close().catch(() => {});
        process.stdin.destroy();
      }
    },
  };
  const watchdog = setTimeout(async () => {
    console.log(`ERROR the check took longer than ${overall} ms`);
    await check.browser?.close().catch(() => {});
    process.exit(3);
  }, overall);
  return check;
}

/** Passes a page's console and uncaught errors on as LOG lines. */
export function logPage(page, prefix = "") {
  page.on("console", (msg) => log(`${prefix}console.${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => log(`${prefix}pageerror: ${err.message}`));
}
