// A small inbox for notify, talking to the client port from another origin
// with @connectrpc/connect-web (Connect over fetch; the server allows the page's
// origin through NOTIFY_ALLOWED_ORIGINS).
//
// Query string: ?api=http://localhost:8080&user=user-alice&tenant=acme
// (a dev-mode token, `Bearer dev:<user>:<tenant>`), or &token=<JWT>.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  DeliveryStatus,
  DeviceType,
  type Notification,
  NotificationClientService,
} from "./gen/elloloop/notify/v1/notify_pb.js";

const PAGE_SIZE = 20;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
// No event at all (the server sends a heartbeat every 30 s by default) for this
// long means the connection is dead even if the socket says otherwise.
const IDLE_TIMEOUT_MS = 75_000;

const params = new URLSearchParams(location.search);
const apiBase = (params.get("api") ?? "http://localhost:8080").replace(/\/+$/, "");
const user = params.get("user") ?? "user-alice";
const tenant = params.get("tenant") ?? "acme";
const jwt = params.get("token");
const bearer = jwt ? `Bearer ${jwt}` : `Bearer dev:${user}:${tenant}`;

const auth: Interceptor = (next) => async (req) => {
  req.header.set("Authorization", bearer);
  return next(req);
};
const client = createClient(
  NotificationClientService,
  createConnectTransport({ baseUrl: apiBase, interceptors: [auth] }),
);

// ---- state ---------------------------------------------------------------

const items = new Map<string, Notification>(); // by store id
let unread = 0;
let nextCursor = "";
let pagedOlder = false; // once older pages are loaded, a refresh keeps their cursor
let fresh = new Set<string>(); // ids that arrived live, highlighted once

// A first-page refresh's unreadCount is a snapshot taken while the call is in
// flight: what arrives or is marked read meanwhile is recorded, to be
// reconciled with the snapshot when the page comes back.
type Refresh = { arrived: Set<string>; acked: Set<string> };
const refreshing = new Set<Refresh>();
let refreshes = 0;
let countFrom = 0; // the newest refresh whose count was applied

const isUnread = (n: Notification) => n.status < DeliveryStatus.READ;

/** Adds or updates a row; its status only moves forward (what is read stays read). */
function merge(n: Notification) {
  const have = items.get(n.id);
  if (!have || have.status <= n.status) items.set(n.id, n);
}

function newestFirst(a: Notification, b: Notification): number {
  if (a.createdAtMs !== b.createdAtMs) return a.createdAtMs > b.createdAtMs ? -1 : 1;
  return a.id < b.id ? 1 : -1;
}

// ---- view ----------------------------------------------------------------

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const list = $<HTMLUListElement>("inbox");
const badge = $<HTMLSpanElement>("unread-badge");
const statusLine = $<HTMLSpanElement>("status");
const errorLine = $<HTMLDivElement>("error");
const more = $<HTMLButtonElement>("more");
const empty = $<HTMLDivElement>("empty");
const bell = $<HTMLButtonElement>("bell");
const panel = $<HTMLElement>("panel");

$("who").textContent = `${user} @ ${tenant}${jwt ? "" : " (dev token)"} · ${apiBase}`;

function setStatus(state: "connecting" | "connected" | "reconnecting" | "error", text: string) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

function showError(err: unknown) {
  errorLine.textContent = err ? String(ConnectError.from(err).message) : "";
}

function when(ms: bigint): string {
  if (ms === 0n) return "";
  const date = new Date(Number(ms));
  const ago = (Date.now() - date.getTime()) / 1000;
  if (ago < 45) return "just now";
  if (ago < 3600) return `${Math.round(ago / 60)} min ago`;
  if (ago < 86400) return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return date.toLocaleDateString();
}

function render() {
  const count = String(Math.max(0, unread));
  badge.dataset.count = count;
  badge.textContent = unread > 99 ? "99+" : count;
  bell.title = `${count} unread`;

  const rows = [...items.values()].sort(newestFirst).map((n) => {
    const li = document.createElement("li");
    li.dataset.testid = "notification";
    li.dataset.id = n.id;
    li.dataset.notificationId = n.notificationId;
    li.dataset.read = String(!isUnread(n));
    if (fresh.has(n.id)) li.className = "fresh";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "item";
    button.addEventListener("click", () => void markRead(n.id));
    const dot = document.createElement("span");
    dot.className = "dot";
    const text = document.createElement("span");
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = n.title || n.subjectRef || n.notificationId;
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = n.body;
    text.append(title, body);
    const time = document.createElement("time");
    time.className = "time";
    time.textContent = when(n.createdAtMs);
    if (n.createdAtMs) time.dateTime = new Date(Number(n.createdAtMs)).toISOString();
    button.append(dot, text, time);
    li.append(button);
    return li;
  });
  fresh = new Set();
  list.replaceChildren(...rows);
  empty.hidden = items.size > 0 || list.dataset.loaded !== "true";
  more.hidden = !nextCursor;
}

// ---- inbox ---------------------------------------------------------------

