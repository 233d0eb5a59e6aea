"""Decoding PostgreSQL records into rows: enums by table, actions and tags shared per text."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from notify.core.model import Channel, Notification, Severity, Status
from notify.store import pgcolumns
from tests.unit.test_jsonrows import random_row


def record(row: Notification) -> list[object]:
    """A record as asyncpg hands it over: the columns' database values, in order."""
    columns = pgcolumns.to_arrays([row])
    return [str(column[0]) if i == 0 else column[0] for i, column in enumerate(columns)]


def test_records_decode_to_the_rows_they_came_from() -> None:
    rng = random.Random(11)
    for _ in range(200):
        row = random_row(rng)
        assert pgcolumns.to_row(record(row)) == row


def test_enums_are_their_members_and_unknown_values_still_fail() -> None:
    row = pgcolumns.to_row(record(random_row(random.Random(12))))
    assert type(row.channel) is Channel
    assert type(row.status) is Status
    assert type(row.severity) is Severity
    bad = record(random_row(random.Random(13)))
    status = [c.name for c in pgcolumns.COLUMNS].index("status")
    bad[status] = 3  # reserved by the contract: never a Status
    with pytest.raises(ValueError, match="3 is not a valid Status"):
        pgcolumns.to_row(bad)


def test_actions_and_tags_of_the_same_text_are_decoded_once() -> None:
    rng = random.Random(14)
    row = random_row(rng)
    while not row.actions or not row.tags:
        row = random_row(rng)
    first, second = pgcolumns.to_row(record(row)), pgcolumns.to_row(record(row))
    assert first.actions == row.actions
    assert first.tags == row.tags
    assert second.actions is first.actions  # immutable: one tuple for every row of that text
    assert second.tags is first.tags


def test_the_row_memo_gives_a_row_again_only_for_the_same_columns() -> None:
    rng = random.Random(13)
    memo = pgcolumns.RowMemo()
    base = random_row(rng)
    first = record(base)
    (row,) = memo.many([(*first, "counts column")])
    assert row == base
    (again,) = memo.many([(*first, "other counts")])  # columns after the table's: ignored
    assert again is row
    read = replace(base, status=Status.READ, read_at_ms=base.created_at_ms + 1)
    (changed,) = memo.many([tuple(record(read))])
    assert changed == read
    assert changed is not row
    assert row == base  # the row handed out before is untouched
    (latest,) = memo.many([tuple(record(read))])
    assert latest is changed


def test_the_row_memo_is_bounded() -> None:
    rng = random.Random(14)
    memo = pgcolumns.RowMemo(max_rows=8)
    rows = [random_row(rng) for _ in range(20)]
    assert memo.many([record(r) for r in rows]) == rows
    assert 0 < len(memo) <= 8
