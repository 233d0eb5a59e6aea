"""The in-memory store: the zero-setup default and the conformance reference.

Each user's rows are kept in a list sorted by PageKey (creation time, then
id), with two more sorted lists for the inbox as the user sees it (in-app,
visible, not archived) and its unread part, and the inbox counts kept as rows
change: a default page is a bisection plus a slice and the counts are read,
never counted. Time-driven changes (a scheduled row coming due, a snooze
ending, an expiry) sit in one heap ordered by when they are due. Every method
runs without awaiting, so each is atomic on the event loop.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from notify.core import inbox as rules
from notify.core.errors import OutOfRange
from notify.core.model import (
    INBOX,
    Channel,
    Counts,
    Device,
    DeviceType,
    Filter,
    Mark,
    Notification,
    Page,
    PageKey,
    PageRequest,
    ReadScope,
    Status,
)
from notify.core.ports import Announcer
from notify.core.preferences import PreferenceRule, Preferences, TenantPreferences, merge_rules
from notify.store import (
    MAX_DEVICES_PER_TYPE,
    TOO_FAR_BEHIND,
    Changed,
    Deleted,
    Due,
    Gauges,
    LoggedChange,
    OutboxDepth,
    OutboxEntry,
    Purged,
    Selection,
    SendResult,
    StoredRow,
)


@dataclass(slots=True)
class _Inbox:
    keys: list[PageKey] = field(default_factory=list)  # every row of the user
    inbox: list[PageKey] = field(default_factory=list)  # in-app, visible, not archived
    unread: list[PageKey] = field(default_factory=list)  # ... and not read
    rows: dict[str, Notification] = field(default_factory=dict)
    unread_count: int = 0
    unseen_count: int = 0
    # collapse_key -> ids of rows carrying it (few per key)
    collapse: dict[str, set[str]] = field(default_factory=dict)
    # The change log, newest last, bounded; ``trimmed`` is the last position dropped.
    changes: deque[LoggedChange] = field(default_factory=lambda: deque(maxlen=MAX_LOGGED))
    trimmed: int = 0

    @property
    def counts(self) -> Counts:
        return Counts(self.unread_count, self.unseen_count, len(self.inbox))


_RowKey = tuple[str, str, str, int]

# Changes kept per user: a stream further behind is told OUT_OF_RANGE.
MAX_LOGGED = 20_000


@dataclass(slots=True)
class _OutboxEntry:
    channel: Channel
    due_at_ms: int
    first_due_ms: int
    lease_until_ms: int = 0
    token: str = ""


def _in_inbox(row: Notification) -> bool:
    return row.channel is Channel.IN_APP and row.visible and not row.archived_at_ms


class MemoryStore:
    driver = "memory"

    def __init__(self) -> None:
        self._by_key: dict[_RowKey, Notification] = {}
        self._by_id: dict[str, Notification] = {}
        self._inboxes: dict[tuple[str, str], _Inbox] = {}
        self._devices: dict[tuple[str, str], dict[tuple[DeviceType, str], Device]] = {}
        # (tenant, type, token) -> the user it is registered to: one owner per token.
        self._device_owners: dict[tuple[str, DeviceType, str], str] = {}
        # (due_at_ms, row id): stale entries are skipped when popped.
        self._due: list[tuple[int, str]] = []
        self._outbox: dict[str, _OutboxEntry] = {}  # row id -> what is left to send
        # Per channel, (when claimable, row id): a heap; stale items are skipped when popped.
        self._claimable: dict[Channel, list[tuple[int, str]]] = {}
        self._preferences: dict[tuple[str, str], tuple[PreferenceRule, ...]] = {}
        self._tenant_preferences: dict[str, TenantPreferences] = {}
        self._seq = 0  # change-log positions, one sequence for every user

    def _log(self, inbox: _Inbox, row_id: str, deleted: bool) -> int:
        self._seq += 1
        if len(inbox.changes) == inbox.changes.maxlen:
            inbox.trimmed = inbox.changes[0].seq
        inbox.changes.append(LoggedChange(self._seq, row_id, deleted))
        return self._seq

    # ------------------------------------------------------------ bookkeeping

    def _inbox(self, tenant_id: str, user_id: str) -> _Inbox:
        found = self._inboxes.get((tenant_id, user_id))
        if found is None:
            found = self._inboxes[(tenant_id, user_id)] = _Inbox()
        return found

    def _enter(self, inbox: _Inbox, row: Notification) -> None:
        """Adds the row's contribution to the inbox lists and counts."""
        if _in_inbox(row):
            _insert(inbox.inbox, row.key)
            if row.status.unread:
                _insert(inbox.unread, row.key)
                inbox.unread_count += 1
            if not row.seen_at_ms:
                inbox.unseen_count += 1
        due = row.due_at_ms()
        if due:
            heapq.heappush(self._due, (due, row.id))

    def _leave(self, inbox: _Inbox, row: Notification) -> None:
        if _in_inbox(row):
            _remove(inbox.inbox, row.key)
            if row.status.unread:
                _remove(inbox.unread, row.key)
                inbox.unread_count -= 1
            if not row.seen_at_ms:
                inbox.unseen_count -= 1

    def _forget(self, inbox: _Inbox, row: Notification) -> None:
        self._leave(inbox, row)
        _remove(inbox.keys, row.key)
        del inbox.rows[row.id]
        del self._by_id[row.id]
        del self._by_key[(row.tenant_id, row.user_id, row.notification_id, int(row.channel))]
        if row.collapse_key:
            holders = inbox.collapse.get(row.collapse_key)
            if holders is not None:
                holders.discard(row.id)
                if not holders:
                    del inbox.collapse[row.collapse_key]

    def _replace(self, inbox: _Inbox | None, row: Notification) -> Notification:
        """A copy of the stored ``row`` that takes its place, for a change to be made on.

        Copy on write: a stored row is never changed once stored, so reads hand
        out the stored objects themselves (a page of 100 rows copied each
        time cost a quarter of GetNotifications) and what they handed out
        stays as it was read.
        """
        return self._install(inbox, row.copy())

    def _install(self, inbox: _Inbox | None, fresh: Notification) -> Notification:
        """Stores ``fresh`` (a new object) in the place of the row with its id."""
        self._by_id[fresh.id] = fresh
        key = (fresh.tenant_id, fresh.user_id, fresh.notification_id, int(fresh.channel))
        self._by_key[key] = fresh
        if inbox is None:
            inbox = self._inbox(fresh.tenant_id, fresh.user_id)
        inbox.rows[fresh.id] = fresh
        return fresh

    # ------------------------------------------------------------ writes

    async def create_notifications(
        self, rows: Sequence[Notification], announce: Announcer | None = None
    ) -> list[StoredRow]:
        # One process: there is nobody to announce to (several workers on the
        # memory store are refused at start-up), so ``announce`` goes unused.
        result: list[StoredRow] = []
        for row in rows:
            key = (row.tenant_id, row.user_id, row.notification_id, int(row.channel))
            existing = self._by_key.get(key)
            if existing is not None:
                result.append(StoredRow(existing.copy(), created=False))
                continue
            stored = row.copy()
            inbox = self._inbox(row.tenant_id, row.user_id)
            replaced = self._collapse(inbox, stored)
            replaced_change = self._log(inbox, replaced, True) if replaced else 0
            self._by_key[key] = stored
            self._by_id[stored.id] = stored
            _insert(inbox.keys, stored.key)
            inbox.rows[stored.id] = stored
            if stored.collapse_key:
                inbox.collapse.setdefault(stored.collapse_key, set()).add(stored.id)
            self._enter(inbox, stored)
            self._enqueue(stored)  # an external row's send, in the same atomic step
            # The caller's own row, not the stored one: they are already apart.
            row.collapsed_count = stored.collapsed_count
            result.append(StoredRow(row, True, replaced, replaced_change))
        return result

    def _collapse(self, inbox: _Inbox, new: Notification) -> str:
        """Deletes the user's unread, unarchived in-app row with the new row's collapse key."""
        if not new.collapse_key or new.channel is not Channel.IN_APP:
            return ""
        for row_id in sorted(inbox.collapse.get(new.collapse_key, ())):
            old = inbox.rows[row_id]
            if old.channel is Channel.IN_APP and old.status.unread and not old.archived_at_ms:
                new.collapsed_count = max(old.collapsed_count, 1) + 1
                self._forget(inbox, old)
                return old.id
        return ""

    async def mark_delivered(self, rows: Sequence[Notification], at_ms: int) -> None:
        for row in rows:
            stored = self._by_id.get(row.id)
            if stored is not None and stored.status is Status.PENDING:
                stored = self._replace(None, stored)
                stored.status = Status.DELIVERED
                stored.delivered_at_ms = at_ms

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        inbox = self._inboxes.get((tenant_id, user_id))
        stored = inbox.rows.get(row_id) if inbox else None
        if inbox is None or stored is None:
            return None
        changed = self._change(inbox, stored, rules.Change(Mark.READ), at_ms)
        if changed is not None:
            self._log(inbox, stored.id, False)
            stored = changed
        return stored.copy()

    def _change(
        self, inbox: _Inbox, row: Notification, change: rules.Change, now_ms: int
    ) -> Notification | None:
        """The row as changed, now stored in its place; None when the change is a no-op."""
        fresh = row.copy()
        if not rules.apply(fresh, change, now_ms):
            return None
        self._leave(inbox, row)
        self._enter(inbox, self._install(inbox, fresh))
        return fresh

    async def mark(
        self, tenant_id: str, user_id: str, selection: Selection, change: rules.Change, now_ms: int
    ) -> Changed:
        inbox = self._inboxes.get((tenant_id, user_id))
        if inbox is None:
            return Changed([], Counts())
        changed: list[Notification] = []
        seq = 0
        for row in list(self._select(inbox, selection, now_ms)):
            if not rules.touchable(row, change, now_ms):
                continue
            fresh = self._change(inbox, row, change, now_ms)
            if fresh is not None:
                changed.append(fresh.copy())
                seq = self._log(inbox, row.id, False)
        return Changed(changed, inbox.counts, seq)

    async def delete(
        self, tenant_id: str, user_id: str, selection: Selection, now_ms: int
    ) -> Deleted:
        inbox = self._inboxes.get((tenant_id, user_id))
        if inbox is None:
            return Deleted([], Counts())
        ids: list[str] = []
        seq = 0
        for row in list(self._select(inbox, selection, now_ms)):
            self._forget(inbox, row)
            ids.append(row.id)
            seq = self._log(inbox, row.id, True)
        return Deleted(ids, inbox.counts, seq)

    def _select(self, inbox: _Inbox, selection: Selection, now_ms: int) -> Iterable[Notification]:
        if selection.filter is None:
            for row_id in dict.fromkeys(selection.ids):
                row = inbox.rows.get(row_id)
                if row is not None:
                    yield row
            return
        for key in reversed(self._candidates(inbox, selection.filter)):
            row = inbox.rows[key.id]
            if selection.filter.matches(row, now_ms):
                yield row

    async def run_due(self, now_ms: int, limit: int) -> Due:
        woken: list[Notification] = []
        snoozed: list[Notification] = []
        expired: list[Notification] = []
        changes: dict[tuple[str, str], int] = {}
        while self._due and self._due[0][0] <= now_ms and len(woken) + len(expired) < 2 * limit:
            due_at, row_id = heapq.heappop(self._due)
            row = self._by_id.get(row_id)
            if row is None or row.due_at_ms() != due_at:
                continue  # deleted or changed since it was scheduled
            inbox = self._inbox(row.tenant_id, row.user_id)
            if row.visible:  # expiring
                if len(expired) >= limit:
                    heapq.heappush(self._due, (due_at, row_id))
                    break
                self._forget(inbox, row)
                expired.append(row.copy())
                changes[(row.tenant_id, row.user_id)] = self._log(inbox, row.id, True)
            else:
                if len(woken) >= limit:
                    heapq.heappush(self._due, (due_at, row_id))
                    break
                self._leave(inbox, row)
                row = self._replace(inbox, row)
                if row.snoozed_until_ms:
                    rules.wake(row)
                    snoozed.append(row)
                else:
                    row.visible = True
                self._enter(inbox, row)
                woken.append(row)
                changes[(row.tenant_id, row.user_id)] = self._log(inbox, row.id, False)
        fresh = [r.copy() for r in woken if r not in snoozed]
        return Due(fresh, expired, [r.copy() for r in snoozed], changes)

    async def purge_read(self, read_before_ms: int, now_ms: int, limit: int) -> Purged:
        # A scan: it runs once a minute, and the memory store holds what fits in RAM.
        old = sorted(
            (r for r in self._by_id.values() if 0 < r.read_at_ms < read_before_ms),
            key=lambda r: (r.read_at_ms, r.id),
        )[:limit]
        changes: dict[tuple[str, str], int] = {}
        for row in old:
            inbox = self._inbox(row.tenant_id, row.user_id)
            self._forget(inbox, row)
            changes[(row.tenant_id, row.user_id)] = self._log(inbox, row.id, True)
        return Purged([r.copy() for r in old], changes)

    async def next_due_ms(self) -> int | None:
        while self._due:
            due_at, row_id = self._due[0]
            row = self._by_id.get(row_id)
            if row is not None and row.due_at_ms() == due_at:
                return due_at
            heapq.heappop(self._due)
        return None

    # ------------------------------------------------------------ reads

    def _candidates(self, inbox: _Inbox, filter: Filter) -> list[PageKey]:
        """The smallest kept list that holds every row the filter can select."""
        if filter.channels == (Channel.IN_APP,) and not filter.snoozed and not filter.archived:
            return inbox.unread if filter.read is ReadScope.UNREAD else inbox.inbox
        return inbox.keys

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> Page:
        inbox = self._inboxes.get((tenant_id, user_id))
        if inbox is None:
            return Page(rows=[], next_key=None, counts=Counts())
        filter = page.filter
        if page.unread_only and filter.read is ReadScope.ANY:
            filter = replace(filter, read=ReadScope.UNREAD)
        keys = self._candidates(inbox, filter)
        end = len(keys) if page.after is None else bisect.bisect_left(keys, page.after)
        rows: list[Notification] = []
        more = False
        # The kept inbox lists hold only rows the plain inbox filters select but
        # for expiry: skip the full check for them.
        matches = filter.matches
        if keys is not inbox.keys and filter in (INBOX, _INBOX_UNREAD):
            now = page.now_ms

            def matches(row: Notification, now_ms: int) -> bool:
                return not (row.expires_at_ms and row.expires_at_ms <= now)

        for row in _backwards(inbox, keys, end):
            if matches(row, page.now_ms):
                if len(rows) == page.limit:
                    more = True
                    break
                rows.append(row)  # stored rows are never changed (``_replace``)
        next_key = rows[-1].key if more and rows else None
        return Page(rows=rows, next_key=next_key, counts=inbox.counts)

    async def get_notifications(self, tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
        found: list[Notification] = []
        for row_id in row_ids:
            row = self._by_id.get(row_id)
            if row is not None and row.tenant_id == tenant_id:
                found.append(row)
        return found

    async def list_after(
        self,
        tenant_id: str,
        user_id: str,
        after: PageKey,
        channel: Channel,
        limit: int,
        *,
        now_ms: int = 0,
    ) -> list[Notification]:
        inbox = self._inboxes.get((tenant_id, user_id))
        if inbox is None:
            return []
        rows: list[Notification] = []
        keys = inbox.keys
        for index in range(bisect.bisect_right(keys, after), len(keys)):
            row = inbox.rows[keys[index].id]
            if row.channel is channel and row.visible and not _expired(row, now_ms):
                rows.append(row)
                if len(rows) >= limit:
                    break
        return rows

    async def counts(self, tenant_id: str, user_id: str, filter: Filter, now_ms: int) -> Counts:
        inbox = self._inboxes.get((tenant_id, user_id))
        if inbox is None:
            return Counts()
        if filter.is_inbox:
            return inbox.counts
        unread = unseen = total = 0
        for key in self._candidates(inbox, filter):
            row = inbox.rows[key.id]
            if filter.matches(row, now_ms):
                total += 1
                unread += row.status.unread
                unseen += not row.seen_at_ms
        return Counts(unread, unseen, total)

    async def inbox_counts(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Counts]:
        result: dict[str, Counts] = {}
        for user_id in user_ids:
            inbox = self._inboxes.get((tenant_id, user_id))
            result[user_id] = inbox.counts if inbox is not None else Counts()
        return result

    async def changes_after(
        self, tenant_id: str, user_id: str, after: int, limit: int
    ) -> list[LoggedChange]:
        inbox = self._inboxes.get((tenant_id, user_id))
        if inbox is None:
            return []
        if after < inbox.trimmed:
            raise OutOfRange(TOO_FAR_BEHIND)
        found: list[LoggedChange] = []
        for entry in inbox.changes:
            if entry.seq > after:
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    async def last_change(self, tenant_id: str, user_id: str) -> int:
        inbox = self._inboxes.get((tenant_id, user_id))
        return inbox.changes[-1].seq if inbox is not None and inbox.changes else 0

    async def upsert_device(self, device: Device) -> None:
        kind, token = device.device_type, device.token
        owner_key = (device.tenant_id, kind, token)
        owner = self._device_owners.get(owner_key)
        if owner is not None and owner != device.user_id:
            self._devices[(device.tenant_id, owner)].pop((kind, token), None)
        self._device_owners[owner_key] = device.user_id
        mine = self._devices.setdefault((device.tenant_id, device.user_id), {})
        mine[(kind, token)] = device
        of_type = [d for d in mine.values() if d.device_type is kind]
        if len(of_type) > MAX_DEVICES_PER_TYPE:
            of_type.sort(key=lambda d: (d.updated_at_ms, d.token), reverse=True)
            for old in of_type[MAX_DEVICES_PER_TYPE:]:
                del mine[(old.device_type, old.token)]
                del self._device_owners[(device.tenant_id, old.device_type, old.token)]

    async def delete_device(
        self, tenant_id: str, user_id: str, device_type: DeviceType, token: str
    ) -> bool:
        mine = self._devices.get((tenant_id, user_id), {})
        if mine.pop((device_type, token), None) is None:
            return False
        del self._device_owners[(tenant_id, device_type, token)]
        return True

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
        devices = self._devices.get((tenant_id, user_id), {})
        return [devices[key] for key in sorted(devices)]

    def gauges(self) -> Gauges:
        return {}

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # ------------------------------------------------------------ delivery

    def _enqueue(self, row: Notification) -> None:
        if row.channel is not Channel.IN_APP and row.status is Status.PENDING:
            due = max(row.created_at_ms, row.deliver_at_ms)
            self._outbox[row.id] = _OutboxEntry(row.channel, due, due)
            self._offer(row.id)

    def _offer(self, row_id: str) -> None:
        """(Re)lists an entry at the time it can next be claimed: due, and its lease over."""
        entry = self._outbox[row_id]
        heap = self._claimable.setdefault(entry.channel, [])
        heapq.heappush(heap, (max(entry.due_at_ms, entry.lease_until_ms), row_id))

    async def claim_outbox(
        self, channel: Channel, now_ms: int, limit: int, lease_ms: int, token: str
    ) -> list[OutboxEntry]:
        heap = self._claimable.get(channel, [])
        claimed: list[OutboxEntry] = []
        while heap and heap[0][0] <= now_ms and len(claimed) < limit:
            at, row_id = heapq.heappop(heap)
            entry = self._outbox.get(row_id)
            if entry is None or max(entry.due_at_ms, entry.lease_until_ms) != at:
                continue  # ended, or listed again at another time since
            row = self._by_id.get(row_id)
            if row is None:  # deleted or expired: nothing to send
                del self._outbox[row_id]
                continue
            entry.lease_until_ms, entry.token = now_ms + lease_ms, token
            self._offer(row_id)  # back once the lease runs out, unless finished first
            claimed.append(OutboxEntry(row.copy(), entry.first_due_ms))
        return claimed

    async def finish_outbox(self, token: str, results: Sequence[SendResult]) -> list[str]:
        recorded: list[str] = []
        for result in results:
            entry = self._outbox.get(result.row_id)
            row = self._by_id.get(result.row_id)
            if entry is None or entry.token != token or row is None:
                continue
            if result.status is Status.PENDING:
                entry.due_at_ms, entry.lease_until_ms, entry.token = result.retry_at_ms, 0, ""
                self._offer(result.row_id)
            else:
                del self._outbox[result.row_id]
            row = self._replace(None, row)
            if result.status is not Status.PENDING and row.status is Status.PENDING:
                row.status = result.status
                if result.status is Status.DELIVERED:
                    row.delivered_at_ms = result.at_ms
            row.attempts = result.attempts
            row.failure_reason = result.reason
            row.provider_message_id = result.provider_message_id
            recorded.append(result.row_id)
        return recorded

    async def release_outbox(self, token: str, row_ids: Sequence[str]) -> None:
        for row_id in row_ids:
            entry = self._outbox.get(row_id)
            if entry is not None and entry.token == token:
                entry.lease_until_ms, entry.token = 0, ""
                self._offer(row_id)

    async def outbox_depth(self, now_ms: int) -> dict[Channel, OutboxDepth]:
        found: dict[Channel, OutboxDepth] = {}
        for row_id, entry in self._outbox.items():
            if row_id not in self._by_id:
                continue
            seen = found.get(entry.channel, OutboxDepth(0, 0))
            oldest = seen.oldest_due_ms
            if entry.due_at_ms <= now_ms and (not oldest or entry.due_at_ms < oldest):
                oldest = entry.due_at_ms
            found[entry.channel] = OutboxDepth(seen.entries + 1, oldest)
        return found

    async def preferences_for(
        self, tenant_id: str, user_ids: Sequence[str]
    ) -> dict[str, Preferences]:
        tenant = self._tenant_preferences.get(tenant_id, TenantPreferences())
        return {
            user_id: Preferences(self._preferences.get((tenant_id, user_id), ()), tenant)
            for user_id in user_ids
        }

    async def update_preferences(
        self,
        tenant_id: str,
        user_id: str,
        rules: Sequence[PreferenceRule],
        *,
        replace: bool,
    ) -> Preferences:
        current = self._preferences.get((tenant_id, user_id), ())
        self._preferences[(tenant_id, user_id)] = merge_rules(current, rules, replace=replace)
        return (await self.preferences_for(tenant_id, [user_id]))[user_id]

    async def set_tenant_preferences(self, tenant_id: str, tenant: TenantPreferences) -> None:
        self._tenant_preferences[tenant_id] = tenant


_INBOX_UNREAD = replace(INBOX, read=ReadScope.UNREAD)


def _expired(row: Notification, now_ms: int) -> bool:
    return bool(row.expires_at_ms) and row.expires_at_ms <= now_ms


def _backwards(inbox: _Inbox, keys: list[PageKey], end: int) -> Iterator[Notification]:
    for index in range(end - 1, -1, -1):
        yield inbox.rows[keys[index].id]


def _insert(keys: list[PageKey], key: PageKey) -> None:
    # New rows almost always sort last (ids are time-ordered): append is O(1).
    if not keys or keys[-1] < key:
        keys.append(key)
    else:
        bisect.insort(keys, key)


def _remove(keys: list[PageKey], key: PageKey) -> None:
    index = bisect.bisect_left(keys, key)
    if index < len(keys) and keys[index] == key:
        del keys[index]
