from __future__ import annotations

import asyncio

import pytest

from notify.core.model import DeviceType
from notify.realtime.hub import CloseReason, Event, Heartbeat, Hub, Session, SessionClosed

Ended = list[tuple[str, CloseReason | None]]


def make_hub(ended: Ended, queue_size: int = 3) -> Hub:
    return Hub(
        heartbeat_interval=3600,
        queue_size=queue_size,
        on_change=lambda session, reason: ended.append((session.id, reason)),
    )


async def test_handshake_then_events_in_order() -> None:
    hub = make_hub([])
    session = hub.open("t", "u", DeviceType.BROWSER)
    assert isinstance(await session.next(), Heartbeat)
    assert hub.publish("t", "u", Heartbeat(1)) == 1
    assert hub.publish("t", "u", Heartbeat(2)) == 1
    assert [await session.next(), await session.next()] == [Heartbeat(1), Heartbeat(2)]
    assert hub.publish("other", "u", Heartbeat(3)) == 0
    session.close(CloseReason.CLIENT_GONE)


async def test_slow_consumer_is_ended_not_skipped() -> None:
    ended: Ended = []
    hub = make_hub(ended, queue_size=3)
    slow = hub.open("t", "u", DeviceType.BROWSER)  # holds the handshake: 1 of 3
    fast = hub.open("t", "u", DeviceType.IOS)
    await fast.next()
    assert hub.publish("t", "u", Heartbeat(1)) == 2
    assert hub.publish("t", "u", Heartbeat(2)) == 2
    assert hub.publish("t", "u", Heartbeat(3)) == 1  # slow overflowed and was closed
    assert slow.closed is CloseReason.SLOW_CONSUMER
    with pytest.raises(SessionClosed) as closed:
        await slow.next()
    assert closed.value.reason is CloseReason.SLOW_CONSUMER
    assert [await fast.next() for _ in range(3)] == [Heartbeat(1), Heartbeat(2), Heartbeat(3)]
    assert len(hub) == 1
    assert ended[-1] == (slow.id, CloseReason.SLOW_CONSUMER)
    fast.close(CloseReason.CLIENT_GONE)
    assert len(hub) == 0


async def test_close_all_wakes_waiters_and_find_checks_ownership() -> None:
    hub = make_hub([])
    session = hub.open("t", "u", DeviceType.ANDROID)
    assert hub.find("t", "u", session.id) is session
    assert hub.find("t", "other", session.id) is None
    assert hub.find("t2", "u", session.id) is None
    await session.next()
    hub.close_all(CloseReason.SHUTDOWN)
    with pytest.raises(SessionClosed):
        await session.next()
    assert not hub.has_sessions("t", "u")


class Writer:
    """A stream consumer that writes heartbeats with an even stamp itself (a test's DirectOut)."""

    def __init__(self) -> None:
        self.written: list[Heartbeat] = []
        self.can_write = True

    def accepts(self, event: Event) -> bool:
        return isinstance(event, Heartbeat) and event.timestamp_ms % 2 == 0

    def write(self, event: Event) -> bool:
        if not (self.can_write and self.accepts(event)):
            return False
        assert isinstance(event, Heartbeat)
        self.written.append(event)
        return True


async def _idle(session: Session) -> asyncio.Task[Event]:
    """The consumer waiting in ``next`` with nothing queued, as a live stream does."""
    waiting = asyncio.ensure_future(session.next())
    await asyncio.sleep(0)
    return waiting


async def _end_of_step() -> None:
    await asyncio.sleep(0)


async def test_direct_events_are_written_at_the_end_of_the_step_without_waking() -> None:
    hub = make_hub([])
    session = hub.open("t", "u", DeviceType.BROWSER)
    await session.next()  # the handshake
    writer = Writer()
    session.direct = writer
    waiting = await _idle(session)
    assert hub.publish("t", "u", Heartbeat(2)) == 1
    assert hub.publish("t", "u", Heartbeat(4)) == 1
    assert writer.written == []  # not in the publisher's call
    await _end_of_step()
    assert writer.written == [Heartbeat(2), Heartbeat(4)]
    assert not waiting.done()  # the consumer never woke
    assert hub.publish("t", "u", Heartbeat(3)) == 1  # not one it writes: the queue
    assert await waiting == Heartbeat(3)
    session.close(CloseReason.CLIENT_GONE)


async def test_what_cannot_be_written_directly_goes_to_the_queue_in_order() -> None:
    hub = make_hub([], queue_size=10)
    session = hub.open("t", "u", DeviceType.BROWSER)
    await session.next()
    writer = Writer()
    session.direct = writer
    waiting = await _idle(session)
    for stamp in (2, 4, 5, 6):  # 5 is not direct: it and all after it queue, in order
        hub.publish("t", "u", Heartbeat(stamp))
    await _end_of_step()
    assert writer.written == [Heartbeat(2), Heartbeat(4)]
    assert await waiting == Heartbeat(5)
    assert await session.next() == Heartbeat(6)

    waiting = await _idle(session)
    writer.can_write = False  # the connection pushes back
    hub.publish("t", "u", Heartbeat(8))
    await _end_of_step()
    assert await waiting == Heartbeat(8)
    assert writer.written == [Heartbeat(2), Heartbeat(4)]
    session.close(CloseReason.CLIENT_GONE)


async def test_a_busy_consumer_gets_the_queue_and_pending_writes_count_to_its_bound() -> None:
    ended: Ended = []
    hub = make_hub(ended, queue_size=2)
    session = hub.open("t", "u", DeviceType.BROWSER)
    await session.next()
    writer = session.direct = Writer()
    hub.publish("t", "u", Heartbeat(2))  # nobody waiting in next(): queued
    assert await session.next() == Heartbeat(2)
    await _idle(session)
    hub.publish("t", "u", Heartbeat(4))  # due for a direct write
    hub.publish("t", "u", Heartbeat(6))
    assert hub.publish("t", "u", Heartbeat(8)) == 0  # 2 pending: the bound
    assert session.closed is CloseReason.SLOW_CONSUMER
    await _end_of_step()
    assert writer.written == []  # nothing is written for a closed session
    assert ended[-1] == (session.id, CloseReason.SLOW_CONSUMER)
