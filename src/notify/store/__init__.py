"""The Store interface every driver implements, and the driver factory.

A driver is a module of its own (``memory``, ``postgres``), opened only by
``notify.store.factory``: nothing above this package names a driver class.
The conformance suite in ``notify.store.conformance`` is importable, so
every driver (including one written outside this package) proves it behaves
like the others by running it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from notify.core.model import Channel, Device, Notification, Page, PageKey, PageRequest

# A driver's own gauges (for example its connection pool), by state label.
Gauges = Mapping[str, Callable[[], float]]


@dataclass(frozen=True, slots=True)
class StoredRow:
    """The row as stored for one requested row; ``created`` is False for a retry."""

    row: Notification
    created: bool


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

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> Page:
        """Newest first, strictly after ``page.after``; plus the user's unread count."""
        ...

    async def get_notifications(self, tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
        """The tenant's rows with these store ids, in the order asked; unknown ids are skipped."""
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

    def gauges(self) -> Gauges:
        """Callables the metrics read at scrape time; empty when the driver has none."""
        ...

    async def ping(self) -> None:
        """Raises Unavailable when the backend cannot be reached."""
        ...

    async def close(self) -> None: ...
