// The inbox state a bell shows, as a pure reducer: events in, state out, no
// I/O and no clock of its own (the caller passes "now"), so every event kind is
// unit-tested without a server. One state per filter: its newest rows (a first
// page, or more once paged), the inbox counts, and where paging goes on.

import type { Counts, Notification } from "./gen/elloloop/notify/v1/notify_pb.js";
import { type FilterInit, isUnread, matchesFilter } from "./filter.js";

export interface InboxState {
  /** Newest first (created_at_ms, then id, as the server pages), at most `limit`. */
  readonly items: readonly Notification[];
  /** The inbox's counts (always the whole inbox, whatever the filter), once known. */
  readonly counts: Counts | null;
  /** Continues paging after the last item; "" on the last page. */
  readonly nextCursor: string;
  /** More rows exist after the last item (on the server). */
  readonly hasMore: boolean;
  /**
   * Rows were dropped from the end to keep the bound, so `nextCursor` no longer
   * continues from the last item: paging on must start again from the top.
   */
  readonly stale: boolean;
  /** The rows one GetNotifications asks for. */
  readonly pageSize: number;
  /** The bound on `items`: the page size, plus every page loaded after the first. */
  readonly limit: number;
  /** A first page has arrived. */
  readonly loaded: boolean;
}

export type InboxAction =
  /** A GetNotifications answer: the first page (replaces), or the next (`append`). */
  | {
      type: "page";
      notifications: readonly Notification[];
      nextCursor: string;
      counts?: Counts | undefined;
      append?: boolean;
      /** A first page standing for several (reloaded after the bound dropped rows). */
      limit?: number;
    }
  /**
   * A notification event. `predict`: count it in `counts` until the server's
   * counts event (which follows every live row) says the truth.
   */
  | { type: "notification"; notification: Notification; predict?: boolean }
  /** An update event: rows' new state, and rows deleted (or collapsed away). */
  | { type: "update"; notifications: readonly Notification[]; deletedIds: readonly string[] }
  | { type: "counts"; counts: Counts };

export interface InboxContext {
  /** Which rows this state lists. */
  filter: FilterInit;
  /** The time rows are judged at (snoozes, expiries), epoch ms. */
  nowMs: number;
}

export const DEFAULT_PAGE_SIZE = 20;

export function initialInbox(pageSize: number = DEFAULT_PAGE_SIZE): InboxState {
  return {
    items: [],
    counts: null,
    nextCursor: "",
    hasMore: false,
    stale: false,
    pageSize,
    limit: pageSize,
    loaded: false,
  };
}

/** The server's order: newest created first, ties by id descending. Negative: a before b. */
export function newestFirst(a: Notification, b: Notification): number {
  if (a.createdAtMs !== b.createdAtMs) return a.createdAtMs > b.createdAtMs ? -1 : 1;
  if (a.id === b.id) return 0;
  return a.id > b.id ? -1 : 1;
}

export function reduceInbox(state: InboxState, action: InboxAction, ctx: InboxContext): InboxState {
  switch (action.type) {
    case "page":
      return action.append ? appendPage(state, action) : firstPage(state, action);
    case "notification":
      return received(state, action.notification, action.predict ?? false, ctx);
    case "update":
      return updated(state, action.notifications, action.deletedIds, ctx);
    case "counts":
      return { ...state, counts: action.counts };
  }
}

function firstPage(
  state: InboxState,
  page: {
    notifications: readonly Notification[];
    nextCursor: string;
    counts?: Counts | undefined;
    limit?: number;
  },
): InboxState {
  // The server chose these rows for the filter: its clock decides snoozes and
  // expiries here, not this one (matchesFilter only judges changes).
  const limit = Math.max(page.limit ?? state.pageSize, page.notifications.length);
  const items = unique(page.notifications);
  return {
    ...state,
    items: items.slice(0, limit),
    counts: page.counts ?? state.counts,
    nextCursor: page.nextCursor,
    hasMore: page.nextCursor !== "" || items.length > limit,
    stale: items.length > limit,
    limit,
    loaded: true,
  };
}

function appendPage(
  state: InboxState,
  page: { notifications: readonly Notification[]; nextCursor: string },
): InboxState {
  const known = new Set(state.items.map((n) => n.id));
  const older = page.notifications.filter((n) => !known.has(n.id));
  return {
    ...state,
    items: unique([...state.items, ...older]),
    nextCursor: page.nextCursor,
    hasMore: page.nextCursor !== "",
    stale: false,
    limit: state.limit + older.length,
    loaded: true,
  };
}

function received(
  state: InboxState,
  n: Notification,
  predict: boolean,
  ctx: InboxContext,
): InboxState {
  if (state.items.some((item) => item.id === n.id)) return state; // a replay, or already paged
  const counted =
    predict && state.counts !== null && isUnread(n) && matchesFilter(n, {}, ctx.nowMs);
  const counts: Counts | null =
    counted && state.counts
      ? {
          ...state.counts,
          unread: state.counts.unread + 1,
          unseen: state.counts.unseen + (n.seenAtMs === 0n ? 1 : 0),
          total: state.counts.total + 1,
        }
      : state.counts;
  if (!matchesFilter(n, ctx.filter, ctx.nowMs)) {
    return counts === state.counts ? state : { ...state, counts };
  }
  return { ...place(state, n), counts };
}

function updated(
  state: InboxState,
  rows: readonly Notification[],
  deletedIds: readonly string[],
  ctx: InboxContext,
): InboxState {
  const gone = new Set(deletedIds);
  let next: InboxState = gone.size
    ? { ...state, items: state.items.filter((n) => !gone.has(n.id)) }
    : state;
  for (const n of rows) {
    if (gone.has(n.id)) continue;
    if (matchesFilter(n, ctx.filter, ctx.nowMs)) {
      const at = next.items.findIndex((item) => item.id === n.id);
      if (at >= 0) {
        const items = [...next.items];
        items[at] = n;
        next = { ...next, items };
      } else {
        next = place(next, n);
      }
    } else if (next.items.some((item) => item.id === n.id)) {
      next = { ...next, items: next.items.filter((item) => item.id !== n.id) };
    }
  }
  return next;
}

/**
 * Puts a row that is not listed yet in its place, if its place is within what
 * is loaded: a row older than the last item while more rows exist belongs to a
 * page not loaded yet. Past the bound, the oldest rows drop off the end.
 */
function place(state: InboxState, n: Notification): InboxState {
  const last = state.items[state.items.length - 1];
  if (state.hasMore && last !== undefined && newestFirst(n, last) > 0) return state;
  const items = [...state.items, n].sort(newestFirst);
  if (items.length <= state.limit) return { ...state, items };
  return { ...state, items: items.slice(0, state.limit), hasMore: true, stale: true };
}

function unique(rows: readonly Notification[]): Notification[] {
  const seen = new Set<string>();
  const out: Notification[] = [];
  for (const n of rows) {
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    out.push(n);
  }
  return out.sort(newestFirst);
}
