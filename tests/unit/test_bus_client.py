"""BusClient.ask with presence: no wait when nobody else watches, and no longer than needed."""

from __future__ import annotations

import asyncio

import pytest

from notify.core.events import BusEvent, NotificationsCreated, NotificationsTaken, Request
from notify.realtime.bus import BusClient, LocalBus


class SlowBus(LocalBus):
    """An in-process bus that claims other replicas may answer within a long wait."""

    reply_wait = 30.0


def created(origin: str, ticket: int) -> NotificationsCreated:
    return NotificationsCreated(origin, ticket, (), 0)


async def test_nobody_else_watching_means_no_wait() -> None:
    asked: list[Request] = []

    async def expected(request: Request) -> int:
        asked.append(request)
        return 0

    client = BusClient(SlowBus(), expected)
    async with asyncio.timeout(1):  # far below the bus's 30 s
        assert await client.ask(created) == []
    assert len(asked) == 1


async def test_the_wait_ends_when_every_expected_replica_has_answered() -> None:
    bus = SlowBus()

    async def expected(request: Request) -> int:
        return 2

    client = BusClient(bus, expected)
    requests: list[NotificationsCreated] = []
    published = asyncio.Event()

    def seen(event: object) -> None:
        if isinstance(event, NotificationsCreated):
            requests.append(event)
            published.set()

    bus.subscribe(seen)
    asking = asyncio.create_task(client.ask(created))
    await published.wait()
    request = requests[0]
    bus.publish(NotificationsTaken(request.origin, request.ticket, (), 1))
    await asyncio.sleep(0)  # the asker may run: it must still be waiting
    assert not asking.done()  # one of two
    bus.publish(NotificationsTaken("someone-else", request.ticket, (), 1))  # not for us
    bus.publish(NotificationsTaken(request.origin, request.ticket, ("r",), 2))
    async with asyncio.timeout(1):
        replies = await asking
    assert [r.at_ms for r in replies if isinstance(r, NotificationsTaken)] == [1, 2]


async def test_without_presence_the_old_wait_holds() -> None:
    client = BusClient(LocalBus())
    assert await client.ask(created) == []


class RecordingBus(SlowBus):
    """Records how each event left: sent to the other replicas, or dispatched here only."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[BusEvent] = []
        self.here_only: list[BusEvent] = []

    def publish(self, event: BusEvent) -> None:
        self.sent.append(event)
        super().publish(event)

    def dispatch_announced(self, event: BusEvent) -> None:
        self.here_only.append(event)
        super().dispatch_announced(event)


async def test_a_reply_that_arrives_before_the_request_is_dispatched_is_kept() -> None:
    async def expected(request: Request) -> int:
        return 1

    bus = RecordingBus()
    client = BusClient(bus, expected)
    reservation = client.reserve()
    # Another replica heard the store's commit and answered before the asker resumed.
    bus.publish(NotificationsTaken(reservation.origin, reservation.ticket, ("r",), 7))
    async with asyncio.timeout(1):  # the one expected reply is in: no 30 s wait
        replies = await reservation.ask(
            created(reservation.origin, reservation.ticket), lambda r: False, announced=True
        )
    assert [r.at_ms for r in replies if isinstance(r, NotificationsTaken)] == [7]
    assert client.pending == 0


async def test_an_announced_request_is_dispatched_here_and_not_sent_again() -> None:
    async def expected(request: Request) -> int:
        return 0

    bus = RecordingBus()
    client = BusClient(bus, expected)
    seen: list[object] = []
    bus.subscribe(seen.append)
    reservation = client.reserve()
    request = created(reservation.origin, reservation.ticket)
    await reservation.ask(request, lambda r: False, announced=True)
    assert bus.here_only == [request]
    assert bus.sent == []
    assert seen == [request]
    # Not announced: sent like any request.
    other = client.reserve()
    second = created(other.origin, other.ticket)
    await other.ask(second, lambda r: False, announced=False)
    assert bus.sent == [second]


async def test_a_released_reservation_leaks_nothing_and_drops_late_replies() -> None:
    bus = RecordingBus()
    client = BusClient(bus)
    reservation = client.reserve()
    assert client.pending == 1
    reservation.release()
    reservation.release()  # safe to repeat
    assert client.pending == 0
    bus.publish(NotificationsTaken(reservation.origin, reservation.ticket, ("r",), 1))
    assert client.pending == 0
    with pytest.raises(RuntimeError, match="released"):
        await reservation.ask(
            created(reservation.origin, reservation.ticket), lambda r: False, announced=False
        )


async def test_a_local_bus_announces_nothing() -> None:
    reservation = BusClient(LocalBus()).reserve()
    assert reservation.announcement(created(reservation.origin, reservation.ticket)) is None
    assert reservation.announced is None
    reservation.release()


async def test_ask_gives_its_ticket_back() -> None:
    client = BusClient(LocalBus())
    await client.ask(created)

    def broken(origin: str, ticket: int) -> NotificationsCreated:
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        await client.ask(broken)
    assert client.pending == 0
