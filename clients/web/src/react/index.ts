// React hooks over the core: one live stream per <NotifyProvider>, shared by
// every hook below it; each hook reads an external store of the core with
// useSyncExternalStore, so React renders exactly what the core holds (no copy
// of the state in React) and concurrent renders never tear.

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import {
  createContext,
  createElement,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
} from "react";
import type { NotifyClient } from "../client.js";
import type { FilterInit } from "../filter.js";
import {
  type Counts,
  DeliveryChannel,
  type DeleteNotificationsRequestSchema,
  type DeleteNotificationsResponse,
  Mark,
  type MarkNotificationsRequestSchema,
  type MarkNotificationsResponse,
  NotificationFilterSchema,
  type PreferenceRuleSchema,
  type Preferences,
} from "../gen/elloloop/notify/v1/notify_pb.js";
import { createLive, type Live, type LiveOptions, type LiveStatusInfo } from "../live.js";
import { preferenceEnabled } from "../preferences.js";
import { createInboxView, type InboxSnapshot, type InboxView } from "../view.js";

interface NotifyContextValue {
  client: NotifyClient;
  live: Live;
}

const NotifyContext = createContext<NotifyContextValue | null>(null);

export interface NotifyProviderProps {
  /** Made once (createNotifyClient), outside render: a new client starts a new stream. */
  client: NotifyClient;
  /** The live stream's options (page size, filter of useNotifications(), backoff…). */
  options?: LiveOptions;
  children?: ReactNode;
}

/** Runs one live stream for the tree below it, from mount to unmount. */
export function NotifyProvider({ client, options, children }: NotifyProviderProps) {
  // The options are read once per client, like the client itself.
  const live = useMemo(() => createLive(client, options), [client]);
  useEffect(() => {
    live.start();
    return () => live.stop();
  }, [live]);
  const value = useMemo(() => ({ client, live }), [client, live]);
  return createElement(NotifyContext.Provider, { value }, children);
}

/** The client and the live stream of the nearest NotifyProvider. */
export function useNotify(): NotifyContextValue {
  const value = useContext(NotifyContext);
  if (!value) throw new Error("notify hooks need a <NotifyProvider client={...}> above them");
  return value;
}

/** The stream's state (connecting, live, retrying, closed), its session and last error. */
export function useNotificationStream(): LiveStatusInfo & { retryNow: () => void } {
  const { live } = useNotify();
  const subscribe = useCallback((onChange: () => void) => live.onStatus(onChange), [live]);
  const info = useSyncExternalStore(subscribe, live.status, live.status);
  return { ...info, retryNow: live.retryNow };
}

/** The inbox counts from the stream's counts events (null until the first). */
export function useCounts(): Counts | null {
  const { live } = useNotify();
  const view = live.inbox;
  const counts = useCallback(() => view.getSnapshot().counts, [view]);
  return useSyncExternalStore(view.subscribe, counts, counts);
}

export interface NotificationsResult extends InboxSnapshot {
  loadMore: () => Promise<void>;
  refresh: () => Promise<void>;
}

/**
 * The rows of `filter` (default: the provider's listing, the inbox), newest
 * first, kept current by the stream; `loadMore()` pages on.
 */
export function useNotifications(filter?: FilterInit, pageSize?: number): NotificationsResult {
  const { client, live } = useNotify();
  const key = filter ? JSON.stringify(create(NotificationFilterSchema, filter), bigints) : "";
  const view: InboxView = useMemo(
    () => (filter ? createInboxView(client, { filter, pageSize }) : live.inbox),
    // The filter's content (key) is the dependency, not its identity.
    [client, live, key, pageSize],
  );
  useEffect(() => (view === live.inbox ? undefined : live.attach(view)), [live, view]);
  const snapshot = useSyncExternalStore(view.subscribe, view.getSnapshot, view.getSnapshot);
  return { ...snapshot, loadMore: view.loadMore, refresh: view.refresh };
}

