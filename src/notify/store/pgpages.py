"""Inbox pages from PostgreSQL: pages that queue up are read in one statement.

Group commit's counterpart for reads. A page is read at once while fewer
than ``max_readers`` reads are running, so a quiet server answers exactly
as before: one statement, one round trip. Under load, the pages that arrive
while every reader is busy wait in a queue, and the next free reader takes
those of one shape (the same conditions, with different users, clocks,
limits and cursors) and reads them in one statement: a ``LATERAL`` page per
entry of ``unnest``-ed parameter arrays, each page still its own index
scan, its own ``LIMIT`` and its own counts. One pool acquire, one round
trip and one statement's parsing then serve several callers: each read of
a pool costs about 25 us of CPU here before it does anything (asyncpg's
acquire, its release shielded in a task of its own, their timeouts).

The batching never delays a page on a quiet server, and under load it costs
a page at most the round trip of the batch before it.

A statement that fails for a reason other than the database being out of
reach is tried again for each page alone, so a value the database refuses
fails only the call that carried it.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import asyncpg

from notify.core.errors import Unavailable

# A page: its records (the table's columns, then the user's counts as an
# array), and those counts (the array, or a record of them for an empty page).
Page = tuple[list[asyncpg.Record], Any]
Connect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

# One statement's pages and their rows (the sum of their limits): bounded
# arrays, and an answer of at most about 1,000 rows (2 MiB of rich ones).
MAX_BATCH = 64
MAX_BATCH_ROWS = 1000
# Page statements running at once. Fewer readers make larger batches: for 32
# clients reading pages of a 100,000-row inbox, 1, 2, 3, 4, 8 and 12 readers
# served 4,958, 5,001, 4,793, 4,598, 4,201 and 3,681 pages/s, against 3,408
# reading each page alone (docs/benchmarks.md, "Pages read together"). Two
# keep a second statement going while one waits on the network. Under load
# a page waits at most for the batch before it: one round trip.
PAGE_READERS = 2

# A page's statement has tenant $1, user $2 and limit $3, then what its
# conditions add; pages that share a statement add these, of these types.
_EXTRA_TYPES = {4: "bigint", 5: "bigint", 6: "uuid"}
_PLACEHOLDER = re.compile(r"\$(\d+)\b")


@dataclass(frozen=True, slots=True)
class PageSQL:
    """What a page's statements are made of (the store's, passed in)."""

    single: str  # one page: ``{conditions}`` on $1 .. $n, answer rows end with ``counts``
    columns: str  # the table's columns, as the single statement names them
    counts: str  # an expression for the counts array, on ``{tenant}`` and ``{user}``
    counts_alone: str  # the counts of $1, $2 as one record (an empty page has no row)


@dataclass(slots=True)
class _Read:
    conditions: str
    values: list[Any]
    waiter: asyncio.Future[Page]


def batch_sql(sql: PageSQL, conditions: str, params: int) -> str:
    """The statement reading pages of ``conditions`` (on ``$4`` .. ``$params``) from
    parameter arrays; each answer row ends with the 1-based index of its page."""
    if params < 3 or any(n not in _EXTRA_TYPES for n in range(4, params + 1)):
        raise ValueError(f"no array types for {params} parameters")

    def column(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 4 <= n <= params:
            raise ValueError(f"${n} is not a condition's parameter")
        return f"k.p{n}"

    where = _PLACEHOLDER.sub(column, conditions)
    extra = range(4, params + 1)
    arrays = ", ".join(
        ["$1::text[]", "$2::text[]", "$3::bigint[]"] + [f"${n}::{_EXTRA_TYPES[n]}[]" for n in extra]
    )
    names = ", ".join(["t", "u", "lim", *(f"p{n}" for n in extra), "i"])
    counts = sql.counts.format(tenant="k.t", user="k.u")
    return f"""
