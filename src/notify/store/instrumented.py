"""A Store wrapper that times every operation into a Prometheus histogram."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from prometheus_client import Histogram

from notify.core.model import Channel, Device, Notification, Page, PageKey, PageRequest
from notify.store import Gauges, Store, StoredRow

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
                "mark_read",
                "upsert_device",
                "list_devices",
                "ping",
            )
        }

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self._children[operation].observe(time.perf_counter() - started)

    async def create_notifications(self, rows: Sequence[Notification]) -> list[StoredRow]:
        return await self._timed("create_notifications", self.inner.create_notifications(rows))

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
        self, tenant_id: str, user_id: str, after: PageKey, channel: Channel, limit: int
    ) -> list[Notification]:
        return await self._timed(
            "list_after", self.inner.list_after(tenant_id, user_id, after, channel, limit)
        )

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        return await self._timed(
            "mark_read", self.inner.mark_read(tenant_id, user_id, row_id, at_ms)
        )

    async def upsert_device(self, device: Device) -> None:
        await self._timed("upsert_device", self.inner.upsert_device(device))

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
        return await self._timed("list_devices", self.inner.list_devices(tenant_id, user_id))

    def gauges(self) -> Gauges:
        return self.inner.gauges()

    async def ping(self) -> None:
        await self._timed("ping", self.inner.ping())

    async def close(self) -> None:
        await self.inner.close()
