"""The Bus over PostgreSQL LISTEN/NOTIFY, for many replicas on one database.

Each process LISTENs on one dedicated connection of its own (LISTEN is
session state, and the store's pool skips asyncpg's reset, so a pooled
connection would not do) and sends NOTIFYs from a small pool of its own, one
statement at a time from one task, so its events reach every replica in the
order it published them. Events are small: see ``buscodec``.

This replica's own events are dispatched at once, synchronously, exactly as
``LocalBus`` does (so local sessions never wait on the database), and the
copy that comes back over LISTEN is dropped: every event reaches each
subscriber exactly once.

New in-app rows are the exception to sending from here: their
NotificationsCreated goes out in the store's own insert transaction
(``announcement`` gives the store the payloads; ``dispatch_announced`` then
dispatches it here without a second NOTIFY), so the other replicas hear of
exactly the rows that committed, even if this process dies right after the
commit. Every other event still goes through the sender, after the store's
commit returned, so NOTIFYs keep the order of the writes they follow.

Remote events are decoded in arrival order; a remote NotificationsCreated
is first completed with the rows this replica has sessions for, fetched
from the store in one query per tenant for everything that arrived
together.

When the LISTEN connection dies (the server restarts, an operator runs
pg_terminate_backend, the network drops) the bus reconnects with backoff,
then, before dispatching anything that arrives after, calls its catch-up
with the wall-clock time the connection was last known alive (minus a
margin), so every open session gets what it missed. ``connected`` is what
/readyz reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from notify.core.events import BusEvent
from notify.core.model import Notification
from notify.core.ports import Announcement, Unsubscribe
from notify.realtime.bus import Subscribers
from notify.realtime.buscodec import (
    REGISTRY,
    Announced,
    Decoded,
    Reassembler,
    addressee,
    parse_header,
    payloads,
)

logger = logging.getLogger("notify.bus")

CHANNEL = "notify_bus"
_SEND = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"
# Ids per fetch statement, at most.
_FETCH_CHUNK = 1000
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

Handler = Callable[[BusEvent], None]
Fetch = Callable[[str, Sequence[str]], Awaitable[list[Notification]]]
Wants = Callable[[str, str, str], bool]
CatchUpHook = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PgBusSettings:
    dsn: str
    # How long a requester waits for other replicas' replies, at most.
    reply_wait: float = 0.5
    # The LISTEN connection is checked this often (a silent network drop is
    # found within it); reconnects back off up to max_backoff.
    ping_interval: float = 5.0
    max_backoff: float = 5.0
    # Catch-up re-reads from this long before the connection was last known
    # alive: NOTIFYs in flight, and clock skew between replicas.
    catch_up_margin: float = 5.0
    connect_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class _Reconnected:
    since_ms: int


class PgBus:
    def __init__(
        self,
        settings: PgBusSettings,
        *,
        replica_id: str | None = None,
        on_reconnect: Callable[[], None] = lambda: None,
        on_state: Callable[[bool], None] = lambda connected: None,
    ) -> None:
        self.replica_id = replica_id or os.urandom(6).hex()
        self.reply_wait = settings.reply_wait
        self._settings = settings
        self._subscribers = Subscribers()
        self._seq = itertools.count(1)
        self._outbox: list[str] = []
        self._outbox_ready = asyncio.Event()
        self._inbox: deque[Decoded | _Reconnected] = deque()
        self._inbox_ready = asyncio.Event()
        self._reassembler = Reassembler()
        self._fetch: Fetch | None = None
        self._wants: Wants = lambda tenant, user, row_id: False
        self._catch_up: CatchUpHook | None = None
        self._on_reconnect = on_reconnect
        self._on_state = on_state
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._first_connect: asyncio.Future[None] | None = None
        self._closed = False
        self.connected = False
        self._alive_ms = 0

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "start() first"
        return self._pool

    def attach(self, *, fetch: Fetch, wants: Wants, catch_up: CatchUpHook) -> None:
        """The live side's hooks: fetch rows by id, which rows it wants, its catch-up."""
        self._fetch = fetch
        self._wants = wants
        self._catch_up = catch_up

    async def start(self) -> None:
        """Opens the send pool and the LISTEN connection; returns once listening."""
        self._pool = await asyncpg.create_pool(
            self._settings.dsn,
            min_size=1,
            max_size=4,
            timeout=self._settings.connect_timeout,
            # Bus events are fleeting: a NOTIFY need not wait for a WAL flush.
            server_settings={"synchronous_commit": "off"},
        )
        loop = asyncio.get_running_loop()
        self._first_connect = loop.create_future()
        self._tasks = [
            loop.create_task(self._listen_forever()),
            loop.create_task(self._send_forever()),
            loop.create_task(self._receive_forever()),
        ]
        await asyncio.wait_for(asyncio.shield(self._first_connect), self._settings.connect_timeout)

    # --- publishing -------------------------------------------------------------

    def publish(self, event: BusEvent) -> None:
        """Dispatches here at once, and queues the NOTIFY for the other replicas.

        A reply addressed to this replica stays here; every other event is sent.
        """
        to = addressee(event)
        if to != self.replica_id and not self._closed:
            text = REGISTRY.encode(event)
            self._outbox += payloads(text, sender=self.replica_id, seq=next(self._seq), to=to)
            self._outbox_ready.set()
        self._dispatch(event)

    def announcement(self, event: BusEvent) -> Announcement | None:
        """The payloads that carry ``event`` from inside a store transaction."""
        if self._closed:
            return None
        text = REGISTRY.encode(event)
        chunks = payloads(text, sender=self.replica_id, seq=next(self._seq), to=addressee(event))
        return Announcement(CHANNEL, tuple(chunks))

    def dispatch_announced(self, event: BusEvent) -> None:
        """Dispatches here an event whose announcement committed; sends nothing."""
        self._dispatch(event)

    def dispatch_here(self, event: BusEvent) -> None:
        """Dispatches to this replica's subscribers only (a catch-up)."""
        self._dispatch(event)

    def _dispatch(self, event: BusEvent) -> None:
        self._subscribers.dispatch(event)

    def subscribe(self, handler: Handler) -> Unsubscribe:
        return self._subscribers.add(handler)

    async def _send_forever(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch, self._outbox = self._outbox, []
            if batch:
                await self._send(batch)

    async def _send(self, batch: list[str]) -> None:
        for attempt in range(3):
            try:
                await self.pool.execute(_SEND, CHANNEL, batch)
                return
            except _DB_ERRORS as exc:
                reason = type(exc).__name__
                if attempt == 2 or self._closed:
                    # Replicas that miss these catch up when their own LISTEN drops;
                    # with the database away, every LISTEN drops.
                    logger.warning("bus send failed; events dropped", extra={"reason": reason})
                    return
                await asyncio.sleep(0.05 * (attempt + 1))

    # --- listening --------------------------------------------------------------

    async def _listen_forever(self) -> None:
        backoff = 0.05
        first = True
        while not self._closed:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._settings.dsn,
                    timeout=self._settings.connect_timeout,
                    # Operators (and tests) find this replica's listener by name.
                    server_settings={"application_name": f"notify-bus-{self.replica_id}"},
                )
                self._lost.clear()
                conn.add_termination_listener(lambda _conn: self._lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self._listener = conn
                if not first:
                    self._inbox.append(_Reconnected(self.catch_up_from_ms))
                    self._inbox_ready.set()
                    self._on_reconnect()
                self._mark_alive()
                self._set_connected(True)
                backoff = 0.05
                if first and self._first_connect is not None:
                    self._first_connect.set_result(None)
                first = False
                await self._watch(conn)
            except _DB_ERRORS as exc:
                logger.warning("bus connection lost", extra={"reason": type(exc).__name__})
            finally:
                self._listener = None
                self._set_connected(False)
                self._reassembler.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            if self._closed:
                return
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self._settings.max_backoff)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Returns when the connection is lost; pings it so a silent drop is seen."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.ping_interval):
                    await self._lost.wait()
            if self._lost.is_set() or conn.is_closed():
                return
            async with asyncio.timeout(self._settings.connect_timeout):
                await conn.fetchval("SELECT 1")
            self._mark_alive()

    @property
    def catch_up_from_ms(self) -> int:
        """Where a catch-up after a drop now would start (wall-clock ms)."""
        return self._alive_ms - int(self._settings.catch_up_margin * 1000)

    def _mark_alive(self) -> None:
        self._alive_ms = int(time.time() * 1000)

    def _set_connected(self, connected: bool) -> None:
        if self.connected != connected:
            self.connected = connected
            self._on_state(connected)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            header, body = parse_header(str(payload))
            if header.sender == self.replica_id:
                return  # dispatched when published
            if header.to and header.to != self.replica_id:
                return  # a reply for another replica
            text = self._reassembler.add(header, body)
            if text is None:
                return
            self._inbox.append(REGISTRY.decode(text))
        except Exception:
            logger.exception("bad bus payload dropped")
            return
        self._inbox_ready.set()

    # --- receiving --------------------------------------------------------------

    async def _receive_forever(self) -> None:
        while True:
            await self._inbox_ready.wait()
            self._inbox_ready.clear()
            while self._inbox:
                batch: list[Decoded] = []
                while self._inbox and not isinstance(self._inbox[0], _Reconnected):
                    item = self._inbox.popleft()
                    assert not isinstance(item, _Reconnected)
                    batch.append(item)
                if batch:
                    await self._deliver(batch)
                if self._inbox and isinstance(self._inbox[0], _Reconnected):
                    marker = self._inbox.popleft()
                    assert isinstance(marker, _Reconnected)
                    await self._run_catch_up(marker.since_ms)

    async def _run_catch_up(self, since_ms: int) -> None:
        if self._catch_up is None:
            return
        try:
            await self._catch_up(since_ms)
        except Exception as exc:
            # The store is away too: drop the connection, so the catch-up runs
            # again (from the same point) once the database answers.
            logger.warning("bus catch-up failed; retrying", extra={"reason": type(exc).__name__})
            margin_ms = int(self._settings.catch_up_margin * 1000)
            self._alive_ms = min(self._alive_ms, since_ms + margin_ms)
            if self._listener is not None:
                self._listener.terminate()
            self._lost.set()

    async def _deliver(self, batch: list[Decoded]) -> None:
        rows = await self._fetch_announced([e for e in batch if isinstance(e, Announced)])
        for item in batch:
            if isinstance(item, Announced):
                found = tuple(rows[r.row_id] for r in item.refs if r.row_id in rows)
                self._dispatch(item.with_rows(found))
            else:
                self._dispatch(item)

    async def _fetch_announced(self, announced: list[Announced]) -> dict[str, Notification]:
        wanted: dict[str, list[str]] = {}
        for item in announced:
            for ref in item.refs:
                if self._wants(ref.tenant_id, ref.user_id, ref.row_id):
                    wanted.setdefault(ref.tenant_id, []).append(ref.row_id)
        found: dict[str, Notification] = {}
        if not wanted or self._fetch is None:
            return found
        try:
            for tenant, ids in wanted.items():
                for start in range(0, len(ids), _FETCH_CHUNK):
                    for row in await self._fetch(tenant, ids[start : start + _FETCH_CHUNK]):
                        found[row.id] = row
        except Exception as exc:
            # The store is away: treat it like a bus drop, so a catch-up runs.
            logger.warning("bus fetch failed", extra={"reason": type(exc).__name__})
            if self._listener is not None:
                self._listener.terminate()
            self._lost.set()
        return found

    async def close(self) -> None:
        self._closed = True
        self._subscribers.clear()
        # What is queued still goes out: replies and acks other replicas wait for.
        if self._outbox and self._pool is not None:
            batch, self._outbox = self._outbox, []
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._send(batch)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.terminate()
        if self._pool is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._pool.close()
