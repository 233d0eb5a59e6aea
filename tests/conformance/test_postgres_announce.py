"""The PostgreSQL driver sends an announcer's NOTIFYs in its insert transaction.

A LISTEN connection on the announcement channel sees exactly the rows that
committed, once each: not the idempotent repeats, nothing from a write that
failed, and each call of a grouped batch its own. "Nothing arrived" is proved
by a marker NOTIFY sent after the write: NOTIFYs arrive in commit order, so
whatever the write sent would have arrived first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import asyncpg
import pytest

from notify.core.errors import InvalidArgument
from notify.core.model import Channel, Notification
from notify.core.ports import Announcement
from notify.store import postgres
from notify.store.conformance import make_row
from notify.store.postgres import PostgresStore
from tests.pg import PostgresCluster, truncate

CHANNEL = "test_announce"
MARKER = "marker"


@dataclass
class Announcer:
    """Announces the ids of the rows it is given, as one payload per call; keeps every call."""

    name: str
    calls: list[list[str]] = field(default_factory=list)
    fail: bool = False

    def __call__(self, created: Sequence[Notification]) -> Announcement | None:
        self.calls.append([row.id for row in created])
        if self.fail:
            raise RuntimeError("the announcer broke")
        return Announcement(CHANNEL, (json.dumps([self.name, [r.id for r in created]]),))


class Listener:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.received: asyncio.Queue[str] = asyncio.Queue()

    async def __aenter__(self) -> Listener:
        self._conn = await asyncpg.connect(self._dsn)
        self._other = await asyncpg.connect(self._dsn)
        await self._conn.add_listener(CHANNEL, lambda *args: self.received.put_nowait(args[3]))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._conn.close()
        await self._other.close()

    async def until_marker(self) -> list[tuple[str, list[str]]]:
        """Everything announced before a marker sent now, decoded."""
        await self._other.execute("SELECT pg_notify($1, $2)", CHANNEL, MARKER)
        found: list[tuple[str, list[str]]] = []
        async with asyncio.timeout(10):
            while (payload := await self.received.get()) != MARKER:
                name, ids = json.loads(payload)
                found.append((name, ids))
        return found

    async def stored(self, ids: Sequence[str]) -> set[str]:
        records = await self._other.fetch(
            "SELECT id::text FROM notifications WHERE id = ANY($1::uuid[])", list(ids)
        )
        return {r[0] for r in records}


@pytest.fixture
async def store(pg_cluster: PostgresCluster) -> AsyncIterator[PostgresStore]:
    await truncate(pg_cluster.dsn())
    # max_size 4: one batch writer at a time, so concurrent calls share a batch.
    opened = await PostgresStore.connect(pg_cluster.dsn(), min_size=1, max_size=4)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def listener(pg_cluster: PostgresCluster) -> AsyncIterator[Listener]:
    async with Listener(pg_cluster.dsn()) as opened:
        yield opened


async def test_created_rows_are_announced_once_and_after_their_commit(
    store: PostgresStore, listener: Listener
) -> None:
    rows = [make_row(i, user=f"u{i}") for i in range(3)]
    announce = Announcer("a")
    stored = await store.create_notifications(rows, announce)
    assert all(s.created for s in stored)
    async with asyncio.timeout(10):
        name, ids = json.loads(await listener.received.get())
    # Readable by the time the announcement arrives: it went out with the commit.
    assert await listener.stored(ids) == {r.id for r in rows}
    assert (name, sorted(ids)) == ("a", sorted(r.id for r in rows))
    assert await listener.until_marker() == []  # once
    assert announce.calls == [[r.id for r in rows]]


async def test_an_announcer_that_raises_stores_and_announces_nothing(
    store: PostgresStore, listener: Listener
) -> None:
    rows = [make_row(i) for i in range(2)]
    with pytest.raises(RuntimeError, match="the announcer broke"):
        await store.create_notifications(rows, Announcer("broken", fail=True))
    assert await listener.until_marker() == []
    assert await listener.stored([r.id for r in rows]) == set()


async def test_an_announcer_that_raises_in_a_transaction_rolls_the_rows_back(
    store: PostgresStore, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two statements' worth of rows: written in a transaction, announced at its end.
    monkeypatch.setattr(postgres, "MAX_BATCH_ROWS", 2)
    rows = [make_row(i, user=f"u{i}") for i in range(3)]
    announce = Announcer("broken", fail=True)
    with pytest.raises(RuntimeError, match="the announcer broke"):
        await store.create_notifications(rows, announce)
    assert await listener.until_marker() == []
    assert await listener.stored([r.id for r in rows]) == set()
    assert announce.calls == [[r.id for r in rows]]


async def test_a_write_in_several_statements_is_announced_once(
    store: PostgresStore, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "MAX_BATCH_ROWS", 2)
    rows = [make_row(i, user=f"u{i}") for i in range(5)]
    await store.create_notifications(rows, Announcer("big"))
    assert [(n, sorted(ids)) for n, ids in await listener.until_marker()] == [
        ("big", sorted(r.id for r in rows))
    ]


async def test_a_grouped_batch_announces_each_calls_rows_once(
    store: PostgresStore, listener: Listener
) -> None:
    calls = [[make_row(10 * c + i, user=f"c{c}-u{i}") for i in range(2)] for c in range(6)]
    announcers = [Announcer(f"call-{c}") for c in range(6)]
    await asyncio.gather(
        *(store.create_notifications(rows, a) for rows, a in zip(calls, announcers, strict=True))
    )
    announced = await listener.until_marker()
    assert sorted((n, sorted(ids)) for n, ids in announced) == [
        (f"call-{c}", sorted(r.id for r in rows)) for c, rows in enumerate(calls)
    ]
    # One call each: all six went in one batch, every row new.
    assert [a.calls for a in announcers] == [[[r.id for r in rows]] for rows in calls]


async def test_an_idempotent_retry_announces_nothing(
    store: PostgresStore, listener: Listener
) -> None:
    await store.create_notifications([make_row(1, notification_id="same")], Announcer("first"))
    assert [n for n, _ in await listener.until_marker()] == ["first"]
    retry, again = Announcer("retry"), make_row(2, notification_id="same")
    stored = await store.create_notifications([again], retry)
    assert not stored[0].created
    assert await listener.until_marker() == []
    assert retry.calls == [[again.id]]  # asked as if it were new; nothing was sent


async def test_a_batch_with_some_repeats_announces_only_the_new_rows(
    store: PostgresStore, listener: Listener
) -> None:
    await store.create_notifications([make_row(1, notification_id="old")])
    old_again = make_row(2, notification_id="old")
    new = make_row(3, notification_id="new")
    mixed = Announcer("mixed")
    stored = await store.create_notifications([old_again, new], mixed)
    assert [s.created for s in stored] == [False, True]
    assert await listener.until_marker() == [("mixed", [new.id])]
    # Asked for all of them first, then for the one that turned out new.
    assert mixed.calls == [[old_again.id, new.id], [new.id]]


async def test_two_calls_of_a_batch_with_one_key_announce_the_row_once(
    store: PostgresStore, listener: Listener
) -> None:
    first, second = make_row(1, notification_id="k"), make_row(2, notification_id="k")
    a, b = Announcer("a"), Announcer("b")
    stored = await asyncio.gather(
        store.create_notifications([first], a), store.create_notifications([second], b)
    )
    assert [s[0].created for s in stored] == [True, False]
    assert await listener.until_marker() == [("a", [first.id])]


async def test_a_failed_batch_announces_only_the_calls_that_were_stored(
    store: PostgresStore, listener: Listener
) -> None:
    good = [make_row(i, notification_id=f"good-{i}") for i in range(3)]
    bad = make_row(100, notification_id="bad", text="nul\x00inside")
    outcomes = await asyncio.gather(
        store.create_notifications([good[0]], Announcer("good-0")),
        store.create_notifications([bad], Announcer("bad")),
        store.create_notifications([good[1]], Announcer("good-1")),
        store.create_notifications([good[2]], Announcer("good-2")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], InvalidArgument)
    announced = await listener.until_marker()
    assert sorted(announced) == [(f"good-{i}", [good[i].id]) for i in range(3)]


async def test_a_collapse_is_announced_in_its_transaction(
    store: PostgresStore, listener: Listener
) -> None:
    first = make_row(1, notification_id="c1", collapse_key="deploy", collapsed_count=1)
    second = make_row(2, notification_id="c2", collapse_key="deploy", collapsed_count=1)
    await store.create_notifications([first], Announcer("first"))
    (stored,) = await store.create_notifications([second], Announcer("second"))
    assert stored.replaced == first.id
    assert await listener.until_marker() == [("first", [first.id]), ("second", [second.id])]
    broken = make_row(3, notification_id="c3", collapse_key="deploy", collapsed_count=1)
    with pytest.raises(RuntimeError):
        await store.create_notifications([broken], Announcer("broken", fail=True))
    assert await listener.until_marker() == []
    assert await listener.stored([second.id, broken.id]) == {second.id}  # nothing collapsed


async def test_rows_an_announcer_has_nothing_to_say_about_are_stored_without_a_notify(
    store: PostgresStore, listener: Listener
) -> None:
    calls: list[int] = []

    def silent(created: Sequence[Notification]) -> Announcement | None:
        calls.append(len(created))
        return None

    (stored,) = await store.create_notifications([make_row(1, channel=Channel.EMAIL)], silent)
    assert stored.created
    assert calls == [1]
    assert await listener.until_marker() == []
