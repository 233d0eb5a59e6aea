"""Catch-up after a bus drop: what the live sessions missed, from the store, once.

While a replica's LISTEN connection is down, rows other replicas create are
stored but never announced to it. When the connection is back the bus calls
``run(since_ms)``: for every (tenant, user) with sessions here, the in-app
rows created since a little before the connection was last known alive are
read from the store (the resume machinery's ``list_after``), and those no
session of that user was offered yet are offered now, as one
NotificationsCreated dispatched on this replica only.

"Offered yet" is remembered per user: every NotificationsCreated this
replica dispatches (its own, remote ones, catch-ups) is observed, and the
bus asks ``wants`` before fetching a remote row, so a row that the catch-up
pushed and whose announcement arrives later is not pushed again. Every
session of a user is offered the same rows, so remembering per user is
remembering per session. Entries are kept ``keep_ms`` (longer while the bus
is down), which must cover the catch-up window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from notify.core.clock import Clock
from notify.core.events import BusEvent, NotificationsCreated
from notify.core.model import Channel, Notification, PageKey, Status
from notify.realtime.hub import CloseReason, Hub
from notify.realtime.presence import Key, LocalPresence
from notify.store import Store

# Below every store id (uuid text): the first row of a millisecond is "after" it.
_MIN_ID = "00000000-0000-0000-0000-000000000000"
# Users whose missed rows are read at once (each is one indexed range scan).
_CONCURRENT_READS = 8


class CatchUp:
    def __init__(
        self,
        hub: Hub,
        store: Store,
        local: LocalPresence,
        clock: Clock,
        *,
        replica_id: str,
        max_rows: int,
        keep_ms: int = 60_000,
    ) -> None:
        self._hub = hub
        self._store = store
        self._local = local
        self._clock = clock
        self._replica_id = replica_id
        self._max_rows = max_rows
        self._keep_ms = keep_ms
        self._offered: dict[Key, dict[str, int]] = {}
        self._hold_from: int | None = None

    def observe(self, event: BusEvent) -> None:
        """A bus subscriber: remembers the rows offered to this replica's sessions."""
        if not isinstance(event, NotificationsCreated) or not event.rows:
            return
        now = self._clock.now_ms()
        for row in event.rows:
            key = (row.tenant_id, row.user_id)
            if key in self._local:
                offered = self._offered.setdefault(key, {})
                offered[row.id] = now
                self._prune(offered, now)

    def wants(self, tenant_id: str, user_id: str, row_id: str) -> bool:
        """Should a remote announcement of this row be fetched and offered?"""
        key = (tenant_id, user_id)
        return key in self._local and row_id not in self._offered.get(key, ())

    def forget(self, key: Key) -> None:
        """The user's last session here closed: nothing to remember for it."""
        self._offered.pop(key, None)

    def hold(self, since_ms: int) -> None:
        """The bus is down: keep every entry from ``since_ms`` until the catch-up."""
        self._hold_from = since_ms if self._hold_from is None else min(self._hold_from, since_ms)

    async def run(self, since_ms: int, dispatch: Callable[[BusEvent], None]) -> tuple[int, int]:
        """Offers what was missed since ``since_ms``; returns (users, rows) caught up."""
        keys = list(self._local)
        after = PageKey(since_ms, _MIN_ID)
        found: list[list[Notification]] = []
        for start in range(0, len(keys), _CONCURRENT_READS):
            batch = keys[start : start + _CONCURRENT_READS]
            found += await asyncio.gather(
                *(
                    self._store.list_after(t, u, after, Channel.IN_APP, self._max_rows + 1)
                    for t, u in batch
                )
            )
        missed: list[Notification] = []
        for key, rows in zip(keys, found, strict=True):
            if len(rows) > self._max_rows:
                # More than a resume may replay: end the streams, they resume by token.
                for session in self._hub.sessions_of(*key):
                    session.close(CloseReason.SLOW_CONSUMER)
                continue
            offered = self._offered.get(key, {})
            missed += [row for row in rows if row.id not in offered]
        self._hold_from = None
        if missed:
            dispatch(
                NotificationsCreated(self._replica_id, 0, tuple(missed), time.perf_counter_ns())
            )
            pending = [row for row in missed if row.status is Status.PENDING]
            if pending:
                await self._store.mark_delivered(pending, self._clock.now_ms())
        return len(keys), len(missed)

    def _prune(self, offered: dict[str, int], now: int) -> None:
        horizon = now - self._keep_ms
        if self._hold_from is not None:
            horizon = min(horizon, self._hold_from)
        while offered:
            oldest = next(iter(offered))
            if offered[oldest] >= horizon:
                return
            del offered[oldest]
