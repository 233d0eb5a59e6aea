"""The hub: (tenant, user) -> the live sessions (open streams) of that user.

A Session is one StreamEvents call. Producers ``offer`` events without
awaiting; the stream's coroutine awaits ``next``. Each session has a bounded
queue: a client that cannot keep up is ended (SLOW_CONSUMER), never silently
skipped, so it reconnects and pages what it missed. Heartbeats come from one
timer per session rather than a timeout per wait, which keeps an idle stream
down to a few small objects.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from notify.core.clock import Clock, SystemClock
from notify.core.errors import ResourceExhausted
from notify.core.model import Counts, DeviceType, Notification
from notify.core.smalldeque import SmallDeque


class CloseReason(Enum):
    CLIENT_GONE = "client_gone"
    SLOW_CONSUMER = "slow_consumer"
    SHUTDOWN = "shutdown"
    MAX_AGE = "max_age"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class NotificationPush:
    notification: Notification
    stored_at_ns: int  # perf_counter_ns() when Notify stored it: delivery latency starts here


@dataclass(frozen=True, slots=True)
class DataChangePush:
    idempotency_key: str
    subject_ref: str
    subject_type: str


@dataclass(frozen=True, slots=True)
class UpdatePush:
    """Rows of the user changed state (or were deleted)."""

    rows: tuple[Notification, ...]
    deleted_ids: tuple[str, ...]
    change: int = 0


@dataclass(frozen=True, slots=True)
class CountsPush:
    counts: Counts


Event = Heartbeat | NotificationPush | DataChangePush | UpdatePush | CountsPush


class SessionClosed(Exception):
    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class DirectOut(Protocol):
    """A stream consumer that writes some events itself, without waking its task."""

    def accepts(self, event: Event) -> bool:
        """Whether ``event`` is of a kind it writes directly (cheap, no side effect)."""
        ...

    def write(self, event: Event) -> bool:
        """Writes ``event`` now; False (and nothing done) if it cannot at the moment."""
        ...


class _DirectRound:
    """The sessions with direct writes due, written in one callback per loop step."""

    __slots__ = ("_loop", "_scheduled", "_sessions")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._sessions: list[Session] = []
        self._scheduled = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _DirectRound:
        found = _ROUNDS.get(loop)
        if found is None:
            found = _ROUNDS[loop] = cls(loop)
        return found

    def add(self, session: Session) -> None:
        self._sessions.append(session)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            session._write_direct()


_ROUNDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _DirectRound] = (
    weakref.WeakKeyDictionary()
)

_session_counter = itertools.count(1)
_session_prefix = os.urandom(6).hex()


class Session:
    __slots__ = (
        "_age_timer",
        "_closed",
        "_direct_out",
        "_events",
        "_heartbeat_interval",
        "_hub",
        "_loop",
        "_timer",
        "_waiter",
        "device_type",
        "direct",
        "id",
        "queue_size",
        "tenant_id",
        "user_id",
    )

    def __init__(
        self,
        hub: Hub,
        tenant_id: str,
        user_id: str,
        device_type: DeviceType,
        *,
        queue_size: int,
        heartbeat_interval: float,
        max_age: float,
    ) -> None:
        self.id = f"{_session_prefix}-{next(_session_counter):x}"
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.device_type = device_type
        self.queue_size = queue_size
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        # Almost always empty or nearly: a list's 56 bytes, not a deque's 760.
        self._events: SmallDeque[Event] = SmallDeque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: CloseReason | None = None
        self._heartbeat_interval = heartbeat_interval
        # Set by the stream's consumer: events it ``accepts`` while it is idle
        # (waiting in ``next`` with nothing queued) are written by it at the
        # end of the loop step, for every such session in one callback, with
        # no task woken per session; anything else takes the queue.
        self.direct: DirectOut | None = None
        self._direct_out: list[Event] | None = None  # made when first due
        # The handshake: the first event of every stream carries the session id.
        self._events.append(Heartbeat(hub.clock.now_ms()))
        self._timer = self._loop.call_later(heartbeat_interval, self._beat)
        self._age_timer = (
            # Up to 10% jitter, so streams opened together do not all end together.
            self._loop.call_later(max_age * (0.9 + 0.1 * random.random()), self._expire)
            if max_age > 0
            else None
        )

    @property
    def closed(self) -> CloseReason | None:
        return self._closed

    def offer(self, event: Event) -> bool:
        """Queues an event; False if the session is closed or just overflowed."""
        if self._closed is not None:
            return False
        out = self._direct_out
        events = self._events
        if out:  # a direct write is due: this one goes after it, either way
            if len(out) + len(events) >= self.queue_size:
                self.close(CloseReason.SLOW_CONSUMER)
                return False
            out.append(event)
            return True
        if not events:
            direct = self.direct
            waiter = self._waiter
            if (
                direct is not None
                and waiter is not None
                and not waiter.done()
                and direct.accepts(event)
            ):
                if out is None:
                    self._direct_out = [event]
                else:
                    out.append(event)
                _DirectRound.of(self._loop).add(self)
                return True
        elif len(events) >= self.queue_size:
            self.close(CloseReason.SLOW_CONSUMER)
            return False
        events.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def _write_direct(self) -> None:
        """Writes the events due for the direct path; the first it cannot, and all after
        it, go to the queue in order (the connection pushes back, the consumer woke)."""
        out = self._direct_out
        if not out:
            return
        self._direct_out = []
        for index, event in enumerate(out):
            if self._closed is not None:
                return
            direct, waiter = self.direct, self._waiter
            if (
                direct is None
                or waiter is None
                or waiter.done()
                or self._events
                or not direct.write(event)
            ):
                self._events.extend(out[index:])
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                return

    async def next(self) -> Event:
        """The next event; raises SessionClosed once the session is closed."""
        while True:
            if self._closed is not None:
                raise SessionClosed(self._closed)
            if self._events:
                return self._events.popleft()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self, reason: CloseReason) -> None:
        """Ends the session (idempotent); a waiting ``next`` raises SessionClosed."""
        if self._closed is not None:
            return
        self._closed = reason
        self._timer.cancel()
        if self._age_timer is not None:
            self._age_timer.cancel()
        self._events.clear()
        self._direct_out = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._hub._remove(self, reason)

    def _expire(self) -> None:
        self.close(CloseReason.MAX_AGE)

    def _beat(self) -> None:
        self.offer(Heartbeat(self._hub.clock.now_ms()))
        if self._closed is None:
            self._timer = self._loop.call_later(self._heartbeat_interval, self._beat)


SessionListener = Callable[[Session, CloseReason | None], None]


class Hub:
    """Live sessions by (tenant, user). Single-threaded: use from the event loop only."""

    def __init__(
        self,
        *,
        heartbeat_interval: float,
        queue_size: int,
        max_per_user: int = 0,
        max_age: float = 0.0,
        on_change: SessionListener | None = None,
        clock: Clock | None = None,
        max_streams: int = 0,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._heartbeat_interval = heartbeat_interval
        self._queue_size = queue_size
        self._max_per_user = max_per_user
        self._max_age = max_age
        self._sessions: dict[tuple[str, str], dict[str, Session]] = {}
        self._on_change = on_change
        self._count = 0
        # Process-wide cap (0: none): distinct users could otherwise open
        # streams without bound, each holding a queue and a connection.
        self._max_streams = max_streams

    def __len__(self) -> int:
        return self._count

    def open(self, tenant_id: str, user_id: str, device_type: DeviceType) -> Session:
        """Registers a new live session; ResourceExhausted past the per-user or global cap."""
        if self._max_streams and self._count >= self._max_streams:
            raise ResourceExhausted("this server has too many open streams; retry later")
        existing = self._sessions.get((tenant_id, user_id))
        if existing and self._max_per_user and len(existing) >= self._max_per_user:
            raise ResourceExhausted(
                f"this user already has {len(existing)} open streams (the limit); close one first"
            )
        session = Session(
            self,
            tenant_id,
            user_id,
            device_type,
            queue_size=self._queue_size,
            heartbeat_interval=self._heartbeat_interval,
            max_age=self._max_age,
        )
        self._sessions.setdefault((tenant_id, user_id), {})[session.id] = session
        self._count += 1
        if self._on_change is not None:
            self._on_change(session, None)
        return session

    def find(self, tenant_id: str, user_id: str, session_id: str) -> Session | None:
        """The session only if it belongs to that user: no cross-user reach."""
        return self._sessions.get((tenant_id, user_id), {}).get(session_id)

    def sessions_of(self, tenant_id: str, user_id: str) -> list[Session]:
        return list(self._sessions.get((tenant_id, user_id), {}).values())

    def has_sessions(self, tenant_id: str, user_id: str) -> bool:
        return (tenant_id, user_id) in self._sessions

    def publish(self, tenant_id: str, user_id: str, event: Event) -> int:
        """Offers the event to every session of that user; returns how many took it."""
        sessions = self._sessions.get((tenant_id, user_id))
        if not sessions:
            return 0
        # Copy: a session that overflows removes itself while we iterate.
        return sum(session.offer(event) for session in list(sessions.values()))

    def close_all(self, reason: CloseReason) -> None:
        for sessions in list(self._sessions.values()):
            for session in list(sessions.values()):
                session.close(reason)

    def _remove(self, session: Session, reason: CloseReason) -> None:
        key = (session.tenant_id, session.user_id)
        sessions = self._sessions.get(key)
        if sessions is None or sessions.pop(session.id, None) is None:
            return
        if not sessions:
            del self._sessions[key]
        self._count -= 1
        if self._on_change is not None:
            self._on_change(session, reason)
