"""The bus's wire format: every event round-trips, nothing exceeds NOTIFY's limit."""

from __future__ import annotations

import time
import typing

from notify.core.commands import DataChangeCommand
from notify.core.events import (
    BusEvent,
    DataChangeAcked,
    DataChangePublished,
    DataChangeReached,
    NotificationsCreated,
    NotificationsTaken,
)
from notify.core.model import Channel, Notification, Status
from notify.realtime.buscodec import (
    MAX_PAYLOAD_BYTES,
    REGISTRY,
    Announced,
    Reassembler,
    RowRef,
    addressee,
    parse_header,
    payloads,
)


def row(user: str, tenant: str = "acme", index: int = 0) -> Notification:
    return Notification(
        id=f"0190a5c4-0000-7000-8000-{index:012d}",
        tenant_id=tenant,
        user_id=user,
        notification_id=f"n-{index}",
        channel=Channel.IN_APP,
        subject_ref="task:1",
        subject_type="task",
        title="t" * 2000,
        body="b" * 2000,
        status=Status.PENDING,
        created_at_ms=1,
    )


def test_every_bus_event_type_has_a_codec() -> None:
    for cls in typing.get_args(BusEvent):
        assert cls in REGISTRY, cls.__name__


def test_events_round_trip_unchanged() -> None:
    command = DataChangeCommand("acme", ("u1", "ü-2"), "key", "task:1", "task")
    for event in (
        NotificationsTaken("r1", 7, ("a", "b"), 123),
        DataChangePublished("r1", 8, command),
        DataChangeReached("r1", 8, 3),
        DataChangeAcked("acme", "u1", "s-1", "key"),
    ):
        assert REGISTRY.decode(REGISTRY.encode(event)) == event


def test_created_rows_travel_as_references_not_rows() -> None:
    rows = (row("u1", index=1), row("u2", tenant="globex", index=2))
    stored = time.perf_counter_ns()
    text = REGISTRY.encode(NotificationsCreated("r1", 9, rows, stored))
    assert "tttt" not in text  # no titles or bodies on the wire
    decoded = REGISTRY.decode(text)
    assert isinstance(decoded, Announced)
    assert (decoded.origin, decoded.ticket) == ("r1", 9)
    assert decoded.refs == (
        RowRef("acme", "u1", rows[0].id),
        RowRef("globex", "u2", rows[1].id),
    )
    rebuilt = decoded.with_rows(rows[:1])
    assert rebuilt.rows == rows[:1]
    assert rebuilt.stored_at_ns <= time.perf_counter_ns()


def test_a_big_event_is_cut_under_the_limit_and_joined_again() -> None:
    users = tuple(f"user-{i:05d}-" + "x" * 200 for i in range(500))
    event = DataChangePublished("r1", 1, DataChangeCommand("acme", users, "k", "s", "t"))
    text = REGISTRY.encode(event)
    parts = payloads(text, sender="r1", seq=42, to="")
    assert len(parts) > 10
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in parts)
    joined = Reassembler()
    results = [joined.add(*parse_header(p)) for p in parts]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] is not None
    assert REGISTRY.decode(results[-1]) == event
    assert list(joined) == []


def test_a_missing_part_drops_the_event_and_nothing_else() -> None:
    text = "x" * (MAX_PAYLOAD_BYTES * 3)
    parts = payloads(text, sender="r1", seq=1, to="")
    joined = Reassembler()
    assert joined.add(*parse_header(parts[0])) is None
    assert joined.add(*parse_header(parts[2])) is None  # part 1 was lost
    assert list(joined) == []
    whole = payloads("small", sender="r1", seq=2, to="")
    assert joined.add(*parse_header(whole[0])) == "small"


def test_replies_are_addressed_to_their_requester() -> None:
    header, body = parse_header(payloads("{}", sender="r2", seq=3, to="r1")[0])
    assert (header.sender, header.seq, header.to, body) == ("r2", 3, "r1", "{}")
    assert addressee(NotificationsTaken("r1", 1, (), 0)) == "r1"
    assert addressee(DataChangeAcked("t", "u", "s", "k")) == ""