SELECT p.*, k.i AS batch_index
FROM unnest({arrays}) WITH ORDINALITY AS k({names})
CROSS JOIN LATERAL (
    SELECT {sql.columns}, ({counts}) AS counts
    FROM notifications
    WHERE tenant_id = k.t AND user_id = k.u AND {where}
    ORDER BY created_at_ms DESC, id DESC
    LIMIT k.lim
) p
ORDER BY k.i, p.created_at_ms DESC, p.id DESC
"""


class PageReads:
    """Reads pages through ``connect``, gathering those that queue up (see above)."""

    def __init__(self, connect: Connect, sql: PageSQL, *, max_readers: int) -> None:
        self._connect = connect
        self._sql = sql
        self._max_readers = max(1, max_readers)
        self._active = 0
        self._queue: deque[_Read] = deque()
        self._statements: dict[tuple[str, int], str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.shared = 0  # pages read in a statement with others (for tests and tuning)

    async def read(self, conditions: str, values: list[Any], *, shareable: bool) -> Page:
        """The page of ``conditions`` and ``values``; ``shareable`` when its extra
        parameters are a clock and perhaps a cursor (see ``_EXTRA_TYPES``)."""
        if not shareable or self._active < self._max_readers:
            self._active += 1
            try:
                async with self._connect() as conn:
                    return await self._one(conn, conditions, values)
            finally:
                self._active -= 1
                self._start_readers()
        waiter: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._queue.append(_Read(conditions, values, waiter))
        return await waiter

    @property
    def queued(self) -> int:
        """Pages waiting for a reader."""
        return len(self._queue)

    def _start_readers(self) -> None:
        while self._queue and self._active < self._max_readers:
            self._active += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._run(self._take())
        finally:
            self._active -= 1

    def _take(self) -> list[_Read]:
        """The oldest queued page and more of its conditions, within the bounds above."""
        queue = self._queue
        while queue[0].waiter.done() and len(queue) > 1:
            queue.popleft()  # its caller gave up (a deadline, a disconnect): no read for it
        first = queue.popleft()
        batch = [first]
        rows = first.values[2]  # each page's limit is its third parameter
        others: list[_Read] = []
        while queue and len(batch) < MAX_BATCH:
            read = queue.popleft()
            if read.waiter.done():
                continue
            fits = rows + read.values[2] <= MAX_BATCH_ROWS
            if (
                fits
                and read.conditions == first.conditions
                and len(read.values) == len(first.values)
            ):
                batch.append(read)
                rows += read.values[2]
            else:
                others.append(read)
        queue.extendleft(reversed(others))
        return batch

    async def _run(self, batch: list[_Read]) -> None:
        try:
            try:
                async with self._connect() as conn:
                    pages = await self._many(conn, batch)
            except Unavailable as exc:
                for read in batch:
                    _settle(read, exc=Unavailable(exc.message))
                return
            except Exception:
                if len(batch) == 1:
                    raise
                for read in batch:  # each alone, so that only the page that carried it fails
                    await self._run([read])
                return
            for read, page in zip(batch, pages, strict=True):
                _settle(read, page=page)
        except Exception as exc:
            for read in batch:
                _settle(read, exc=exc)
        finally:
            for read in batch:  # cancelled (shutting down): no caller is left waiting
                _settle(read, exc=Unavailable("the store is closing"))

    async def _one(self, conn: asyncpg.Connection, conditions: str, values: list[Any]) -> Page:
        records = await conn.fetch(self._sql.single.format(conditions=conditions), *values)
        if records:
            return records, records[0]["counts"]
        return records, await conn.fetchrow(self._sql.counts_alone, values[0], values[1])

    async def _many(self, conn: asyncpg.Connection, batch: Sequence[_Read]) -> list[Page]:
        first = batch[0]
        if len(batch) == 1:
            return [await self._one(conn, first.conditions, first.values)]
        key = (first.conditions, len(first.values))
        statement = self._statements.get(key)
        if statement is None:
            statement = batch_sql(self._sql, *key)
            if len(self._statements) >= 256:  # bounded: shapes come from filters
                self._statements.clear()
            self._statements[key] = statement
        arrays = [[read.values[i] for read in batch] for i in range(len(first.values))]
        self.shared += len(batch)
        grouped: list[list[asyncpg.Record]] = [[] for _ in batch]
        for record in await conn.fetch(statement, *arrays):
            grouped[record["batch_index"] - 1].append(record)
        pages: list[Page] = []
        for read, records in zip(batch, grouped, strict=True):
            if records:
                pages.append((records, records[0]["counts"]))
            else:  # no row to carry the counts: ask for them alone
                counts = await conn.fetchrow(self._sql.counts_alone, read.values[0], read.values[1])
                pages.append((records, counts))
        return pages


def _settle(read: _Read, *, page: Page | None = None, exc: BaseException | None = None) -> None:
    if read.waiter.done():
        return  # answered, or its caller gave up
    if exc is not None:
        read.waiter.set_exception(exc)
    elif page is not None:
        read.waiter.set_result(page)
