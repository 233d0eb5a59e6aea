from __future__ import annotations

import pytest

from notify.core.model import DeviceType
from notify.realtime.hub import CloseReason, Heartbeat, Hub, SessionClosed

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
