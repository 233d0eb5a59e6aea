"""The Store interface every driver implements, and the driver factory.

A driver is a module of its own (``memory``, ``postgres``); the shared
conformance suite in ``tests/conformance`` proves they behave identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from notify.domain import Channel, Device, Notification, PageKey, PageRequest


@dataclass(frozen=True, slots=True)
class StoredRow:
    """The row as stored for one requested row; ``created`` is False for a retry."""

    row: Notification
    created: bool


@dataclass(frozen=True, slots=True)
class RowPage:
    rows: Sequence[Notification]
    next_key: PageKey | None
    unread_count: int


class Store(Protocol):
    """Durable state: notification rows and device registrations.

    Every method is scoped by tenant (and user where it applies), so no call can
    reach another tenant's rows. Drivers raise ``notify.errors.Unavailable``
    when their backend cannot be reached.
    """

    driver: str

    async def create_notifications(self, rows: Sequence[Notification]) -> list[StoredRow]:
        """Inserts rows, idempotent on (tenant, user, notification_id, channel).

        Returns one StoredRow per input, in order: the new row, or the row that
        was already stored under that key.
        """
        ...

    async def mark_delivered(self, rows: Sequence[Notification], at_ms: int) -> None:
        """Moves PENDING rows to DELIVERED, stamping delivered_at_ms."""
        ...

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> RowPage:
        """Newest first, strictly after ``page.after``; plus the user's unread count."""
        ...

    async def list_after(
        self, tenant_id: str, user_id: str, after: PageKey, channel: Channel, limit: int
    ) -> list[Notification]:
        """The user's rows on ``channel`` after ``after``, oldest first, at most ``limit``."""
        ...

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        """Sets READ and read_at_ms once; None when the caller owns no such row."""
        ...

    async def upsert_device(self, device: Device) -> None:
        """One registration per (tenant, user, device type); a new token replaces the old."""
        ...

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]: ...

    async def ping(self) -> None:
        """Raises Unavailable when the backend cannot be reached."""
        ...

    async def close(self) -> None: ...
