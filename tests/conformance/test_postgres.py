"""The PostgreSQL driver runs the conformance suite, plus what only it can get wrong."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from notify.core.errors import InvalidArgument, Unavailable
from notify.core.model import Channel, Notification
from notify.store import Store
from notify.store.conformance import *  # noqa: F403  (the suite's tests)
from notify.store.conformance import all_rows, make_row, page
from notify.store.memory import MemoryStore
from notify.store.postgres import PostgresStore
from tests.pg import PostgresCluster, truncate


@pytest.fixture
async def store(pg_cluster: PostgresCluster) -> AsyncIterator[Store]:
    await truncate(pg_cluster.dsn())
    opened = await PostgresStore.connect(pg_cluster.dsn(), min_size=1)
    try:
        yield opened
    finally:
        await opened.close()


async def test_postgres_matches_the_memory_reference(pg_cluster: PostgresCluster) -> None:
    """A random sequence of operations gives the same answers on both drivers."""
    await truncate(pg_cluster.dsn())
    reference = MemoryStore()
    postgres = await PostgresStore.connect(pg_cluster.dsn(), min_size=1)
    rng = random.Random(20261121)
    known: list[Notification] = []
    try:
        for step in range(300):
            op = rng.random()
            user = rng.choice(["u1", "u2"])
            if op < 0.45:
                batch = [
                    make_row(
                        rng.randrange(40),
                        user=user,
                        channel=rng.choice([Channel.IN_APP, Channel.EMAIL]),
                        created_at_ms=1_700_000_000_000 + rng.randrange(5),
                    )
                    for _ in range(rng.randint(1, 4))
                ]
                mem = await reference.create_notifications(batch)
                pg = await postgres.create_notifications(batch)
                assert mem == pg, step
                known.extend(s.row for s in mem if s.created)
            elif op < 0.6 and known:
                target = rng.choice(known)
                at = 1_700_000_001_000 + step
                assert await reference.mark_read(
                    target.tenant_id, user, target.id, at
                ) == await postgres.mark_read(target.tenant_id, user, target.id, at), step
            elif op < 0.7 and known:
                chosen = rng.sample(known, min(3, len(known)))
                await reference.mark_delivered(chosen, 1_700_000_000_500 + step)
                await postgres.mark_delivered(chosen, 1_700_000_000_500 + step)
            elif op < 0.85:
                request = page(limit=rng.randint(1, 9), unread_only=rng.random() < 0.3)
                if known and rng.random() < 0.5:
                    request = replace(request, after=rng.choice(known).key)
                assert await reference.list_notifications(
                    "t1", user, request
                ) == await postgres.list_notifications("t1", user, request), step
            elif known:
                after = rng.choice(known).key
                assert await reference.list_after(
                    "t1", user, after, Channel.IN_APP, 5
                ) == await postgres.list_after("t1", user, after, Channel.IN_APP, 5), step
    finally:
        await postgres.close()


async def test_postgres_batch_fails_only_the_call_with_bad_data(
    pg_cluster: PostgresCluster,
) -> None:
    await truncate(pg_cluster.dsn())
    store = await PostgresStore.connect(pg_cluster.dsn(), min_size=1, max_size=4)
    try:
        good = [[make_row(i, notification_id=f"good-{i}")] for i in range(20)]
        bad = [make_row(100, notification_id="bad", text="nul\x00inside")]
        outcomes = await asyncio.gather(
            *(store.create_notifications(call) for call in [*good[:10], bad, *good[10:]]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[10], InvalidArgument)
        assert all(isinstance(o, list) and o[0].created for i, o in enumerate(outcomes) if i != 10)
        assert len(await all_rows(store, limit=100)) == 20
    finally:
        await store.close()


async def test_a_page_read_again_shares_its_unchanged_rows(store: Store) -> None:
    """The driver's row memo: unchanged rows come back as the same objects,
    whatever the page's counts did; a changed row is made afresh."""
    rows = [make_row(i, created_at_ms=1_700_000_000_000 + i) for i in range(3)]
    await store.create_notifications(rows)
    first = await store.list_notifications("t1", "u1", page(limit=2))
    oldest = rows[0]  # not on a two-row page, newest first
    assert await store.mark_read("t1", "u1", oldest.id, 1_700_000_001_000) is not None
    second = await store.list_notifications("t1", "u1", page(limit=2))
    assert second.counts != first.counts  # the counts column moved...
    assert all(a is b for a, b in zip(first.rows, second.rows, strict=True))  # ...the rows not

    newest = first.rows[0]
    marked = await store.mark_read("t1", "u1", newest.id, 1_700_000_002_000)
    assert marked is not None
    third = await store.list_notifications("t1", "u1", page(limit=2))
    assert third.rows[0] is not newest
    assert third.rows[0] == marked
    assert newest.read_at_ms == 0  # the row read before stays as it was read
    assert third.rows[1] is first.rows[1]
    by_id = await store.get_notifications("t1", [newest.id, first.rows[1].id])
    assert by_id[0] is third.rows[0]
    assert by_id[1] is first.rows[1]


