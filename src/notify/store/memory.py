"""The in-memory store: the zero-setup default and the conformance reference.

Each user's rows are kept in a list sorted by PageKey (creation time, then
id), with a second sorted list of just the unread keys, so a page is a
bisection plus a slice and the unread count is a ``len``: no request scans a
user's history. Every method runs without awaiting, so each is atomic on the
event loop.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from notify.core.model import (
    Channel,
    Device,
    DeviceType,
    Notification,
    Page,
    PageKey,
    PageRequest,
    Status,
)
from notify.store import Gauges, StoredRow


@dataclass(slots=True)
class _Inbox:
    keys: list[PageKey] = field(default_factory=list)
    unread: list[PageKey] = field(default_factory=list)
    rows: dict[str, Notification] = field(default_factory=dict)


_RowKey = tuple[str, str, str, int]


class MemoryStore:
    driver = "memory"

    def __init__(self) -> None:
        self._by_key: dict[_RowKey, Notification] = {}
        self._by_id: dict[str, Notification] = {}
        self._inboxes: dict[tuple[str, str], _Inbox] = {}
        self._devices: dict[tuple[str, str], dict[DeviceType, Device]] = {}

    async def create_notifications(self, rows: Sequence[Notification]) -> list[StoredRow]:
        result: list[StoredRow] = []
        for row in rows:
            key = (row.tenant_id, row.user_id, row.notification_id, int(row.channel))
            existing = self._by_key.get(key)
            if existing is not None:
                result.append(StoredRow(existing.copy(), created=False))
                continue
            stored = row.copy()
            self._by_key[key] = stored
            self._by_id[stored.id] = stored
            inbox = self._inboxes.get((row.tenant_id, row.user_id))
            if inbox is None:
                inbox = self._inboxes[(row.tenant_id, row.user_id)] = _Inbox()
            page_key = stored.key
            _insert(inbox.keys, page_key)
            if stored.status.unread:
                _insert(inbox.unread, page_key)
            inbox.rows[stored.id] = stored
            result.append(StoredRow(stored.copy(), created=True))
        return result

    async def mark_delivered(self, rows: Sequence[Notification], at_ms: int) -> None:
        for row in rows:
            inbox = self._inboxes.get((row.tenant_id, row.user_id))
            stored = inbox.rows.get(row.id) if inbox else None
            if stored is not None and stored.status is Status.PENDING:
                stored.status = Status.DELIVERED
                stored.delivered_at_ms = at_ms

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> Page:
        inbox = self._inboxes.get((tenant_id, user_id))
        if inbox is None:
            return Page(rows=[], next_key=None, unread_count=0)
        keys = inbox.unread if page.unread_only else inbox.keys
        end = len(keys) if page.after is None else bisect.bisect_left(keys, page.after)
        start = max(0, end - page.limit)
        rows = [inbox.rows[key.id].copy() for key in reversed(keys[start:end])]
        next_key = rows[-1].key if start > 0 and rows else None
        return Page(rows=rows, next_key=next_key, unread_count=len(inbox.unread))

    async def get_notifications(self, tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
        found: list[Notification] = []
        for row_id in row_ids:
            row = self._by_id.get(row_id)
            if row is not None and row.tenant_id == tenant_id:
                found.append(row.copy())
        return found

    async def list_after(
        self, tenant_id: str, user_id: str, after: PageKey, channel: Channel, limit: int
    ) -> list[Notification]:
        inbox = self._inboxes.get((tenant_id, user_id))
        if inbox is None:
            return []
        rows: list[Notification] = []
        keys = inbox.keys
        for index in range(bisect.bisect_right(keys, after), len(keys)):
            row = inbox.rows[keys[index].id]
            if row.channel is channel:
                rows.append(row.copy())
                if len(rows) >= limit:
                    break
        return rows

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        inbox = self._inboxes.get((tenant_id, user_id))
        stored = inbox.rows.get(row_id) if inbox else None
        if inbox is None or stored is None:
            return None
        if stored.status.unread:
            _remove(inbox.unread, stored.key)
        if stored.status is not Status.READ:
            stored.status = Status.READ
            stored.read_at_ms = at_ms
        return stored.copy()

    async def upsert_device(self, device: Device) -> None:
        self._devices.setdefault((device.tenant_id, device.user_id), {})[device.device_type] = (
            device
        )

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
        devices = self._devices.get((tenant_id, user_id), {})
        return [devices[kind] for kind in sorted(devices)]

    def gauges(self) -> Gauges:
        return {}

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


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
