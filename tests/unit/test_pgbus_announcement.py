"""PgBus's announcements: NOTIFY payloads for the store's transaction, decoded like any."""

from __future__ import annotations

from notify.core.events import BusEvent, NotificationsCreated
from notify.realtime.buscodec import (
    MAX_PAYLOAD_BYTES,
    REGISTRY,
    Announced,
    Reassembler,
    parse_header,
)
from notify.realtime.pgbus import CHANNEL, PgBus, PgBusSettings
from notify.store.conformance import make_row


def bus() -> PgBus:
    return PgBus(PgBusSettings(dsn="postgresql://127.0.0.1:1/unused"), replica_id="r1")


async def test_an_announcement_carries_the_event_in_payloads_notify_accepts() -> None:
    rows = tuple(make_row(i, user=f"user-{i:04d}") for i in range(400))
    event = NotificationsCreated("r1", 9, rows, 0)
    announcement = bus().announcement(event)
    assert announcement is not None
    assert announcement.channel == CHANNEL
    assert len(announcement.payloads) > 1  # 400 rows: more than one NOTIFY's worth
    assert all(len(p.encode()) < MAX_PAYLOAD_BYTES for p in announcement.payloads)
    reassembler = Reassembler()
    texts = []
    for payload in announcement.payloads:
        header, body = parse_header(payload)
        assert (header.sender, header.to) == ("r1", "")
        if (text := reassembler.add(header, body)) is not None:
            texts.append(text)
    (decoded,) = [REGISTRY.decode(t) for t in texts]
    assert isinstance(decoded, Announced)
    assert (decoded.origin, decoded.ticket) == ("r1", 9)
    assert [r.row_id for r in decoded.refs] == [r.id for r in rows]


async def test_announced_events_are_dispatched_here_and_queued_for_nobody() -> None:
    pgbus = bus()
    seen: list[BusEvent] = []
    pgbus.subscribe(seen.append)
    event = NotificationsCreated("r1", 1, (make_row(1),), 0)
    pgbus.dispatch_announced(event)
    assert seen == [event]
    assert pgbus._outbox == []  # the sender has nothing to send
    pgbus.publish(event)
    assert len(pgbus._outbox) == 1  # whereas a publish is sent


async def test_a_closed_bus_announces_nothing() -> None:
    pgbus = bus()
    await pgbus.close()
    assert pgbus.announcement(NotificationsCreated("r1", 1, (make_row(1),), 0)) is None
