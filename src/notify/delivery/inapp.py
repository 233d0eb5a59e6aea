"""In-app delivery: rows go to the user's live streams over the bus.

A row is DELIVERED when a live session on any replica took it (the replica
that owns the session says so in a NotificationsTaken reply), and PENDING
otherwise: it waits in the inbox and is replayed to a resuming stream.

A Notify's new rows are announced to the other replicas in the store's own
insert transaction (``prepare``): the ask is reserved before the write, its
announcer gives the store the NotificationsCreated payloads for the rows it
creates, and ``InAppSend.send`` completes the ask after the commit without
sending the event again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from notify.core.events import NotificationsCreated, NotificationsTaken, Reply
from notify.core.model import Channel, Notification, Status
from notify.core.ports import Announcement, Announcer, Delivery, Receipt
from notify.realtime.bus import BusClient, Reservation

_PENDING = Receipt(Status.PENDING)


def pushable(row: Notification) -> bool:
    """A new row this provider pushes to live streams: visible now, and in-app."""
    return row.visible and row.channel is Channel.IN_APP


class InAppProvider:
    name = "in_app"
    channel = Channel.IN_APP

    def __init__(self, bus: BusClient) -> None:
        self._bus = bus

    async def send(self, deliveries: Sequence[Delivery]) -> list[Receipt]:
        rows = tuple(d.row for d in deliveries)
        if not rows:
            return []
        stored_at_ns = time.perf_counter_ns()
        replies = await self._bus.ask(
            lambda origin, ticket: NotificationsCreated(origin, ticket, rows, stored_at_ns),
            _all_taken(len(rows)),
        )
        return _receipts(rows, replies)

    def prepare(self) -> InAppSend:
        """A send whose rows are announced in the store's transaction (see ``InAppSend``)."""
        return InAppSend(self._bus.reserve())


class InAppSend:
    """One Notify's in-app send, split around the store's insert.

    ``announce`` goes to ``create_notifications``: inside the transaction it
    turns the created rows this provider pushes into the bus's payloads.
    ``send`` then pushes the rows here and gathers the replies; the other
    replicas already have the event from the commit. ``release`` (always
    call it, it is safe after ``send``) frees the reservation when the write
    failed or created nothing to push.
    """

    def __init__(self, reservation: Reservation) -> None:
        self._reservation = reservation

    @property
    def announce(self) -> Announcer:
        return self._announce

    def _announce(self, created: Sequence[Notification]) -> Announcement | None:
        rows = tuple(row for row in created if pushable(row))
        if not rows:
            return None
        reservation = self._reservation
        event = NotificationsCreated(
            reservation.origin, reservation.ticket, rows, time.perf_counter_ns()
        )
        return reservation.announcement(event)

    async def send(self, deliveries: Sequence[Delivery]) -> list[Receipt]:
        rows = tuple(d.row for d in deliveries)
        if not rows:
            self.release()
            return []
        reservation = self._reservation
        announced = reservation.announced
        stored_at_ns = time.perf_counter_ns()  # committed: stored from here on
        if isinstance(announced, NotificationsCreated) and _same_rows(announced.rows, rows):
            event = dataclasses.replace(announced, rows=rows, stored_at_ns=stored_at_ns)
            replies = await reservation.ask(event, _all_taken(len(rows)), announced=True)
        else:
            # Not announced (a bus with nobody else to tell, a store that ignores
            # announcers) or not these rows: published as any request is.
            event = NotificationsCreated(reservation.origin, reservation.ticket, rows, stored_at_ns)
            replies = await reservation.ask(event, _all_taken(len(rows)), announced=False)
        return _receipts(rows, replies)

    def release(self) -> None:
        self._reservation.release()


def _same_rows(a: Sequence[Notification], b: Sequence[Notification]) -> bool:
    return len(a) == len(b) and {r.id for r in a} == {r.id for r in b}


def _all_taken(wanted: int) -> Callable[[list[Reply]], bool]:
    def all_taken(replies: list[Reply]) -> bool:
        taken = sum(len(r.row_ids) for r in replies if isinstance(r, NotificationsTaken))
        return taken >= wanted

    return all_taken


def _receipts(rows: Sequence[Notification], replies: list[Reply]) -> list[Receipt]:
    taken: dict[str, Receipt] = {}
    for reply in replies:
        if isinstance(reply, NotificationsTaken):
            receipt = Receipt(Status.DELIVERED, at_ms=reply.at_ms)
            for row_id in reply.row_ids:
                taken.setdefault(row_id, receipt)
    return [taken.get(row.id, _PENDING) for row in rows]
