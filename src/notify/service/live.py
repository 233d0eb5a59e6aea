"""One live stream of a user's events, for every transport that serves one.

StreamEvents (Connect, gRPC, gRPC-Web) and Server-Sent Events are two
encodings of the same stream: the handshake heartbeat, the badge, the replay
of what a resuming client missed (rows, then state changes, without
duplicates when pushes race the replay), then live events until the session
closes. All of that lives here once; a transport only turns each item into
its own frames and maps the errors raised here to its own codes.

Nothing here knows about HTTP or protobuf: items are the hub's events, plus
notifications and updates paired with the resume token a client hands back.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Protocol

from notify.auth import Principal
from notify.core.clock import Clock
from notify.core.commands import build_resume_position, stream_device_type
from notify.core.cursors import ResumePosition, encode_resume_token
from notify.core.errors import NotifyError, ResourceExhausted, Unavailable, Unimplemented
from notify.core.model import INBOX, Notification, PageKey
from notify.metrics import Metrics
from notify.realtime.hub import (
    CloseReason,
    CountsPush,
    DataChangePush,
    Event,
    Heartbeat,
    NotificationPush,
    Session,
    SessionClosed,
    UpdatePush,
)
from notify.service.notifier import Notifier

# The smallest UUIDv7: a position before every row of a millisecond.
FIRST_ID = "00000000-0000-7000-8000-000000000000"


@functools.lru_cache(maxsize=1024)
def _resume_token(key: PageKey, change: int) -> str:
    """A fan-out hands one row to every session of its user in turn: one encoding for all."""
    return encode_resume_token(key, change)


@dataclass(frozen=True, slots=True)
class LiveNotification:
    """A row for the stream, and the token that resumes right after it."""

    notification: Notification
    resume_token: str


@dataclass(frozen=True, slots=True)
class LiveUpdate:
    """Rows that changed state (or were deleted), and the token that resumes after them."""

    rows: tuple[Notification, ...]
    deleted_ids: tuple[str, ...]
    resume_token: str


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Not an event: the handshake, the badge and any replay are out; live from here.

    A transport that must answer a failed replay with a status of its own
    (Server-Sent Events: a browser reconnects forever to a stream that has
    started) holds its response until this item.
    """


CAUGHT_UP = CaughtUp()

StreamItem = Heartbeat | CountsPush | DataChangePush | LiveNotification | LiveUpdate | CaughtUp

# Why a session ended, as the error a transport reports; a reason not listed
# (max age, the client gone) ends the stream cleanly.
_CLOSE_ERRORS: dict[CloseReason, Callable[[], NotifyError]] = {
    CloseReason.SHUTDOWN: lambda: Unavailable("server is shutting down; reconnect"),
    CloseReason.SLOW_CONSUMER: lambda: ResourceExhausted(
        "stream fell too far behind; reconnect and page what was missed"
    ),
}


class _Sent:
    """The stream_events_sent children, bound once for every stream of the server."""

    __slots__ = ("counts", "data_change", "heartbeat", "notification", "update")

    def __init__(self, metrics: Metrics) -> None:
        events = metrics.stream_events_sent
        self.heartbeat = events.labels(kind="heartbeat")
        self.notification = events.labels(kind="notification")
        self.data_change = events.labels(kind="data_change")
        self.update = events.labels(kind="update")
        self.counts = events.labels(kind="counts")


# What a stream that replayed nothing skips: shared, never written to.
_NOTHING_REPLAYED: frozenset[str] = frozenset()


class LiveStreams:
    """Opens live streams: validation, limits and the session, before any event."""

    def __init__(self, notifier: Notifier, metrics: Metrics, clock: Clock, *, enabled: bool):
        self._notifier = notifier
        self._metrics = metrics
        self._clock = clock
        self._enabled = enabled
        self._sent = _Sent(metrics)

    def open(self, principal: Principal, device_type: int, resume_token: str) -> LiveStream:
        """A registered session; raises Unimplemented, InvalidArgument or ResourceExhausted."""
        if not self._enabled:
            raise Unimplemented("live streaming is switched off on this server")
        kind = stream_device_type(device_type)
        position = build_resume_position(resume_token)
        try:
            session = self._notifier.open_session(principal, kind)
        except ResourceExhausted:
            self._metrics.streams_ended.labels(reason="limit").inc()
            raise
        return LiveStream(
            self._notifier, self._metrics, self._sent, self._clock, principal, session, position
        )


class FrameSink(Protocol):
    """A transport's way to write a live item at once, without the stream's task.

    ``ready``: whether an item may be written now (the connection takes it,
    nothing of the stream is in flight below). ``send`` writes it, whole.
    """

    def ready(self) -> bool: ...

    def send(self, item: StreamItem) -> None: ...


# The live events a sink writes at once: a fan-out's, the rest take the queue.
_DIRECT_EVENTS = (NotificationPush, CountsPush)


