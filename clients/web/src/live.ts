// The live stream: StreamEvents kept open for as long as it is wanted. It
// reconnects with exponential backoff and full jitter, resumes from the
// resume token of the last notification or update event (so nothing is missed
// or repeated), falls back to refetching the first page when the token is too
// far behind (OUT_OF_RANGE) or unusable, and feeds every event to the inbox
// views that share it: one stream per page, whatever the number of listings.

import { Code, ConnectError } from "@connectrpc/connect";
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
import type { NotificationClient } from "./rpc.js";
import type { FilterInit } from "./filter.js";
import { type Counts, DeviceType, type StreamEvent } from "./gen/elloloop/notify/v1/notify_pb.js";
import type { InboxState } from "./inbox.js";
import { createInboxView, type InboxView } from "./view.js";

export type LiveStatus = "idle" | "connecting" | "live" | "retrying" | "closed";

export interface LiveStatusInfo {
  readonly status: LiveStatus;
  /** Failed attempts in a row (0 once live). */
  readonly attempt: number;
  /** The open stream's session id ("" until the handshake). */
  readonly sessionId: string;
  /** While retrying: how long until the next attempt. */
  readonly delayMs: number;
  /** Why the last attempt ended, if it failed. */
  readonly error: ConnectError | null;
}

export interface LiveOptions {
  /** The listing the live keeps (`inbox`): default the in-app inbox. */
  filter?: FilterInit;
  pageSize?: number;
  deviceType?: DeviceType;
  /** Resume from here on the first connect (a token kept from an earlier page load). */
  resumeToken?: string;
  backoff?: BackoffPolicy;
  /** No event for this long (the server heartbeats every 30 s by default) ends the attempt. */
  idleTimeoutMs?: number;
  /** Ends the live stream when aborted (like `stop()`). */
  signal?: AbortSignal;
  onStatus?: (info: LiveStatusInfo) => void;
  onEvent?: (event: StreamEvent) => void;
  onState?: (state: InboxState) => void;
  /** Injected for tests: randomness of the jitter, the clock, the wait between attempts. */
  random?: () => number;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface Live {
  /** The default listing (options.filter), kept from counts/update/notification events. */
  readonly inbox: InboxView;
  /** Another listing (a tab) fed by the same stream; `close()` it when done. */
  view(filter: FilterInit, pageSize?: number): InboxView & { close(): void };
  /**
   * Feeds a view made with createInboxView from this stream (loading it at once
   * if the stream is open); returns the function that detaches it.
   */
  attach(view: InboxView): () => void;
  /** Counts a call answered with (MarkNotifications, DeleteNotifications), for every view. */
  setCounts(counts: Counts | undefined): void;
  state(): InboxState;
  status(): LiveStatusInfo;
  onStatus(listener: (info: LiveStatusInfo) => void): () => void;
  onEvent(listener: (event: StreamEvent) => void): () => void;
  /** The newest resume token seen ("" before any). */
  resumeToken(): string;
  /** Starts the stream (again, after stop). */
  start(): void;
  /** Ends the stream for good (until start()). */
  stop(): void;
  unsubscribe(): void;
  /** Skips the current wait between attempts (the browser came back online). */
  retryNow(): void;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 75_000;

/** Errors no retry can fix soon: wait the longest backoff between attempts. */
const PERMANENT = new Set([Code.Unauthenticated, Code.PermissionDenied, Code.Unimplemented]);

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

export function createLive(rpc: NotificationClient, options: LiveOptions = {}): Live {
  const now = options.now ?? Date.now;
  const policy = options.backoff ?? DEFAULT_BACKOFF;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? abortableSleep;
  const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const statusListeners = new Set<(info: LiveStatusInfo) => void>();
  const eventListeners = new Set<(event: StreamEvent) => void>();
  const views = new Set<InboxView>();
  const inbox = createInboxView(rpc, { filter: options.filter, pageSize: options.pageSize, now });
  views.add(inbox);
  if (options.onStatus) statusListeners.add(options.onStatus);
  if (options.onEvent) eventListeners.add(options.onEvent);
  if (options.onState) {
    const onState = options.onState;
    inbox.subscribe(() => onState(inbox.getSnapshot()));
  }

  let token = options.resumeToken ?? "";
  let info: LiveStatusInfo = { status: "idle", attempt: 0, sessionId: "", delayMs: 0, error: null };
  let running: AbortController | null = null;
  let wake: AbortController | null = null;
  let opened = false; // some stream of this live has opened: views started now load at once

  function setStatus(next: Partial<LiveStatusInfo>) {
    info = { ...info, ...next };
    for (const listener of [...statusListeners]) listener(info);
  }

  function loadViews(which: (view: InboxView) => boolean) {
    for (const view of views) if (which(view)) void view.refresh();
  }

  async function attempt(
    signal: AbortSignal,
  ): Promise<{ opened: boolean; error: ConnectError | null }> {
    const call = new AbortController();
    const stop = () => call.abort();
    signal.addEventListener("abort", stop, { once: true });
    let idle = setTimeout(stop, idleMs);
    const resumed = token !== "";
    let open = false;
    let countsSeen = false;
    let replaying = resumed; // rows right after the handshake counts of a resumed stream
    try {
      const stream = rpc.streamEvents(
        { deviceType: options.deviceType ?? DeviceType.BROWSER, resumeToken: token },
        { signal: call.signal, timeoutMs: 0 },
      );
      for await (const event of stream) {
        clearTimeout(idle);
        idle = setTimeout(stop, idleMs);
        if (!open) {
          open = true;
          opened = true;
          setStatus({
            status: "live",
            attempt: 0,
            sessionId: event.sessionId,
            delayMs: 0,
            error: null,
          });
          // Without a token nothing was replayed: what happened meanwhile is on the first page.
          if (!resumed) loadViews(() => true);
        }
        const e = event.event;
        if (e.case === "notification" || e.case === "update") {
          if (e.value.resumeToken) token = e.value.resumeToken;
        }
        if (e.case === "counts") countsSeen = true;
        else if (countsSeen && e.case !== "notification") replaying = false;
        const predict = e.case === "notification" && !(replaying && countsSeen);
        for (const view of views) view.handle(event, predict);
        for (const listener of [...eventListeners]) listener(event);
      }
      return { opened: open, error: null };
    } catch (err) {
      return { opened: open, error: signal.aborted ? null : ConnectError.from(err) };
    } finally {
      clearTimeout(idle);
      signal.removeEventListener("abort", stop);
      call.abort();
    }
  }

  async function run(signal: AbortSignal) {
    let failures = 0;
    while (!signal.aborted) {
      setStatus({ status: "connecting", attempt: failures, delayMs: 0 });
      const usedToken = token;
      const result = await attempt(signal);
      if (signal.aborted) break;
      const code = result.error?.code;
      if (usedToken && (code === Code.OutOfRange || code === Code.InvalidArgument)) {
        // Too far behind (or a token this server cannot read): start over from the first page.
        token = "";
        failures = 0;
        setStatus({ error: result.error });
        continue;
      }
      failures = result.opened ? 1 : failures + 1;
      let delay = backoffDelay(failures, policy, random);
      if (code !== undefined && PERMANENT.has(code)) delay = policy.maxMs;
      setStatus({ status: "retrying", attempt: failures, delayMs: delay, error: result.error });
      // Listings that never loaded (no stream has opened yet) load without it.
      if (!opened) loadViews((view) => !view.getSnapshot().loaded && !view.getSnapshot().loading);
      wake = new AbortController();
      const both = AbortSignal.any ? AbortSignal.any([signal, wake.signal]) : signal;
      await sleep(delay, both);
      wake = null;
    }
    // A run stopped and replaced at once (start, stop, start: React's StrictMode)
    // must not report "closed" over its successor.
    if (running === null || running.signal === signal) {
      setStatus({ status: "closed", sessionId: "", delayMs: 0 });
    }
  }

  const live: Live = {
    inbox,
    view(filter, pageSize) {
      const view = createInboxView(rpc, { filter, pageSize: pageSize ?? options.pageSize, now });
      return { ...view, close: live.attach(view) };
    },
    attach(view) {
      views.add(view);
      if (opened) void view.refresh();
      return () => void views.delete(view);
    },
    setCounts(counts) {
      for (const view of views) view.setCounts(counts);
    },
    state: () => inbox.getSnapshot(),
    status: () => info,
    onStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    onEvent(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    resumeToken: () => token,
    start() {
      if (running) return;
      const controller = new AbortController();
      running = controller;
      void run(controller.signal).finally(() => {
        if (running === controller) running = null;
      });
    },
    stop() {
      running?.abort();
      running = null;
    },
    unsubscribe() {
      live.stop();
    },
    retryNow() {
      wake?.abort();
    },
  };
  options.signal?.addEventListener("abort", () => live.stop(), { once: true });
  return live;
}
