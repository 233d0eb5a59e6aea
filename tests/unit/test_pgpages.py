"""The statement that reads several pages at once (notify.store.pgpages.batch_sql)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from notify.store import pgpages

SQL = pgpages.PageSQL(
    single="SELECT a, counts FROM notifications WHERE {conditions}",
    columns="a",
    counts="SELECT c FROM inbox_counts WHERE tenant_id = {tenant} AND user_id = {user}",
    counts_alone="SELECT c FROM inbox_counts WHERE tenant_id = $1 AND user_id = $2",
)


def test_each_condition_parameter_becomes_its_array_column() -> None:
    statement = pgpages.batch_sql(
        SQL, "(expires_at_ms = 0 OR expires_at_ms > $4) AND (created_at_ms, id) < ($5, $6)", 6
    )
    assert "unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], " in statement
    assert "$6::uuid[]) WITH ORDINALITY AS k(t, u, lim, p4, p5, p6, i)" in statement
    assert "expires_at_ms > k.p4) AND (created_at_ms, id) < (k.p5, k.p6)" in statement
    assert "tenant_id = k.t AND user_id = k.u" in statement
    assert "LIMIT k.lim" in statement
    assert "k.i AS batch_index" in statement
    assert "ORDER BY k.i, p.created_at_ms DESC, p.id DESC" in statement


def test_a_parameter_beyond_the_arrays_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\$5"):
        pgpages.batch_sql(SQL, "expires_at_ms > $4 AND category = $5", 4)
    with pytest.raises(ValueError, match="no array types"):
        pgpages.batch_sql(SQL, "x = $7", 7)


async def test_a_batch_takes_one_shape_within_its_bounds() -> None:
    reads = pgpages.PageReads(contextlib.nullcontext, SQL, max_readers=1)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()

    def queue(conditions: str, limit: int, width: int = 4) -> pgpages._Read:
        values = ["t", "u", limit, 0, 0, None][:width]
        read = pgpages._Read(conditions, values, loop.create_future())
        reads._queue.append(read)
        return read

    a1, b1, a2, a3 = queue("A", 21), queue("B", 21), queue("A", 21), queue("A", 21, width=6)
    a4 = queue("A", pgpages.MAX_BATCH_ROWS - 30)  # would go past the rows of one answer
    a5 = queue("A", 8)
    assert reads._take() == [a1, a2, a5]  # same conditions and parameters, within the rows
    assert list(reads._queue) == [b1, a3, a4]  # the rest keep their order
    assert reads._take() == [b1]
    assert reads._take() == [a3]
    assert reads._take() == [a4]
    many = [queue("A", 2) for _ in range(pgpages.MAX_BATCH + 5)]
    assert reads._take() == many[: pgpages.MAX_BATCH]
    assert list(reads._queue) == many[pgpages.MAX_BATCH :]


async def test_a_page_whose_caller_gave_up_is_not_read() -> None:
    reads = pgpages.PageReads(contextlib.nullcontext, SQL, max_readers=1)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    queued = []
    for _ in range(4):
        read = pgpages._Read("A", ["t", "u", 21, 0], loop.create_future())
        reads._queue.append(read)
        queued.append(read)
    queued[0].waiter.cancel()
    queued[2].waiter.cancel()
    assert reads._take() == [queued[1], queued[3]]
    assert reads.queued == 0