function bigints(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

type MarkRequest = MessageInitShape<typeof MarkNotificationsRequestSchema>;
type DeleteRequest = MessageInitShape<typeof DeleteNotificationsRequestSchema>;

export interface MarkNotifications {
  /** Any MarkNotifications request; the answer's counts reach every hook at once. */
  mark: (request: MarkRequest) => Promise<MarkNotificationsResponse>;
  markRead: (ids: string[]) => Promise<MarkNotificationsResponse>;
  markAllRead: (filter?: FilterInit) => Promise<MarkNotificationsResponse>;
  /** "The bell was opened": every row of the inbox seen. */
  markAllSeen: () => Promise<MarkNotificationsResponse>;
  archive: (ids: string[]) => Promise<MarkNotificationsResponse>;
  snooze: (ids: string[], untilMs: number) => Promise<MarkNotificationsResponse>;
  actioned: (id: string, actionId: string) => Promise<MarkNotificationsResponse>;
  remove: (request: DeleteRequest) => Promise<DeleteNotificationsResponse>;
  pending: boolean;
  error: ConnectError | null;
}

/**
 * Marks (read, seen, archived, snoozed, actioned…) and deletes. Rows change
 * when the stream's update event comes back (to every tab alike); the counts
 * change at once, from the answer.
 */
export function useMarkNotifications(): MarkNotifications {
  const { client, live } = useNotify();
  const [pending, setPending] = useState(0);
  const [error, setError] = useState<ConnectError | null>(null);
  const run = useCallback(
    async <T extends { counts?: Counts | undefined }>(call: () => Promise<T>): Promise<T> => {
      setPending((n) => n + 1);
      try {
        const answer = await call();
        live.setCounts(answer.counts);
        setError(null);
        return answer;
      } catch (err) {
        setError(ConnectError.from(err));
        throw err;
      } finally {
        setPending((n) => n - 1);
      }
    },
    [live],
  );
  return useMemo(() => {
    const mark = (request: MarkRequest) => run(() => client.markNotifications(request));
    return {
      mark,
      markRead: (ids) => mark({ ids, mark: Mark.READ }),
      markAllRead: (filter) => mark({ all: true, mark: Mark.READ, filter }),
      markAllSeen: () => mark({ all: true, mark: Mark.SEEN }),
      archive: (ids) => mark({ ids, mark: Mark.ARCHIVED }),
      snooze: (ids, untilMs) => mark({ ids, mark: Mark.SNOOZED, snoozeUntilMs: BigInt(untilMs) }),
      actioned: (id, actionId) => mark({ ids: [id], mark: Mark.ACTIONED, actionId }),
      remove: (request) => run(() => client.deleteNotifications(request)),
      pending: pending > 0,
      error,
    };
  }, [client, run, pending, error]);
}

type RuleInit = MessageInitShape<typeof PreferenceRuleSchema>;

export interface PreferencesResult {
  preferences: Preferences | null;
  loading: boolean;
  error: ConnectError | null;
  /** Merges `rules` into the user's by (category, channel), or replaces them all. */
  update: (rules: RuleInit[], replace?: boolean) => Promise<void>;
  /** Whether (category, channel) is delivered, by the server's precedence rules. */
  isEnabled: (category: string, channel?: DeliveryChannel) => boolean;
  setEnabled: (category: string, enabled: boolean, channel?: DeliveryChannel) => Promise<void>;
}

/** The user's delivery preferences (GetPreferences / UpdatePreferences). */
export function usePreferences(): PreferencesResult {
  const { client } = useNotify();
  const [preferences, setPreferences] = useState<Preferences | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ConnectError | null>(null);
  useEffect(() => {
    let current = true;
    setLoading(true);
    client.getPreferences({}).then(
      (answer) => {
        if (!current) return;
        setPreferences(answer.preferences ?? null);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (!current) return;
        setError(ConnectError.from(err));
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
  }, [client]);
  const update = useCallback(
    async (rules: RuleInit[], replace = false) => {
      try {
        const answer = await client.updatePreferences({ rules, replace });
        setPreferences(answer.preferences ?? null);
        setError(null);
      } catch (err) {
        setError(ConnectError.from(err));
        throw err;
      }
    },
    [client],
  );
  return {
    preferences,
    loading,
    error,
    update,
    isEnabled: (category, channel = DeliveryChannel.IN_APP) =>
      preferenceEnabled(preferences, category, channel),
    setEnabled: (category, enabled, channel = DeliveryChannel.UNSPECIFIED) =>
      update([{ category, channel, enabled }]),
  };
}

export type { LiveStatusInfo, InboxSnapshot };
