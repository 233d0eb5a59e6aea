// Whether a row belongs to a NotificationFilter's listing, decided on the
// client: an update event says a row's new state, and only this tells a view
// whether the row stays (a read row leaves "unread", an archived one leaves
// the inbox). The rules mirror the server's (docs/contract.md): every list is
// "any of", empty means no constraint; the default is the in-app inbox, not
// archived, not snoozed.

import {
  ArchiveScope,
  DeliveryChannel,
  DeliveryStatus,
  type Notification,
  type NotificationFilter,
  ReadScope,
} from "./gen/elloloop/notify/v1/notify_pb.js";

/** A filter as plain fields: the generated message or an object literal alike. */
export type FilterInit = Partial<Omit<NotificationFilter, "$typeName" | "$unknown">>;

/** Unread: not READ yet (PENDING, DELIVERED and ACKED rows count as unread). */
export function isUnread(n: Notification): boolean {
  return n.status < DeliveryStatus.READ;
}

export function matchesFilter(n: Notification, filter: FilterInit = {}, nowMs: number): boolean {
  const channels = filter.channels ?? [];
  if (channels.length ? !channels.includes(n.channel) : n.channel !== DeliveryChannel.IN_APP) {
    return false;
  }
  const archived = n.archivedAtMs !== 0n;
  const scope = filter.archived ?? ArchiveScope.UNSPECIFIED;
  if (scope === ArchiveScope.UNSPECIFIED && archived) return false;
  if (scope === ArchiveScope.ARCHIVED && !archived) return false;
  const snoozed = n.snoozedUntilMs > BigInt(nowMs);
  if (snoozed !== (filter.snoozed ?? false)) return false;
  if (n.expiresAtMs !== 0n && n.expiresAtMs <= BigInt(nowMs)) return false;
  const read = filter.read ?? ReadScope.UNSPECIFIED;
  if (read === ReadScope.UNREAD && !isUnread(n)) return false;
  if (read === ReadScope.READ && isUnread(n)) return false;
  const categories = filter.categories ?? [];
  if (categories.length && !categories.includes(n.category)) return false;
  const tags = filter.tags ?? [];
  if (tags.length && !n.tags.some((tag) => tags.includes(tag))) return false;
  const severities = filter.severities ?? [];
  if (severities.length && !severities.includes(n.severity)) return false;
  return true;
}
