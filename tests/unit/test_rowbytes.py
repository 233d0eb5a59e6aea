"""Rows' wire bytes are made once per state and pages are spliced from them, byte-exact."""

from __future__ import annotations

import dataclasses
import random

import orjson
import pytest
from elloloop.notify.v1 import notify_pb2 as pb

from notify.core.model import Action, Counts, Notification, Status
from notify.wire import fastjson, jsonrows, pbrows, prepared
from notify.wire.convert import counts_to_pb, notification_to_pb
from notify.wire.pages import PageWriter
from notify.wire.rowbytes import PAYLOAD_FIELDS, STATE_FIELDS, RowBytes
from tests.unit.test_jsonrows import random_row


class Counting:
    """An encoder that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, row: Notification) -> bytes:
        self.calls += 1
        return jsonrows.row_bytes(row)


def test_a_row_is_encoded_once_while_its_state_is_the_same() -> None:
    row = random_row(random.Random(1))
    encode = Counting()
    kept = RowBytes(encode)
    first = kept(row)
    assert kept(row) is first
    assert kept(row.copy()) is first  # a store's fresh copy of the same row
    assert kept.many([row, row.copy()]) == [first, first]
    assert encode.calls == 1
    assert first == jsonrows.row_bytes(row)


_CHANGED = {int: 12345, str: "changed", Status: Status.READ}


@pytest.mark.parametrize("name", STATE_FIELDS)
def test_any_state_change_encodes_the_row_again(name: str) -> None:
    row = dataclasses.replace(random_row(random.Random(2)), status=Status.PENDING)
    kept = RowBytes(jsonrows.row_bytes)
    before = kept(row)
    changed = row.copy()
    setattr(changed, name, _CHANGED[type(getattr(row, name))])
    after = kept(changed)
    assert after != before
    assert after == jsonrows.row_bytes(changed)
    assert kept(changed) is after
    assert len(kept) == 1
    assert kept.size == len(after)


def test_state_and_payload_cover_every_wire_field() -> None:
    wire = set(pb.Notification.DESCRIPTOR.fields_by_name)
    assert set(STATE_FIELDS) | PAYLOAD_FIELDS == wire
    assert not set(STATE_FIELDS) & PAYLOAD_FIELDS
    # What the inbox rules and the stores change is state.
    assert {"status", "read_at_ms", "seen_at_ms", "archived_at_ms", "snoozed_until_ms"} <= set(
        STATE_FIELDS
    )
    assert {"actioned_at_ms", "action_id", "collapsed_count", "delivered_at_ms"} <= set(
        STATE_FIELDS
    )


def test_the_cache_starts_over_when_it_holds_too_many_bytes() -> None:
    rng = random.Random(3)
    rows = [random_row(rng) for _ in range(50)]
    sizes = [len(jsonrows.row_bytes(row)) for row in rows]
    limit = sum(sizes[:10])
    kept = RowBytes(jsonrows.row_bytes, max_bytes=limit)
    for row in rows:
        assert kept(row) == jsonrows.row_bytes(row)
        assert kept.size <= limit
    assert 0 < len(kept) < len(rows)


def _response(rows: list[Notification], cursor: str, counts: Counts) -> pb.GetNotificationsResponse:
    return pb.GetNotificationsResponse(
        notifications=[notification_to_pb(r) for r in rows],
        next_cursor=cursor,
        unread_count=counts.unread,
        counts=counts_to_pb(counts),
    )


def test_binary_pages_are_the_bytes_protobuf_writes() -> None:
    rng = random.Random(4)
    big = dataclasses.replace(random_row(rng), data=orjson.dumps({"x": "y" * 20_000}).decode())
    cases = [
        ([], "", Counts()),
        ([random_row(rng) for _ in range(30)], "next", Counts(unread=3, unseen=2, total=30)),
        ([big, random_row(rng)], "", Counts(unread=300, unseen=0, total=2**20)),
    ]
    for rows, cursor, counts in cases:
        encoded = [pbrows.row_bytes(r) for r in rows]
        spliced = pbrows.page_from_rows(encoded, cursor, counts)
        assert spliced == _response(rows, cursor, counts).SerializeToString(deterministic=True)
        assert pb.GetNotificationsResponse.FromString(spliced) == _response(rows, cursor, counts)


def test_varints_are_protobufs() -> None:
    assert pbrows.varint(0) == b"\x00"
    for value in (1, 127, 128, 300, 16383, 16384, 2**31, 2**62):
        # created_at_ms is field 9, a varint: its key is one byte, 0x48.
        assert b"\x48" + pbrows.varint(value) == pb.Notification(
            created_at_ms=value
        ).SerializeToString(deterministic=True)


def test_json_pages_are_the_bytes_of_the_whole_page_as_one_value() -> None:
    rng = random.Random(5)
    rows = [random_row(rng) for _ in range(20)]
    counts = Counts(unread=1, unseen=1, total=20)
    whole = orjson.dumps(
        {
            "notifications": [jsonrows.row_json(r) for r in rows],
            "nextCursor": "c",
            "unreadCount": 1,
            "counts": {"unread": 1, "unseen": 1, "total": 20},
        }
    )
    assert jsonrows.page_json(rows, "c", counts) == whole
    assert orjson.loads(whole) == orjson.loads(fastjson.to_json(_response(rows, "c", counts)))


def test_the_page_writer_answers_in_the_codec_that_asks() -> None:
    rng = random.Random(6)
    rows = [random_row(rng) for _ in range(5)]
    rows[0] = dataclasses.replace(
        rows[0], actions=(Action("a", "A", "/a", True),), data='{"k":[1,2,{"z":null}]}'
    )
    counts = Counts(unread=2, unseen=1, total=5)
    writer = PageWriter()
    answer = writer.answer(rows, "cur", counts)
    expected = _response(rows, "cur", counts)
    assert prepared.take(answer, "proto") == expected.SerializeToString(deterministic=True)
    assert orjson.loads(prepared.take(answer, "json") or b"") == orjson.loads(
        fastjson.to_json(expected)
    )
    assert prepared.take(pb.GetNotificationsResponse(), "json") is None  # another message
    assert prepared.take(answer, "xml") is None  # a codec it has no writer for
    # The placeholder itself carries everything but the rows.
    assert answer.next_cursor == "cur"
    assert answer.counts.total == 5
    assert not answer.notifications
    # A second page of the same rows is spliced from kept bytes, in both codecs.
    assert len(writer.json_rows) == len(writer.proto_rows) == 5
    again = writer.answer(rows, "cur", counts)
    assert prepared.take(again, "proto") == expected.SerializeToString(deterministic=True)
