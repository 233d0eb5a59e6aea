"""BusClient.ask with presence: no wait when nobody else watches, and no longer than needed."""

from __future__ import annotations

import asyncio

from notify.core.events import NotificationsCreated, NotificationsTaken, Request
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