async def _reference_and_small_pool(
    pg_cluster: PostgresCluster, rows: list[Notification]
) -> tuple[MemoryStore, PostgresStore]:
    """Both drivers with the same rows; PostgreSQL with one reader, so pages queue."""
    await truncate(pg_cluster.dsn())
    reference = MemoryStore()
    postgres = await PostgresStore.connect(pg_cluster.dsn(), min_size=1, max_size=2)
    await reference.create_notifications(rows)
    await postgres.create_notifications(rows)
    return reference, postgres


async def test_pages_that_queue_share_a_statement_and_match_the_reference(
    pg_cluster: PostgresCluster,
) -> None:
    rng = random.Random(20261201)
    users = [f"u{i}" for i in range(6)]
    rows = [
        make_row(i, user=rng.choice(users[:5]), created_at_ms=1_700_000_000_000 + rng.randrange(40))
        for i in range(120)
    ]  # u5 has no rows: its pages are empty and still carry counts
    reference, postgres = await _reference_and_small_pool(pg_cluster, rows)
    try:
        for row in rng.sample(rows, 30):
            await reference.mark_read(row.tenant_id, row.user_id, row.id, 1_700_000_001_000)
            await postgres.mark_read(row.tenant_id, row.user_id, row.id, 1_700_000_001_000)
        for user in users:  # one at a time: each page alone, as on a quiet server
            assert await postgres.list_notifications(
                "t1", user, page()
            ) == await reference.list_notifications("t1", user, page())
        assert postgres._pages.shared == 0
        requests = []
        for _ in range(150):
            request = page(limit=rng.randint(1, 12), unread_only=rng.random() < 0.3)
            if rng.random() < 0.4:
                request = replace(request, after=rng.choice(rows).key)  # others' keys too
            requests.append((rng.choice(users), request))
        answers = await asyncio.gather(
            *(postgres.list_notifications("t1", user, request) for user, request in requests)
        )
        for (user, request), answer in zip(requests, answers, strict=True):
            assert answer == await reference.list_notifications("t1", user, request)
        assert postgres._pages.shared > 100  # most pages waited and were read together
        assert postgres._pages.queued == 0
    finally:
        await postgres.close()


async def test_a_refused_value_fails_only_its_own_page(pg_cluster: PostgresCluster) -> None:
    rows = [make_row(i, created_at_ms=1_700_000_000_000 + i) for i in range(5)]
    _, postgres = await _reference_and_small_pool(pg_cluster, rows)
    try:
        tenants = ["t1", "t1", "bad\x00tenant", "t1", "t1", "t1"]
        answers = await asyncio.gather(
            *(postgres.list_notifications(t, "u1", page(limit=3)) for t in tenants),
            return_exceptions=True,
        )
        assert isinstance(answers[2], InvalidArgument)
        good = [a for i, a in enumerate(answers) if i != 2]
        assert all(not isinstance(a, BaseException) and len(a.rows) == 3 for a in good), answers
    finally:
        await postgres.close()


async def test_queued_pages_fail_unavailable_when_the_pool_goes(
    pg_cluster: PostgresCluster,
) -> None:
    _, postgres = await _reference_and_small_pool(pg_cluster, [make_row(0)])
    try:
        reads = [
            asyncio.ensure_future(postgres.list_notifications("t1", "u1", page())) for _ in range(8)
        ]
        await asyncio.sleep(0)  # one turn of the loop starts every read: one runs, the rest queue
        assert postgres._pages.queued > 0
        postgres.pool.terminate()
        answers = await asyncio.gather(*reads, return_exceptions=True)
        assert all(isinstance(a, Unavailable) for a in answers), answers
        assert postgres._pages.queued == 0
    finally:
        await postgres.close()
