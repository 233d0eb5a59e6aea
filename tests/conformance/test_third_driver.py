"""A third driver, written here in a few lines, passes the same suite unchanged.

It proves the suite is importable and driver-agnostic: it knows nothing of
the memory or PostgreSQL drivers, only the Store protocol. The driver keeps
every row in one list and scans it, which is all a reference needs to be.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from notify.core.model import Channel, Device, Notification, Page, PageKey, PageRequest, Status
from notify.store import Gauges, Store, StoredRow
from notify.store.conformance import *  # noqa: F403  (the suite's tests)


class ListStore:
    driver = "list"

    def __init__(self) -> None:
        self.rows: list[Notification] = []
        self.devices: dict[tuple[str, str, int], Device] = {}

    def _mine(self, tenant_id: str, user_id: str) -> list[Notification]:
        return sorted(
            (r for r in self.rows if (r.tenant_id, r.user_id) == (tenant_id, user_id)),
            key=lambda r: r.key,
        )

    async def create_notifications(self, rows: Sequence[Notification]) -> list[StoredRow]:
        result = []
        for row in rows:
            same = [
                r
                for r in self.rows
                if (r.tenant_id, r.user_id, r.notification_id, r.channel)
                == (row.tenant_id, row.user_id, row.notification_id, row.channel)
            ]
            if same:
                result.append(StoredRow(same[0].copy(), created=False))
            else:
                self.rows.append(row.copy())
                result.append(StoredRow(row.copy(), created=True))
        return result

    async def mark_delivered(self, rows: Sequence[Notification], at_ms: int) -> None:
        ids = {r.id for r in rows}
        for row in self.rows:
            if row.id in ids and row.status is Status.PENDING:
                row.status, row.delivered_at_ms = Status.DELIVERED, at_ms

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> Page:
        mine = self._mine(tenant_id, user_id)
        unread = [r for r in mine if r.status.unread]
        chosen = unread if page.unread_only else mine
        older = [r for r in reversed(chosen) if page.after is None or r.key < page.after]
        rows = [r.copy() for r in older[: page.limit]]
        next_key = rows[-1].key if len(older) > page.limit else None
        return Page(rows=rows, next_key=next_key, unread_count=len(unread))

    async def get_notifications(self, tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
        by_id = {r.id: r for r in self.rows if r.tenant_id == tenant_id}
        return [by_id[i].copy() for i in row_ids if i in by_id]

    async def list_after(
        self, tenant_id: str, user_id: str, after: PageKey, channel: Channel, limit: int
    ) -> list[Notification]:
        mine = self._mine(tenant_id, user_id)
        return [r.copy() for r in mine if r.key > after and r.channel is channel][:limit]

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        for row in self._mine(tenant_id, user_id):
            if row.id == row_id:
                if row.status is not Status.READ:
                    row.status, row.read_at_ms = Status.READ, at_ms
                return row.copy()
        return None

    async def upsert_device(self, device: Device) -> None:
        self.devices[(device.tenant_id, device.user_id, int(device.device_type))] = device

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
        return [d for k, d in sorted(self.devices.items()) if k[:2] == (tenant_id, user_id)]

    def gauges(self) -> Gauges:
        return {}

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


@pytest.fixture
def store() -> Store:
    return ListStore()
