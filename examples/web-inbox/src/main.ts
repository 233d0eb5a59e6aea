// A small inbox for notify, talking to the client port from another origin
// with @connectrpc/connect-web (Connect over fetch; the server allows the page's
// origin through NOTIFY_ALLOWED_ORIGINS).
//
// Query string: ?api=http://localhost:8080&user=user-alice&tenant=acme
// (a dev-mode token, `Bearer dev:<user>:<tenant>`), or &token=<JWT>; &vapid=<key>
// offers Web Push (src/push.ts, sw.js).
//
// The bell shows the server's unread count: every stream gets a `counts` event
// right after its handshake and whenever the user's inbox changes on any tab
// or device, so this page only predicts the count between its own action and
// that event. Rows follow `update` events (their new state, or deletedIds), so
// what one tab marks, archives or deletes changes every other tab too.

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  type Action,
  ArchiveScope,
  type Counts,
  DeliveryStatus,
  DeviceType,
  Mark,
  type Notification,
  NotificationClientService,
  type NotificationFilter,
  NotificationFilterSchema,
  ReadScope,
} from "./gen/elloloop/notify/v1/notify_pb.js";
import { isUnread, renderRow, type RowHandlers } from "./row.js";
import { setupPushButton } from "./push.js";

const PAGE_SIZE = 20;
const SNOOZE_MS = 60 * 60 * 1000;
const CALL = { timeoutMs: 10_000 };
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

type Tab = "all" | "unread" | "archived";
const TABS: readonly Tab[] = ["all", "unread", "archived"];

let tab: Tab = "all";
let tabSeq = 0; // bumped on every tab switch: late pages of the old tab are dropped
const items = new Map<string, Notification>(); // the current tab's rows, by store id
let unread = 0;
let unseen = 0;
let live = false; // the stream is open: its counts events are the truth
let nextCursor = "";
let pagedOlder = false; // once older pages are loaded, a refresh keeps their cursor
let fresh = new Set<string>(); // ids that arrived live, highlighted once

function filterOf(which: Tab): NotificationFilter {
  if (which === "unread") return create(NotificationFilterSchema, { read: ReadScope.UNREAD });
  if (which === "archived") {
    return create(NotificationFilterSchema, { archived: ArchiveScope.ARCHIVED });
  }
  return create(NotificationFilterSchema); // the inbox: not archived, visible
}

/** Whether a row in state `n` is listed on tab `which` right now. */
function belongs(n: Notification, which: Tab): boolean {
  const archived = n.archivedAtMs !== 0n;
  if (which === "archived") return archived;
  const hidden = archived || n.snoozedUntilMs > BigInt(Date.now());
  return !hidden && (which === "all" || isUnread(n));
}

function newestFirst(a: Notification, b: Notification): number {
  if (a.createdAtMs !== b.createdAtMs) return a.createdAtMs > b.createdAtMs ? -1 : 1;
  return a.id < b.id ? 1 : -1;
}

/** The oldest row loaded: a row older than it belongs to a page not loaded yet. */
function oldestLoaded(): Notification | undefined {
  let oldest: Notification | undefined;
  for (const n of items.values()) if (!oldest || newestFirst(n, oldest) > 0) oldest = n;
  return oldest;
}

/**
 * Puts a freshly loaded page in place: rows of its time range that it no
 * longer lists left the tab (read, archived or deleted while this page was
 * not listening). Rows newer than the page arrived live during the call.
 */
function replaceRange(page: Notification[], last: boolean) {
  const newest = page[0];
  const oldest = page[page.length - 1];
  for (const [id, n] of items) {
    const inRange =
      (!newest || newestFirst(n, newest) >= 0) && (last || !oldest || newestFirst(n, oldest) <= 0);
    if (inRange) items.delete(id);
  }
  for (const n of page) if (belongs(n, tab)) items.set(n.id, n);
}

