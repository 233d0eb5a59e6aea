// @notify/web: the typed browser client of notify's client port.

// The error type every call and the live stream report, and its codes.
export { Code, ConnectError } from "@connectrpc/connect";

export { type BackoffPolicy, backoffCeiling, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
export {
  bearerAuth,
  createNotifyClient,
  DEFAULT_TIMEOUT_MS,
  type NotificationClient,
  type NotifyClient,
  type NotifyClientOptions,
  type TokenSource,
  type TransportSetup,
} from "./client.js";
export { type FilterInit, isUnread, matchesFilter } from "./filter.js";
export * from "./gen/elloloop/notify/v1/notify_pb.js";
export {
  DEFAULT_PAGE_SIZE,
  type InboxAction,
  type InboxContext,
  type InboxState,
  initialInbox,
  newestFirst,
  reduceInbox,
} from "./inbox.js";
export {
  createLive,
  DEFAULT_IDLE_TIMEOUT_MS,
  type Live,
  type LiveOptions,
  type LiveStatus,
  type LiveStatusInfo,
} from "./live.js";
export { createInboxView, type InboxSnapshot, type InboxView, type ViewOptions } from "./view.js";
export { preferenceEnabled } from "./preferences.js";