class LiveStream:
    """One open stream. Iterate ``items()`` once; ``close`` may be called at any time."""

    __slots__ = (
        "_clock",
        "_last_change",
        "_last_key",
        "_metrics",
        "_notifier",
        "_position",
        "_principal",
        "_replayed",
        "_replayed_change",
        "_sent",
        "_session",
        "_sink",
    )

    def __init__(
        self,
        notifier: Notifier,
        metrics: Metrics,
        sent: _Sent,
        clock: Clock,
        principal: Principal,
        session: Session,
        position: ResumePosition | None,
    ) -> None:
        self._notifier = notifier
        self._metrics = metrics
        self._sent = sent
        self._clock = clock
        self._principal = principal
        self._session = session
        self._position = position
        self._sink: FrameSink | None = None
        # Where this stream is, for the resume tokens it hands out (the last
        # row it had, the last change of the inbox it had), and what its replay
        # covered (skipped when pushed live as well): set up by ``items``.
        self._last_key = PageKey(0, FIRST_ID)
        self._last_change = 0
        self._replayed: set[str] | frozenset[str] = _NOTHING_REPLAYED
        self._replayed_change = 0

    @property
    def session_id(self) -> str:
        return self._session.id

    def attach(self, sink: FrameSink) -> None:
        """Live events may go straight to ``sink`` once the replay is out (see Session.direct)."""
        self._sink = sink

    def close(self) -> None:
        """The client went away: the session goes at once (idempotent)."""
        self._session.close(CloseReason.CLIENT_GONE)

    async def items(self) -> AsyncGenerator[StreamItem, None]:
        """Handshake, badge, replay, CAUGHT_UP, then live events until the session closes.

        Ends quietly for a clean close (max age, client gone); raises
        Unavailable (shutdown), ResourceExhausted (slow consumer) or
        OutOfRange (a resume too far behind) otherwise.
        """
        notifier, principal, session, position = (
            self._notifier,
            self._principal,
            self._session,
            self._position,
        )
        sent = self._sent
        try:
            # The handshake, then the badge: a client is right from its first events.
            try:
                handshake = await session.next()
            except SessionClosed as closed:  # closed at once (shutdown, or the client went)
                _raise_for(closed.reason)
                return
            assert isinstance(handshake, Heartbeat)  # a new session's first event
            yield handshake
            sent.heartbeat.inc()
            yield CountsPush(await notifier.counts(principal, INBOX))
            sent.counts.inc()
            if position is not None:
                self._last_key = position.key
                self._last_change = position.change or 0
            else:
                self._last_key = PageKey(self._clock.now_ms(), FIRST_ID)
                self._last_change = await notifier.last_change(principal)
            # Registered first, replayed second: whatever happens meanwhile is
            # queued live, and what the replay covered is skipped when it comes out.
            if position is not None:
                missed_rows = await notifier.missed_since(principal, position.key)
                if missed_rows:
                    self._replayed = replayed = set()
                for row in missed_rows:
                    replayed.add(row.id)
                    self._last_key = row.key
                    sent.notification.inc()
                    yield LiveNotification(row, _resume_token(row.key, self._last_change))
                if position.change is not None:
                    missed = await notifier.missed_changes(
                        principal, position.change, self._replayed
                    )
                    self._replayed_change = self._last_change = missed.change
                    if missed.rows or missed.deleted_ids:
                        sent.update.inc()
                        yield LiveUpdate(
                            missed.rows,
                            missed.deleted_ids,
                            _resume_token(self._last_key, self._last_change),
                        )
            yield CAUGHT_UP
            if self._sink is not None:
                session.direct = self
            step = self._step
            while True:
                try:
                    event = await session.next()
                except SessionClosed as closed:
                    _raise_for(closed.reason)
                    return
                item = step(event)
                if item is not None:
                    yield item
        finally:
            session.direct = None
            session.close(CloseReason.CLIENT_GONE)

    def accepts(self, event: Event) -> bool:
        """Session.direct: the live events the sink writes (a fan-out's)."""
        return self._sink is not None and isinstance(event, _DIRECT_EVENTS)

    def write(self, event: Event) -> bool:
        """Session.direct: writes a live event through the sink now, if it takes it and may."""
        sink = self._sink
        if sink is None or not isinstance(event, _DIRECT_EVENTS) or not sink.ready():
            return False
        item = self._step(event)
        if item is not None:
            sink.send(item)
        return True

    def _step(self, event: Event) -> StreamItem | None:
        """A live event as the stream item it becomes; None: the replay already had it."""
        if isinstance(event, NotificationPush):
            row = event.notification
            replayed = self._replayed
            if row.id in replayed:
                assert isinstance(replayed, set)  # only a real replay fills it
                replayed.discard(row.id)  # pushed live while it was replayed
                return None
            self._metrics.delivery_latency.observe(
                (time.perf_counter_ns() - event.stored_at_ns) / 1e9
            )
            self._sent.notification.inc()
            if row.key > self._last_key:
                self._last_key = row.key
            return LiveNotification(row, _resume_token(row.key, self._last_change))
        if isinstance(event, UpdatePush):
            if event.change and event.change <= self._replayed_change:
                return None  # the replay already carried it
            self._last_change = max(self._last_change, event.change)
            self._sent.update.inc()
            return LiveUpdate(
                event.rows, event.deleted_ids, _resume_token(self._last_key, self._last_change)
            )
        if isinstance(event, Heartbeat):
            self._sent.heartbeat.inc()
        elif isinstance(event, CountsPush):
            self._sent.counts.inc()
        else:
            self._sent.data_change.inc()
        return event


def _raise_for(reason: CloseReason) -> None:
    """The error a transport reports for a session closed for ``reason``; None: a clean end."""
    error = _CLOSE_ERRORS.get(reason)
    if error is not None:
        raise error()