/** Loads (or reloads, after a reconnect) the newest page; the server's count wins. */
async function refreshFirstPage() {
  const mine: Refresh = { arrived: new Set(), acked: new Set() };
  const seq = ++refreshes;
  refreshing.add(mine);
  try {
    const page = await client.getNotifications({ limit: PAGE_SIZE }, { timeoutMs: 10_000 });
    for (const n of page.notifications) merge(n);
    if (!pagedOlder) nextCursor = page.nextCursor;
    if (seq > countFrom) {
      countFrom = seq;
      const onPage = new Map(page.notifications.map((n) => [n.id, n]));
      let adjust = 0;
      // Arrived live after the snapshot (the newest rows are all on page one).
      for (const id of mine.arrived) {
        const n = items.get(id);
        if (n && !onPage.has(id) && isUnread(n)) adjust++;
      }
      // Marked read after the snapshot.
      for (const id of mine.acked) {
        const n = onPage.get(id);
        if (n && isUnread(n)) adjust--;
      }
      unread = Math.max(0, page.unreadCount + adjust);
    }
    list.dataset.loaded = "true";
    showError(null);
  } finally {
    refreshing.delete(mine);
    render();
  }
}

async function loadOlder() {
  if (!nextCursor) return;
  more.disabled = true;
  try {
    const page = await client.getNotifications(
      { limit: PAGE_SIZE, cursor: nextCursor },
      { timeoutMs: 10_000 },
    );
    for (const n of page.notifications) merge(n);
    nextCursor = page.nextCursor;
    pagedOlder = true;
    render();
  } catch (err) {
    showError(err);
  } finally {
    more.disabled = false;
  }
}

async function markRead(id: string) {
  const n = items.get(id);
  if (!n || !isUnread(n)) return;
  let gone = false;
  try {
    await client.ackNotification({ id }, { timeoutMs: 10_000 });
  } catch (err) {
    gone = err instanceof ConnectError && err.code === Code.NotFound;
    if (!gone) {
      showError(err);
      return;
    }
  }
  for (const refresh of refreshing) refresh.acked.add(id);
  const current = items.get(id);
  if (current && isUnread(current)) {
    current.status = DeliveryStatus.READ;
    current.readAtMs = BigInt(Date.now());
    unread = Math.max(0, unread - 1);
  }
  if (gone) items.delete(id);
  render();
}

function received(n: Notification) {
  if (items.has(n.id)) return; // already shown (from a page, or a replay)
  items.set(n.id, n);
  fresh.add(n.id);
  for (const refresh of refreshing) refresh.arrived.add(n.id);
  if (isUnread(n)) unread++;
  render();
}

// ---- live stream, reconnecting with backoff ------------------------------

let wake: (() => void) | null = null;

/** Waits ms, or less if the browser comes back online. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      wake = null;
      resolve();
    }
    wake = done;
  });
}
addEventListener("online", () => wake?.());

/** Exponential backoff (attempt 1, 2, 3…) with "equal jitter": half fixed, half random. */
function backoff(attempt: number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt - 1, 16));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

async function streamOnce(onOpen: () => void): Promise<void> {
  const abort = new AbortController();
  let idle = setTimeout(() => abort.abort(), IDLE_TIMEOUT_MS);
  try {
    const request = { deviceType: DeviceType.BROWSER };
    const stream = client.streamEvents(request, { signal: abort.signal });
    let sessionId = "";
    for await (const ev of stream) {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(), IDLE_TIMEOUT_MS);
      if (!sessionId) {
        sessionId = ev.sessionId;
        statusLine.dataset.session = sessionId;
        onOpen();
      }
      switch (ev.event.case) {
        case "notification":
          if (ev.event.value.notification) received(ev.event.value.notification);
          break;
        case "dataChange": {
          // A hint that something shown changed: refetch, then stop redelivery.
          const key = ev.event.value.idempotencyKey;
          void refreshFirstPage()
            .then(() => client.ackDataChange({ idempotencyKey: key, sessionId }))
            .catch(showError);
          break;
        }
        case "heartbeat":
          break;
      }
    }
  } finally {
    clearTimeout(idle);
    abort.abort();
  }
}

async function live() {
  let attempt = 0;
  for (;;) {
    if (attempt === 0) setStatus("connecting", "connecting…");
    else setStatus("reconnecting", "reconnecting…");
    let opened = false;
    let failure: unknown = null;
    try {
      await streamOnce(() => {
        opened = true;
        attempt = 0;
        setStatus("connected", "live");
        // Whatever arrived while disconnected is on the first page.
        refreshFirstPage().catch(showError);
      });
    } catch (err) {
      failure = err;
    }
    attempt = opened ? 1 : attempt + 1;
    const delay = backoff(attempt);
    const why = failure ? ConnectError.from(failure) : null;
    const permanent = why?.code === Code.Unauthenticated || why?.code === Code.Unimplemented;
    const wait = permanent ? Math.max(delay, BACKOFF_MAX_MS) : delay;
    const ended = !why || why.code === Code.Unavailable || why.code === Code.Canceled;
    const reason = ended ? "stream ended" : `stream failed (${Code[why.code]})`;
    setStatus(
      permanent ? "error" : "reconnecting",
      `${reason}; reconnecting in ${(wait / 1000).toFixed(1)} s`,
    );
    if (why && permanent) showError(why);
    await pause(wait);
  }
}

// ---- start ---------------------------------------------------------------

bell.addEventListener("click", () => {
  panel.hidden = !panel.hidden;
  bell.setAttribute("aria-expanded", String(!panel.hidden));
});
more.addEventListener("click", () => void loadOlder());
render();
refreshFirstPage().catch(showError);
void live();
