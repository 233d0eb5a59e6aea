"""Chooses the bus the configuration names: the only module above the drivers that knows them.

``memory`` is ``LocalBus``: one process, nothing to start. ``postgres`` is
``PgBus`` plus what makes it whole across replicas: presence (whose replies
to wait for), the catch-up after a bus drop, and the bus state for /readyz.
The server sees only ``BusDriver``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from notify.config import Config
from notify.core.clock import Clock
from notify.core.events import BusEvent, DataChangePublished, NotificationsCreated, Request
from notify.core.model import Notification
from notify.core.ports import Bus
from notify.metrics import Metrics
from notify.realtime.bus import ExpectedReplies, LocalBus
from notify.realtime.hub import CloseReason, Hub, Session
from notify.store import Store

if TYPE_CHECKING:  # the drivers load asyncpg: only when PostgreSQL is configured
    from notify.realtime.catchup import CatchUp
    from notify.realtime.presence import PresenceTable

logger = logging.getLogger("notify.bus")


class BusDriver(Protocol):
    bus: Bus

    def bind(self, hub: Hub, store: Store, clock: Clock) -> None:
        """Attaches the live side (after the hub and the store exist)."""

    @property
    def expected_replies(self) -> ExpectedReplies | None: ...

    async def start(self) -> None: ...

    def readiness(self) -> str | None:
        """None when the bus carries events; otherwise why not."""

    def session_changed(self, session: Session, ended: CloseReason | None) -> None: ...

    async def close(self) -> None: ...


def bus_driver_name(config: Config) -> str:
    """``auto`` follows the store: a PostgreSQL deployment gets the PostgreSQL bus."""
    if config.bus_driver != "auto":
        return config.bus_driver
    return "postgres" if config.store_driver == "postgres" else "memory"


def build_bus(config: Config, metrics: Metrics) -> BusDriver:
    if bus_driver_name(config) == "postgres":
        return _PostgresDriver(config, metrics)
    metrics.bus_connected.set(1)
    return _LocalDriver()


class _LocalDriver:
    def __init__(self) -> None:
        self.bus: Bus = LocalBus()

    def bind(self, hub: Hub, store: Store, clock: Clock) -> None:
        return None

    @property
    def expected_replies(self) -> ExpectedReplies | None:
        return None

    async def start(self) -> None:
        return None

    def readiness(self) -> str | None:
        return None

    def session_changed(self, session: Session, ended: CloseReason | None) -> None:
        return None

    async def close(self) -> None:
        await self.bus.close()


def request_keys(request: BusEvent) -> list[tuple[str, str]]:
    """The (tenant, user) pairs a request is about: their replicas are the ones to answer."""
    if isinstance(request, NotificationsCreated):
        return list({(row.tenant_id, row.user_id) for row in request.rows})
    if isinstance(request, DataChangePublished):
        command = request.command
        return [(command.tenant_id, user) for user in command.user_ids]
    return []


class _PostgresDriver:
    def __init__(self, config: Config, metrics: Metrics) -> None:
        from notify.realtime.pgbus import PgBus, PgBusSettings
        from notify.realtime.presence import LocalPresence

        self._config = config
        self._metrics = metrics
        self._pgbus = PgBus(
            PgBusSettings(dsn=config.postgres_dsn, reply_wait=config.bus_reply_wait),
            on_reconnect=metrics.bus_reconnects.inc,
            on_state=self._state_changed,
        )
        self.bus: Bus = self._pgbus
        self._local = LocalPresence()
        self._table: PresenceTable | None = None
        self._catch_up: CatchUp | None = None

    def bind(self, hub: Hub, store: Store, clock: Clock) -> None:
        from notify.realtime.catchup import CatchUp

        catch_up = self._catch_up = CatchUp(
            hub,
            store,
            self._local,
            clock,
            replica_id=self._pgbus.replica_id,
            max_rows=self._config.live_max_replay,
        )
        self._pgbus.subscribe(catch_up.observe)

        async def fetch(tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
            return await store.get_notifications(tenant_id, row_ids)

        async def run_catch_up(since_ms: int) -> None:
            users, rows = await catch_up.run(since_ms, self._pgbus.dispatch_here)
            self._metrics.bus_catch_ups.inc()
            self._metrics.bus_caught_up_rows.inc(rows)
            logger.info("bus caught up", extra={"users": users, "rows": rows})

        self._pgbus.attach(fetch=fetch, wants=catch_up.wants, catch_up=run_catch_up)

    def _state_changed(self, connected: bool) -> None:
        self._metrics.bus_connected.set(1 if connected else 0)
        if not connected and self._catch_up is not None:
            # Keep what was offered since the catch-up's starting point.
            self._catch_up.hold(self._pgbus.catch_up_from_ms)

    @property
    def expected_replies(self) -> ExpectedReplies:
        return self._expected

    async def _expected(self, request: Request) -> int:
        if self._table is None:
            return 1
        try:
            return await self._table.expected(request_keys(request))
        except Exception as exc:
            # The database is away: the request cannot reach another replica
            # either (NOTIFY goes through it), so no reply is coming.
            logger.warning("presence lookup failed", extra={"reason": type(exc).__name__})
            return 0

    async def start(self) -> None:
        from notify.realtime.presence import PresenceTable

        await self._pgbus.start()
        table = PresenceTable(
            self._pgbus.pool, self._pgbus.replica_id, self._local, ttl=self._config.bus_presence_ttl
        )
        await table.start()
        self._table = table

    def readiness(self) -> str | None:
        return None if self._pgbus.connected else "the bus (PostgreSQL LISTEN) is reconnecting"

    def session_changed(self, session: Session, ended: CloseReason | None) -> None:
        key = (session.tenant_id, session.user_id)
        if ended is None:
            changed = self._local.opened(key)
        else:
            changed = self._local.closed(key)
            if changed and self._catch_up is not None:
                self._catch_up.forget(key)
        if changed and self._table is not None:
            self._table.changed(key, present=ended is None)

    async def close(self) -> None:
        if self._table is not None:
            await self._table.close()
        await self._pgbus.close()
