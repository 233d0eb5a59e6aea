from __future__ import annotations

import uuid

import pytest

from notify.core.commands import build_notify_command, page_size
from notify.core.cursors import decode_cursor, encode_cursor
from notify.core.errors import InvalidArgument
from notify.core.ids import new_id
from notify.core.model import PageKey


def test_cursor_round_trip() -> None:
    key = PageKey(1_748_390_400_000, new_id())
    assert decode_cursor(encode_cursor(key)) == key
    assert decode_cursor("") is None


@pytest.mark.parametrize("cursor", ["!!", "djE6", "djE6eHl6OmFi", "dzI6MTIzOmFi", "YQ"])
def test_malformed_cursors(cursor: str) -> None:
    with pytest.raises(InvalidArgument):
        decode_cursor(cursor)


@pytest.mark.parametrize(("limit", "size"), [(0, 20), (-3, 20), (1, 1), (100, 100), (101, 100)])
def test_page_size(limit: int, size: int) -> None:
    assert page_size(limit) == size


def test_ids_are_uuid7_and_increase_within_a_millisecond() -> None:
    ids = [new_id(1_700_000_000_000) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_notify_command_collapses_duplicates() -> None:
    command = build_notify_command(
        tenant_id="t",
        notification_id="n",
        user_ids=["a", "b", "a"],
        channels=[1, 2, 1],
        subject_ref="",
        subject_type="",
        title="",
        body="",
        addresses={},
    )
    assert command.user_ids == ("a", "b")
    assert [int(c) for c in command.channels] == [1, 2]
