"""The in-process bus, and the request/reply helper every bus shares.

``LocalBus`` calls its subscribers synchronously, in subscription order, so
a request's replies are in before ``publish`` returns and nothing waits.
``BusClient`` is how the service asks a question over any bus: it numbers the
request, publishes it, and collects the replies addressed to this replica,
waiting at most the bus's ``reply_wait`` for the ones from other processes.
``BusClient.reserve`` splits an ask in two around a store write: the ticket
and its reply waiter first, so that the request can be announced in the
store's transaction and a reply that beats the commit's return is kept.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable

from notify.core.events import BusEvent, Reply, Request
from notify.core.ports import Announcement, Bus, Unsubscribe

logger = logging.getLogger("notify.bus")

Handler = Callable[[BusEvent], None]


class Subscribers:
    """A bus's local subscribers, called in order, each event reaching all before the next.

    An event dispatched by a subscriber (a reply) is queued and delivered after
    the current one has reached everybody, so every subscriber sees every event
    in the order it was dispatched. One failing subscriber never keeps an event
    from the others.
    """

    def __init__(self) -> None:
        self._handlers: tuple[Handler, ...] = ()
        self._queue: deque[BusEvent] = deque()
        self._dispatching = False

    def add(self, handler: Handler) -> Unsubscribe:
        # A fresh tuple per change: a dispatch in progress keeps iterating its own.
        self._handlers = (*self._handlers, handler)

        def unsubscribe() -> None:
            self._handlers = tuple(h for h in self._handlers if h is not handler)

        return unsubscribe

    def dispatch(self, event: BusEvent) -> None:
        self._queue.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._queue:
                current = self._queue.popleft()
                for handler in self._handlers:
                    try:
                        handler(current)
                    except Exception:
                        logger.exception(
                            "bus subscriber failed", extra={"event": type(current).__name__}
                        )
        finally:
            self._dispatching = False

    def clear(self) -> None:
        self._handlers = ()


class LocalBus:
    """One process: every publish reaches every subscriber before it returns."""

    reply_wait = 0.0

    def __init__(self, replica_id: str | None = None) -> None:
        self.replica_id = replica_id or os.urandom(6).hex()
        self._subscribers = Subscribers()

    def publish(self, event: BusEvent) -> None:
        self._subscribers.dispatch(event)

    def announcement(self, event: BusEvent) -> Announcement | None:
        return None  # nobody else to tell

    def dispatch_announced(self, event: BusEvent) -> None:
        self._subscribers.dispatch(event)

    def subscribe(self, handler: Handler) -> Unsubscribe:
        return self._subscribers.add(handler)

    async def close(self) -> None:
        self._subscribers.clear()


# How many other replicas will answer a request (a bus across processes
# knows from presence); 0 means nobody, so the requester does not wait.
ExpectedReplies = Callable[[Request], Awaitable[int]]


class _Waiting:
    __slots__ = ("done", "enough", "replies", "wake")

    def __init__(self, done: Callable[[list[Reply]], bool]) -> None:
        self.replies: list[Reply] = []
        self.done = done
        self.wake: asyncio.Event | None = None
        # Once this many replies are in, every replica expected has answered.
        self.enough: int | None = None

    def finished(self) -> bool:
        return self.done(self.replies) or (
            self.enough is not None and len(self.replies) >= self.enough
        )


def _never_done(replies: list[Reply]) -> bool:
    return False


class Reservation:
    """An ask taken in two steps: its ticket and reply waiter now, its request later.

    Between the two the request may be announced to the other replicas by
    someone else (the store, in its insert transaction: ``announcement``),
    and their replies, which can come back before the announcer's caller
    even resumes, are kept. ``ask`` then completes it; ``release`` gives the
    ticket back if it never will be (the write failed). Both are safe to
    repeat.
    """

    __slots__ = ("_announced", "_client", "_waiting", "ticket")

    def __init__(self, client: BusClient, ticket: int, waiting: _Waiting) -> None:
        self._client = client
        self._waiting: _Waiting | None = waiting
        self._announced: BusEvent | None = None
        self.ticket = ticket

    @property
    def origin(self) -> str:
        return self._client.replica_id

    def announcement(self, event: Request) -> Announcement | None:
        """The bus's payloads for ``event``; remembers it as the one announced.

        None (and nothing remembered) from a bus with nobody else to tell.
        Called again (the store retried the write in another shape), the
        latest event is the one remembered.
        """
        found = self._client.bus.announcement(event)
        self._announced = event if found is not None else None
        return found

    @property
    def announced(self) -> BusEvent | None:
        """The event of the last announcement handed out, if any."""
        return self._announced

    async def ask(
        self, event: Request, done: Callable[[list[Reply]], bool], *, announced: bool
    ) -> list[Reply]:
        """Dispatches ``event`` and gathers the replies, within ``BusClient.ask``'s bounds.

        ``announced``: the store's commit already carried it to the other
        replicas, so it is dispatched here only, never sent a second time.
        """
        waiting = self._waiting
        if waiting is None:
            raise RuntimeError("a released reservation cannot ask")
        try:
            waiting.done = done
            # Replies in before the request is dispatched here came from other
            # replicas (dispatching here is synchronous, nothing else runs).
            early = len(waiting.replies)
            if announced:
                self._client.bus.dispatch_announced(event)
            else:
                self._client.bus.publish(event)
            return await self._client.gather(event, waiting, early)
        finally:
            self.release()

    def release(self) -> None:
        if self._waiting is not None:
            self._waiting = None
            self._client.forget(self.ticket)


class BusClient:
    """Tells the bus, or asks it and gathers the answers addressed to this replica."""

    def __init__(self, bus: Bus, expected_replies: ExpectedReplies | None = None) -> None:
        self.bus = bus
        self._expected = expected_replies
        self._tickets = itertools.count(1)
        self._waiting: dict[int, _Waiting] = {}
        self._unsubscribe = bus.subscribe(self._on_event)

    @property
    def replica_id(self) -> str:
        return self.bus.replica_id

    def tell(self, event: BusEvent) -> None:
        """Publishes an event that wants no reply."""
        self.bus.publish(event)

    def reserve(self) -> Reservation:
        """A ticket with its reply waiter registered, for a request published later."""
        ticket = next(self._tickets)
        waiting = self._waiting[ticket] = _Waiting(_never_done)
        return Reservation(self, ticket, waiting)

    async def ask(
        self,
        request: Callable[[str, int], Request],
        done: Callable[[list[Reply]], bool] = _never_done,
    ) -> list[Reply]:
        """Publishes ``request(origin, ticket)``; returns the replies.

        Waits until ``done(replies)`` says nothing more can come, every other
        replica expected to answer has (with ``expected_replies``; none
        expected: no wait at all), or the bus's reply_wait has passed,
        whichever is first. This replica's own replies are in before
        ``publish`` returns.
        """
        reservation = self.reserve()
        try:
            event = request(self.bus.replica_id, reservation.ticket)
        except BaseException:
            reservation.release()
            raise
        return await reservation.ask(event, done, announced=False)

    async def gather(self, event: Request, waiting: _Waiting, early: int = 0) -> list[Reply]:
        """Waits for the replies to a published ``event``; ``early`` of them came
        from other replicas before it was dispatched here."""
        if self.bus.reply_wait > 0 and not waiting.done(waiting.replies):
            here = len(waiting.replies) - early
            waiting.wake = asyncio.Event()
            if self._expected is not None:
                try:
                    async with asyncio.timeout(self.bus.reply_wait):
                        expected = await self._expected(event)
                except TimeoutError:
                    expected = 0
                if expected <= 0:
                    return waiting.replies
                waiting.enough = here + expected
                if waiting.finished():
                    return waiting.replies
            try:
                async with asyncio.timeout(self.bus.reply_wait):
                    await waiting.wake.wait()
            except TimeoutError:
                pass
        return waiting.replies

    @property
    def pending(self) -> int:
        """Asks still gathering replies, reserved ones included."""
        return len(self._waiting)

    def forget(self, ticket: int) -> None:
        """Stops collecting replies for ``ticket``; later ones are dropped as late."""
        self._waiting.pop(ticket, None)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: BusEvent) -> None:
        origin = getattr(event, "origin", None)
        if origin != self.bus.replica_id or not isinstance(event, Reply):
            return
        waiting = self._waiting.get(event.ticket)
        if waiting is None:
            return  # late: its requester stopped waiting
        waiting.replies.append(event)
        if waiting.wake is not None and waiting.finished():
            waiting.wake.set()