/** Applies a row's new state to the current tab: listed, replaced or dropped. */
function apply(n: Notification) {
  if (!belongs(n, tab)) {
    items.delete(n.id);
    return;
  }
  const oldest = oldestLoaded();
  if (items.has(n.id) || !nextCursor || !oldest || newestFirst(n, oldest) < 0) {
    items.set(n.id, n);
  }
}

function setCounts(counts: Counts | undefined) {
  if (!counts) return;
  unread = counts.unread;
  unseen = counts.unseen;
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
const markAll = $<HTMLButtonElement>("mark-all-read");
const tabButtons = new Map(TABS.map((name) => [name, $<HTMLButtonElement>(`tab-${name}`)]));

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

const handlers: RowHandlers = {
  read: (n) => void markRead(n),
  action: (n, action, url) => void takeAction(n, action, url),
  archive: (n) => void mark(n, Mark.ARCHIVED),
  unarchive: (n) => void mark(n, Mark.UNARCHIVED),
  snooze: (n) => void mark(n, Mark.SNOOZED, { snoozeUntilMs: BigInt(Date.now() + SNOOZE_MS) }),
  remove: (n) => void remove(n),
};

function render() {
  const count = String(Math.max(0, unread));
  badge.dataset.count = count;
  badge.dataset.unseen = String(Math.max(0, unseen));
  badge.textContent = unread > 99 ? "99+" : count;
  bell.title = `${count} unread`;
  markAll.disabled = unread <= 0;
  for (const [name, button] of tabButtons) {
    button.setAttribute("aria-selected", String(name === tab));
  }
  list.dataset.tab = tab;

  const rows = [...items.values()]
    .sort(newestFirst)
    .map((n) =>
      renderRow(n, {
        archived: tab === "archived",
        fresh: fresh.has(n.id),
        when: when(n.createdAtMs),
        handlers,
      }),
    );
  fresh = new Set();
  list.replaceChildren(...rows);
  empty.hidden = items.size > 0 || list.dataset.loaded !== "true";
  empty.textContent = tab === "archived" ? "Nothing archived." : "Nothing here yet.";
  more.hidden = !nextCursor;
}

// ---- inbox ---------------------------------------------------------------

/** Loads (or reloads, after a reconnect) the newest page of the current tab. */
async function refreshFirstPage() {
  const seq = tabSeq;
  try {
    const page = await client.getNotifications(
      { limit: PAGE_SIZE, filter: filterOf(tab) },
      CALL,
    );
    if (seq !== tabSeq) return; // the user switched tabs meanwhile
    replaceRange(page.notifications, page.nextCursor === "");
    if (!pagedOlder) nextCursor = page.nextCursor;
    // The stream's counts events are newer than any page: use a page's only
    // while no stream is open.
    if (!live) setCounts(page.counts);
    list.dataset.loaded = "true";
    showError(null);
  } finally {
    if (seq === tabSeq) render();
  }
}

async function loadOlder() {
  if (!nextCursor) return;
  const seq = tabSeq;
  more.disabled = true;
  try {
    const page = await client.getNotifications(
      { limit: PAGE_SIZE, cursor: nextCursor, filter: filterOf(tab) },
      CALL,
    );
    if (seq !== tabSeq) return;
    for (const n of page.notifications) if (belongs(n, tab)) items.set(n.id, n);
    nextCursor = page.nextCursor;
    pagedOlder = true;
    render();
  } catch (err) {
    showError(err);
  } finally {
    more.disabled = false;
  }
}

function switchTab(next: Tab) {
  if (next === tab && list.dataset.loaded === "true") return;
  tab = next;
  tabSeq++;
  items.clear();
  nextCursor = "";
  pagedOlder = false;
  list.dataset.loaded = "false";
  render();
  refreshFirstPage().catch(showError);
}

/**
 * The local effect of a mark this page made, shown at once; the update event
 * (to every tab) confirms it. The count comes from the answer, never predicted.
 */
function predict(n: Notification, kind: Mark, actionId = ""): Notification {
  const now = BigInt(Date.now());
  const next = { ...n };
  if (kind === Mark.READ || kind === Mark.ACTIONED) {
    if (isUnread(n)) next.status = DeliveryStatus.READ;
    if (!n.readAtMs) next.readAtMs = now;
    if (kind === Mark.ACTIONED) {
      next.actionedAtMs = now;
      next.actionId = actionId;
    }
  } else if (kind === Mark.ARCHIVED) next.archivedAtMs = now;
  else if (kind === Mark.UNARCHIVED) next.archivedAtMs = 0n;
  else if (kind === Mark.SNOOZED) next.snoozedUntilMs = now + BigInt(SNOOZE_MS);
  return next;
}

async function mark(n: Notification, kind: Mark, extra: { snoozeUntilMs?: bigint } = {}) {
  try {
    const answer = await client.markNotifications({ ids: [n.id], mark: kind, ...extra }, CALL);
    const current = items.get(n.id);
    if (current) apply(predict(current, kind));
    setCounts(answer.counts);
    showError(null);
  } catch (err) {
    showError(err);
  }
  render();
}

async function markRead(n: Notification) {
  if (isUnread(n)) await mark(n, Mark.READ);
}

/** Opens the action's url in a new tab (no opener: it cannot reach this page) and records it. */
async function takeAction(n: Notification, action: Action, url: string | null) {
  if (url) window.open(url, "_blank", "noopener,noreferrer");
  try {
    const answer = await client.markNotifications(
      { ids: [n.id], mark: Mark.ACTIONED, actionId: action.id },
      CALL,
    );
    const current = items.get(n.id);
    if (current) apply(predict(current, Mark.ACTIONED, action.id));
    setCounts(answer.counts);
    showError(null);
  } catch (err) {
    showError(err);
  }
  render();
}

async function markAllRead() {
  markAll.disabled = true;
  try {
    const answer = await client.markNotifications({ all: true, mark: Mark.READ }, CALL);
    for (const n of [...items.values()]) {
      if (isUnread(n) && n.archivedAtMs === 0n) apply(predict(n, Mark.READ));
    }
    setCounts(answer.counts);
    showError(null);
  } catch (err) {
    showError(err);
  }
  render();
}

async function remove(n: Notification) {
  try {
    const answer = await client.deleteNotifications({ ids: [n.id] }, CALL);
    items.delete(n.id);
    setCounts(answer.counts);
    showError(null);
  } catch (err) {
    showError(err);
  }
  render();
}

function received(n: Notification) {
  if (items.has(n.id)) return; // already shown (from a page, or a replay)
  if (isUnread(n) && belongs(n, "all")) unread++; // until the counts event that follows
  if (belongs(n, tab)) {
    items.set(n.id, n);
    fresh.add(n.id);
  }
  render();
}

function updated(rows: Notification[], deletedIds: string[]) {
  for (const n of rows) apply(n);
  for (const id of deletedIds) items.delete(id);
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
        case "counts":
          setCounts(ev.event.value.counts);
          render();
          break;
        case "update":
          updated(ev.event.value.notifications, ev.event.value.deletedIds);
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
    live = false;
    clearTimeout(idle);
    abort.abort();
  }
}

async function connect() {
  let attempt = 0;
  for (;;) {
    if (attempt === 0) setStatus("connecting", "connecting…");
    else setStatus("reconnecting", "reconnecting…");
    let opened = false;
    let failure: unknown = null;
    try {
      await streamOnce(() => {
        opened = true;
        live = true;
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
markAll.addEventListener("click", () => void markAllRead());
for (const [name, button] of tabButtons) button.addEventListener("click", () => switchTab(name));
// Web Push: ?vapid=<the server's VAPID public key> shows "Enable push" (src/push.ts).
setupPushButton(client, params.get("vapid"), $<HTMLButtonElement>("enable-push"));
render();
refreshFirstPage().catch(showError);
void connect();
