// A small inbox for notify, talking to the client port from another origin
// through @notify/web (clients/web): its createNotifyClient for the calls and
// its live stream, which reconnects with backoff, resumes from the last resume
// token, and keeps each tab's listing (an inbox view) current from the
// stream's notification, update and counts events. This file is the DOM.
//
// Query string: ?api=http://localhost:8080&user=user-alice&tenant=acme
// (a dev-mode token, `Bearer dev:<user>:<tenant>`), or &token=<JWT>; &vapid=<key>
// offers Web Push (src/push.ts, sw.js).
//
// The bell shows the server's unread count: every stream gets a `counts` event
// right after its handshake and whenever the user's inbox changes on any tab
// or device. Rows follow `update` events (their new state, or deletedIds), so
// what one tab marks, archives or deletes changes every other tab too.

import {
  type Action,
  ArchiveScope,
  Code,
  ConnectError,
  createNotifyClient,
  DeliveryStatus,
  type FilterInit,
  type InboxView,
  isUnread,
  type LiveStatusInfo,
  Mark,
  type Notification,
  ReadScope,
} from "@notify/web";
import { renderRow, type RowHandlers } from "./row.js";
import { setupPushButton } from "./push.js";

const PAGE_SIZE = 20;
const SNOOZE_MS = 60 * 60 * 1000;

const params = new URLSearchParams(location.search);
const apiBase = (params.get("api") ?? "http://localhost:8080").replace(/\/+$/, "");
const user = params.get("user") ?? "user-alice";
const tenant = params.get("tenant") ?? "acme";
const jwt = params.get("token");

const client = createNotifyClient({ baseUrl: apiBase, token: jwt ?? `dev:${user}:${tenant}` });

// ---- state ---------------------------------------------------------------

type Tab = "all" | "unread" | "archived";
const TABS: readonly Tab[] = ["all", "unread", "archived"];
const FILTERS: Record<Tab, FilterInit> = {
  all: {}, // the inbox: not archived, visible
  unread: { read: ReadScope.UNREAD },
  archived: { archived: ArchiveScope.ARCHIVED },
};

let tab: Tab = "all";
let fresh = new Set<string>(); // ids that arrived live, highlighted once

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

// ---- the live stream and the tab's listing --------------------------------

const live = client.subscribe({ pageSize: PAGE_SIZE, onStatus: showStatus });
let view: InboxView = live.inbox; // the "all" tab is the live's own listing
let closeView: (() => void) | null = null;
let stopWatching = view.subscribe(render);
live.inbox.subscribe(render); // the badge: the inbox's counts, whatever the tab

live.onEvent((event) => {
  const e = event.event;
  if (e.case === "notification" && e.value.notification) fresh.add(e.value.notification.id);
  if (e.case === "dataChange") {
    // A hint that something shown changed: refetch, then stop redelivery.
    const key = e.value.idempotencyKey;
    void view
      .refresh()
      .then(() => client.ackDataChange({ idempotencyKey: key, sessionId: event.sessionId }))
      .catch(showError);
  }
});

function showStatus(info: LiveStatusInfo) {
  if (info.status === "live") {
    statusLine.dataset.session = info.sessionId;
    setStatus("connected", "live");
    return;
  }
  if (info.status === "connecting") {
    setStatus(info.attempt === 0 ? "connecting" : "reconnecting", "connecting…");
    return;
  }
  if (info.status !== "retrying") return;
  const why = info.error;
  const permanent = why?.code === Code.Unauthenticated || why?.code === Code.Unimplemented;
  const ended = !why || why.code === Code.Unavailable || why.code === Code.Canceled;
  const reason = ended ? "stream ended" : `stream failed (${Code[why.code]})`;
  setStatus(
    permanent ? "error" : "reconnecting",
    `${reason}; reconnecting in ${(info.delayMs / 1000).toFixed(1)} s`,
  );
  if (why && permanent) showError(why);
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
  const snapshot = view.getSnapshot();
  const counts = live.inbox.getSnapshot().counts ?? snapshot.counts;
  const unread = counts?.unread ?? 0;
  const count = String(Math.max(0, unread));
  badge.dataset.count = count;
  badge.dataset.unseen = String(Math.max(0, counts?.unseen ?? 0));
  badge.textContent = unread > 99 ? "99+" : count;
  bell.title = `${count} unread`;
  markAll.disabled = unread <= 0;
  for (const [name, button] of tabButtons) {
    button.setAttribute("aria-selected", String(name === tab));
  }
  list.dataset.tab = tab;
  list.dataset.loaded = String(snapshot.loaded);
  const rows = snapshot.items.map((n) =>
    renderRow(n, {
      archived: tab === "archived",
      fresh: fresh.has(n.id),
      when: when(n.createdAtMs),
      handlers,
    }),
  );
  fresh = new Set();
  list.replaceChildren(...rows);
  empty.hidden = snapshot.items.length > 0 || !snapshot.loaded;
  empty.textContent = tab === "archived" ? "Nothing archived." : "Nothing here yet.";
  more.hidden = !snapshot.hasMore;
  more.disabled = snapshot.loading;
  if (snapshot.error) showError(snapshot.error);
}

