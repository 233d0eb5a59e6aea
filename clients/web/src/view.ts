// One filtered listing kept current by the live stream: an external store
// (getSnapshot/subscribe, what React's useSyncExternalStore wants) around the
// pure reducer. Events that arrive while a page is being fetched are held and
// applied after it, in order, so a page answer can never undo a newer change.

import { ConnectError } from "@connectrpc/connect";
import type { Counts, Notification, StreamEvent } from "./gen/elloloop/notify/v1/notify_pb.js";
import type { NotificationClient } from "./rpc.js";
import type { FilterInit } from "./filter.js";
import {
  DEFAULT_PAGE_SIZE,
  type InboxAction,
  type InboxState,
  initialInbox,
  reduceInbox,
} from "./inbox.js";

/** What a view shows: the reducer's state, whether a call runs, and how the last one failed. */
export interface InboxSnapshot extends InboxState {
  readonly loading: boolean;
  readonly error: ConnectError | null;
}

export interface InboxView {
  readonly filter: FilterInit;
  getSnapshot(): InboxSnapshot;
  /** Calls `listener` after every change; returns the function that stops it. */
  subscribe(listener: () => void): () => void;
  /** Fetches the first page again (and the counts with it). */
  refresh(): Promise<void>;
  /** The next page after the last item; from the top again when the bound dropped rows. */
  loadMore(): Promise<void>;
  /** Applies rows' new state locally (a mark this page just made), before its update event. */
  apply(rows: readonly Notification[], deletedIds?: readonly string[]): void;
  /** Sets the counts (a mark's or delete's answer carries them). */
  setCounts(counts: Counts | undefined): void;
  /** Feeds a stream event; the live stream calls it. */
  handle(event: StreamEvent, predict: boolean): void;
}

export interface ViewOptions {
  filter?: FilterInit;
  pageSize?: number;
  now?: () => number;
  timeoutMs?: number;
}

export function createInboxView(rpc: NotificationClient, options: ViewOptions = {}): InboxView {
  const filter: FilterInit = options.filter ?? {};
  const now = options.now ?? Date.now;
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const listeners = new Set<() => void>();
  let state: InboxState = initialInbox(pageSize);
  let loading = false;
  let error: ConnectError | null = null;
  let snapshot: InboxSnapshot = { ...state, loading, error };
  let held: InboxAction[] | null = null; // events during a first-page fetch
  let seq = 0; // bumped per refresh: an older answer is dropped

  function publish() {
    snapshot = { ...state, loading, error };
    for (const listener of [...listeners]) listener();
  }

  function dispatch(action: InboxAction) {
    if (held) {
      held.push(action);
      return;
    }
    const next = reduceInbox(state, action, { filter, nowMs: now() });
    if (next !== state) {
      state = next;
      publish();
    }
  }

  async function fetchPage(cursor: string, limit: number) {
    return rpc.getNotifications({ cursor, limit, filter }, { timeoutMs: options.timeoutMs });
  }

  /** Runs one call whose answer becomes an action; events meanwhile are held, then applied. */
  async function load(call: () => Promise<InboxAction>): Promise<void> {
    const mine = ++seq;
    held = held ?? [];
    loading = true;
    publish();
    try {
      const action = await call();
      if (mine !== seq) return;
      state = reduceInbox(state, action, { filter, nowMs: now() });
      error = null;
    } catch (err) {
      if (mine !== seq) return;
      error = ConnectError.from(err);
    } finally {
      if (mine === seq) {
        const pending = held ?? [];
        held = null;
        for (const action of pending) state = reduceInbox(state, action, { filter, nowMs: now() });
        loading = false;
        publish();
      }
    }
  }

  function refresh(): Promise<void> {
    return load(async () => {
      const page = await fetchPage("", pageSize);
      return {
        type: "page",
        notifications: page.notifications,
        nextCursor: page.nextCursor,
        counts: page.counts,
      };
    });
  }

  function loadMore(): Promise<void> {
    if (!state.hasMore || loading) return Promise.resolve();
    if (state.stale || !state.nextCursor) {
      // The bound dropped rows after the cursor was made: page from the top to one page further.
      const want = state.items.length + pageSize;
      return load(async () => {
        const rows: Notification[] = [];
        let cursor = "";
        let counts: Counts | undefined;
        do {
          const page = await fetchPage(cursor, Math.min(100, want - rows.length));
          rows.push(...page.notifications);
          counts = page.counts ?? counts;
          cursor = page.nextCursor;
        } while (cursor && rows.length < want);
        return { type: "page", notifications: rows, nextCursor: cursor, counts, limit: want };
      });
    }
    const cursor = state.nextCursor;
    return load(async () => {
      const page = await fetchPage(cursor, pageSize);
      return {
        type: "page",
        notifications: page.notifications,
        nextCursor: page.nextCursor,
        append: true,
      };
    });
  }

  return {
    filter,
    getSnapshot: () => snapshot,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refresh,
    loadMore,
    apply(rows, deletedIds = []) {
      dispatch({ type: "update", notifications: rows, deletedIds });
    },
    setCounts(counts) {
      if (counts) dispatch({ type: "counts", counts });
    },
    handle(event, predict) {
      const e = event.event;
      if (e.case === "notification" && e.value.notification) {
        dispatch({ type: "notification", notification: e.value.notification, predict });
      } else if (e.case === "update") {
        dispatch({
          type: "update",
          notifications: e.value.notifications,
          deletedIds: e.value.deletedIds,
        });
      } else if (e.case === "counts" && e.value.counts) {
        dispatch({ type: "counts", counts: e.value.counts });
      }
    },
  };
}
