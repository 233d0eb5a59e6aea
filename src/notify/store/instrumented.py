"""A Store wrapper that times every operation into a Prometheus histogram."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from prometheus_client import Histogram

from notify.core.inbox import Change
from notify.core.model import (
    Channel,
    Counts,
    Device,
    DeviceType,
    Filter,
    Notification,
    Page,
    PageKey,
    PageRequest,
)
from notify.core.ports import Announcer
from notify.core.preferences import PreferenceRule, Preferences, TenantPreferences
from notify.store import (
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
    Store,
    StoredRow,
)

T = TypeVar("T")


class InstrumentedStore:
    def __init__(self, inner: Store, duration: Histogram) -> None:
        self.driver = inner.driver
        self.inner = inner
        self._children = {
            op: duration.labels(operation=op, driver=inner.driver)
            for op in (
                "create_notifications",
                "mark_delivered",
                "list_notifications",
                "list_after",
                "get_notifications",
                "mark",
                "delete",
                "counts",
                "inbox_counts",
                "run_due",
                "next_due_ms",
                "purge_read",
                "changes_after",
                "last_change",
                "mark_read",
                "upsert_device",
                "delete_device",
                "list_devices",
                "ping",
                "claim_outbox",
                "finish_outbox",
                "release_outbox",
                "outbox_depth",
                "preferences_for",
                "update_preferences",
                "set_tenant_preferences",
            )
        }

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self._children[operation].observe(time.perf_counter() - started)

    async def create_notifications(
        self, rows: Sequence[Notification], announce: Announcer | None = None
    ) -> list[StoredRow]:
        return await self._timed(
            "create_notifications", self.inner.create_notifications(rows, announce)
        )

    async def mark_delivered(self, rows: Sequence[Notification], at_ms: int) -> None:
        await self._timed("mark_delivered", self.inner.mark_delivered(rows, at_ms))

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> Page:
        return await self._timed(
            "list_notifications", self.inner.list_notifications(tenant_id, user_id, page)
        )

    async def get_notifications(self, tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
        return await self._timed(
            "get_notifications", self.inner.get_notifications(tenant_id, row_ids)
        )

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
        return await self._timed(
            "list_after",
            self.inner.list_after(tenant_id, user_id, after, channel, limit, now_ms=now_ms),
        )

    async def mark(
        self, tenant_id: str, user_id: str, selection: Selection, change: Change, now_ms: int
    ) -> Changed:
        return await self._timed(
            "mark", self.inner.mark(tenant_id, user_id, selection, change, now_ms)
        )

    async def delete(
        self, tenant_id: str, user_id: str, selection: Selection, now_ms: int
    ) -> Deleted:
        return await self._timed("delete", self.inner.delete(tenant_id, user_id, selection, now_ms))

    async def counts(self, tenant_id: str, user_id: str, filter: Filter, now_ms: int) -> Counts:
        return await self._timed("counts", self.inner.counts(tenant_id, user_id, filter, now_ms))

    async def inbox_counts(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Counts]:
        return await self._timed("inbox_counts", self.inner.inbox_counts(tenant_id, user_ids))

    async def run_due(self, now_ms: int, limit: int) -> Due:
        return await self._timed("run_due", self.inner.run_due(now_ms, limit))

    async def next_due_ms(self) -> int | None:
        return await self._timed("next_due_ms", self.inner.next_due_ms())

    async def purge_read(self, read_before_ms: int, now_ms: int, limit: int) -> Purged:
        return await self._timed("purge_read", self.inner.purge_read(read_before_ms, now_ms, limit))

    async def changes_after(
        self, tenant_id: str, user_id: str, after: int, limit: int
    ) -> list[LoggedChange]:
        return await self._timed(
            "changes_after", self.inner.changes_after(tenant_id, user_id, after, limit)
        )

    async def last_change(self, tenant_id: str, user_id: str) -> int:
        return await self._timed("last_change", self.inner.last_change(tenant_id, user_id))

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        return await self._timed(
            "mark_read", self.inner.mark_read(tenant_id, user_id, row_id, at_ms)
        )

    async def upsert_device(self, device: Device) -> None:
        await self._timed("upsert_device", self.inner.upsert_device(device))

    async def delete_device(
        self, tenant_id: str, user_id: str, device_type: DeviceType, token: str
    ) -> bool:
        return await self._timed(
            "delete_device", self.inner.delete_device(tenant_id, user_id, device_type, token)
        )

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
        return await self._timed("list_devices", self.inner.list_devices(tenant_id, user_id))

    def gauges(self) -> Gauges:
        return self.inner.gauges()

    async def ping(self) -> None:
        await self._timed("ping", self.inner.ping())

    async def close(self) -> None:
        await self.inner.close()

    async def claim_outbox(
        self, channel: Channel, now_ms: int, limit: int, lease_ms: int, token: str
    ) -> list[OutboxEntry]:
        return await self._timed(
            "claim_outbox", self.inner.claim_outbox(channel, now_ms, limit, lease_ms, token)
        )

    async def finish_outbox(self, token: str, results: Sequence[SendResult]) -> list[str]:
        return await self._timed("finish_outbox", self.inner.finish_outbox(token, results))

    async def release_outbox(self, token: str, row_ids: Sequence[str]) -> None:
        await self._timed("release_outbox", self.inner.release_outbox(token, row_ids))

    async def outbox_depth(self, now_ms: int) -> dict[Channel, OutboxDepth]:
        return await self._timed("outbox_depth", self.inner.outbox_depth(now_ms))

    async def preferences_for(
        self, tenant_id: str, user_ids: Sequence[str]
    ) -> dict[str, Preferences]:
        return await self._timed("preferences_for", self.inner.preferences_for(tenant_id, user_ids))

    async def update_preferences(
        self,
        tenant_id: str,
        user_id: str,
        rules: Sequence[PreferenceRule],
        *,
        replace: bool,
    ) -> Preferences:
        return await self._timed(
            "update_preferences",
            self.inner.update_preferences(tenant_id, user_id, rules, replace=replace),
        )

    async def set_tenant_preferences(self, tenant_id: str, tenant: TenantPreferences) -> None:
        await self._timed(
            "set_tenant_preferences", self.inner.set_tenant_preferences(tenant_id, tenant)
        )
