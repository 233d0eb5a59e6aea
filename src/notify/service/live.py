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


class LiveStreams:
    """Opens live streams: validation, limits and the session, before any event."""

    def __init__(self, notifier: Notifier, metrics: Metrics, clock: Clock, *, enabled: bool):
        self._notifier = notifier
        self._metrics = metrics
        self._clock = clock
        self._enabled = enabled

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
        return LiveStream(self._notifier, self._metrics, self._clock, principal, session, position)


class LiveStream:
    """One open stream. Iterate ``items()`` once; ``close`` may be called at any time."""

    def __init__(
        self,
        notifier: Notifier,
        metrics: Metrics,
        clock: Clock,
        principal: Principal,
        session: Session,
        position: ResumePosition | None,
    ) -> None:
        self._notifier = notifier
        self._metrics = metrics
        self._clock = clock
        self._principal = principal
        self._session = session
        self._position = position

    @property
    def session_id(self) -> str:
        return self._session.id

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
        events = self._metrics.stream_events_sent
        sent_heartbeat = events.labels(kind="heartbeat")
        sent_notification = events.labels(kind="notification")
        sent_data_change = events.labels(kind="data_change")
        sent_update = events.labels(kind="update")
        sent_counts = events.labels(kind="counts")
        latency = self._metrics.delivery_latency
        try:
            # The handshake, then the badge: a client is right from its first events.
            try:
                handshake = await session.next()
            except SessionClosed as closed:  # closed at once (shutdown, or the client went)
                _raise_for(closed.reason)
                return
            assert isinstance(handshake, Heartbeat)  # a new session's first event
            yield handshake
            sent_heartbeat.inc()
            yield CountsPush(await notifier.counts(principal, INBOX))
            sent_counts.inc()
            # Where this stream is, for the resume tokens it hands out: the last
            # row it had, and the last change of the inbox it had.
            if position is not None:
                last_key = position.key
                last_change = position.change or 0
            else:
                last_key = PageKey(self._clock.now_ms(), FIRST_ID)
                last_change = await notifier.last_change(principal)
            # Registered first, replayed second: whatever happens meanwhile is
            # queued live, and what the replay covered is skipped when it comes out.
            replayed: set[str] = set()
            replayed_change = 0
            if position is not None:
                for row in await notifier.missed_since(principal, position.key):
                    replayed.add(row.id)
                    last_key = row.key
                    sent_notification.inc()
                    yield LiveNotification(row, _resume_token(row.key, last_change))
                if position.change is not None:
                    missed = await notifier.missed_changes(principal, position.change, replayed)
                    replayed_change = last_change = missed.change
                    if missed.rows or missed.deleted_ids:
                        sent_update.inc()
                        yield LiveUpdate(
                            missed.rows,
                            missed.deleted_ids,
                            _resume_token(last_key, last_change),
                        )
            yield CAUGHT_UP
            while True:
                try:
                    event = await session.next()
                except SessionClosed as closed:
                    _raise_for(closed.reason)
                    return
                if isinstance(event, NotificationPush):
                    row = event.notification
                    if row.id in replayed:
                        replayed.discard(row.id)  # pushed live while it was replayed
                        continue
                    latency.observe((time.perf_counter_ns() - event.stored_at_ns) / 1e9)
                    sent_notification.inc()
                    last_key = max(last_key, row.key)
                    yield LiveNotification(row, _resume_token(row.key, last_change))
                    continue
                if isinstance(event, UpdatePush):
                    if event.change and event.change <= replayed_change:
                        continue  # the replay already carried it
                    last_change = max(last_change, event.change)
                    sent_update.inc()
                    yield LiveUpdate(
                        event.rows, event.deleted_ids, _resume_token(last_key, last_change)
                    )
                    continue
                if isinstance(event, Heartbeat):
                    sent_heartbeat.inc()
                elif isinstance(event, CountsPush):
                    sent_counts.inc()
                else:
                    sent_data_change.inc()
                yield event
        finally:
            session.close(CloseReason.CLIENT_GONE)


def _raise_for(reason: CloseReason) -> None:
    """The error a transport reports for a session closed for ``reason``; None: a clean end."""
    error = _CLOSE_ERRORS.get(reason)
    if error is not None:
        raise error()