function switchTab(next: Tab) {
  if (next === tab && view.getSnapshot().loaded) return;
  tab = next;
  stopWatching();
  closeView?.();
  closeView = null;
  if (next === "all") {
    view = live.inbox; // attached all along: current without a refetch
  } else {
    // Loads at once while a stream is open, else when one opens (or fails to).
    const tabView = live.view(FILTERS[next], PAGE_SIZE);
    closeView = tabView.close;
    view = tabView;
  }
  stopWatching = view.subscribe(render);
  render();
}

// ---- marks -----------------------------------------------------------------

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

/** Applies predicted rows to the tab shown and to the inbox (the badge's listing). */
function applyLocally(rows: Notification[], deletedIds: string[] = []) {
  view.apply(rows, deletedIds);
  if (view !== live.inbox) live.inbox.apply(rows, deletedIds);
}

const current = (id: string) => view.getSnapshot().items.find((n) => n.id === id);

async function mark(
  n: Notification,
  kind: Mark,
  extra: { snoozeUntilMs?: bigint; actionId?: string } = {},
) {
  try {
    const answer = await client.markNotifications({ ids: [n.id], mark: kind, ...extra });
    const row = current(n.id);
    if (row) applyLocally([predict(row, kind, extra.actionId)]);
    live.setCounts(answer.counts);
    showError(null);
  } catch (err) {
    showError(err);
  }
}

async function markRead(n: Notification) {
  if (isUnread(n)) await mark(n, Mark.READ);
}

/** Opens the action's url in a new tab (no opener: it cannot reach this page) and records it. */
async function takeAction(n: Notification, action: Action, url: string | null) {
  if (url) window.open(url, "_blank", "noopener,noreferrer");
  await mark(n, Mark.ACTIONED, { actionId: action.id });
}

async function markAllRead() {
  markAll.disabled = true;
  try {
    const answer = await client.markNotifications({ all: true, mark: Mark.READ });
    const rows = view.getSnapshot().items.filter((n) => isUnread(n) && n.archivedAtMs === 0n);
    applyLocally(rows.map((n) => predict(n, Mark.READ)));
    live.setCounts(answer.counts);
    showError(null);
  } catch (err) {
    showError(err);
  }
  render();
}

async function remove(n: Notification) {
  try {
    const answer = await client.deleteNotifications({ ids: [n.id] });
    applyLocally([], [n.id]);
    live.setCounts(answer.counts);
    showError(null);
  } catch (err) {
    showError(err);
  }
}

// ---- start ---------------------------------------------------------------

bell.addEventListener("click", () => {
  panel.hidden = !panel.hidden;
  bell.setAttribute("aria-expanded", String(!panel.hidden));
});
more.addEventListener("click", () => void view.loadMore());
markAll.addEventListener("click", () => void markAllRead());
for (const [name, button] of tabButtons) button.addEventListener("click", () => switchTab(name));
addEventListener("online", () => live.retryNow());
// Web Push: ?vapid=<the server's VAPID public key> shows "Enable push" (src/push.ts).
setupPushButton(client, params.get("vapid"), $<HTMLButtonElement>("enable-push"));
render();
