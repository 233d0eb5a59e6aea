"""The store conformance suite: one set of tests every driver passes unchanged.

A driver opts in from a test module of its own::

    from notify.store.conformance import *  # noqa: F403  (the suite's tests)

    @pytest.fixture
    async def store() -> AsyncIterator[Store]:
        ...  # yield a fresh, empty store of the driver

pytest collects the imported ``test_*`` functions there, so each driver runs
the same assertions; tests specific to one driver live beside that module.
The helpers (``make_row``, ``page``, ``all_rows``) are public for them.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from typing import Any

import pytest

from notify.core.commands import MAX_TOKEN_LENGTH
from notify.core.ids import new_id
from notify.core.inbox import Change
from notify.core.model import (
    INBOX,
    Action,
    ArchiveScope,
    Channel,
    Counts,
    Device,
    DeviceType,
    Filter,
    Mark,
    Notification,
    PageKey,
    PageRequest,
    ReadScope,
    Severity,
    Status,
)
from notify.core.preferences import PreferenceRule, Preferences, TenantPreferences
from notify.store import MAX_DEVICES_PER_TYPE, OutboxDepth, Purged, Selection, SendResult, Store

ADVERSARIAL = [
    "",
    "plain",
    "ünïcödé — ñ 日本語 עברית",
    "emoji 🎉👩‍👩‍👧‍👦🏳️‍🌈",
    "quotes ' \" ` and \\ backslash",
    "sql '); DROP TABLE notifications; -- % _ $1 :: ;",
    "newline\nand\ttab\r\n",
    "x" * 65536,
]


def make_row(
    i: int = 0,
    *,
    tenant: str = "t1",
    user: str = "u1",
    notification_id: str | None = None,
    channel: Channel = Channel.IN_APP,
    created_at_ms: int | None = None,
    text: str = "",
    status: Status = Status.PENDING,
    **fields: Any,
) -> Notification:
    """A row for the tests; ``fields`` sets any other Notification field."""
    created = 1_700_000_000_000 + i if created_at_ms is None else created_at_ms
    return Notification(
        id=new_id(created),
        tenant_id=tenant,
        user_id=user,
        notification_id=notification_id if notification_id is not None else f"n-{i}",
        channel=channel,
        subject_ref=text,
        subject_type=text[:1024],
        title=text,
        body=text,
        status=status,
        created_at_ms=created,
        **fields,
    )


def page(limit: int = 20, after: PageKey | None = None, unread_only: bool = False) -> PageRequest:
    return PageRequest(after=after, limit=limit, unread_only=unread_only)


async def all_rows(
    store: Store, tenant: str = "t1", user: str = "u1", limit: int = 7
) -> list[Notification]:
    rows: list[Notification] = []
    after = None
    while True:
        result = await store.list_notifications(tenant, user, page(limit, after))
        rows.extend(result.rows)
        if result.next_key is None:
            return rows
        after = result.next_key


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
async def test_adversarial_values_round_trip(store: Store, text: str) -> None:
    row = make_row(
        text=text, tenant=text[:256] or "t", user=text[:256] or "u", notification_id=text[:256]
    )
    [stored] = await store.create_notifications([row])
    assert stored.created
    [read] = (await store.list_notifications(row.tenant_id, row.user_id, page())).rows
    assert read == row
    assert read.title == text
    assert read.body == text


async def test_create_returns_inputs_in_order_and_retries_return_stored_rows(store: Store) -> None:
    first = [make_row(i) for i in range(3)]
    stored = await store.create_notifications(first)
    assert [s.row for s in stored] == first
    assert all(s.created for s in stored)
    retry = [replace(make_row(i), title="changed") for i in (2, 3, 0)]
    again = await store.create_notifications(retry)
    assert [s.created for s in again] == [False, True, False]
    assert again[0].row == first[2]
    assert again[2].row == first[0]
    assert again[1].row == retry[1]
    assert len(await all_rows(store)) == 4


async def test_one_row_per_channel(store: Store) -> None:
    rows = [make_row(0, channel=c) for c in (Channel.IN_APP, Channel.EMAIL, Channel.SMS)]
    assert all(s.created for s in await store.create_notifications(rows))
    assert sorted(r.channel for r in await all_rows(store)) == [
        Channel.IN_APP,
        Channel.EMAIL,
        Channel.SMS,
    ]


async def test_fifty_concurrent_identical_creates_leave_one_row(store: Store) -> None:
    attempts = [make_row(0, notification_id="same") for _ in range(50)]
    results = await asyncio.gather(*(store.create_notifications([row]) for row in attempts))
    created = [r[0] for r in results if r[0].created]
    assert len(created) == 1
    winner = created[0].row
    assert {r[0].row.id for r in results} == {winner.id}
    assert await all_rows(store) == [winner]
    assert (await store.list_notifications("t1", "u1", page())).unread_count == 1


async def test_paging_with_ties_in_one_millisecond(store: Store) -> None:
    rows = [make_row(i, created_at_ms=1_700_000_000_000) for i in range(23)]
    rows += [make_row(100 + i, created_at_ms=1_700_000_000_001) for i in range(5)]
    random.Random(7).shuffle(rows)
    await store.create_notifications(rows)
    expected = sorted(rows, key=lambda r: r.key, reverse=True)
    for limit in (1, 2, 5, 7, 28, 100):
        assert await all_rows(store, limit=limit) == expected


async def test_cursor_past_the_end_and_limits(store: Store) -> None:
    rows = [make_row(i) for i in range(5)]
    await store.create_notifications(rows)
    oldest = min(r.key for r in rows)
    past = await store.list_notifications("t1", "u1", page(after=oldest))
    assert list(past.rows) == []
    assert past.next_key is None
    assert past.unread_count == 5
    beyond = await store.list_notifications("t1", "u1", page(after=PageKey(1, new_id(1))))
    assert list(beyond.rows) == []
    exact = await store.list_notifications("t1", "u1", page(limit=5))
    assert len(exact.rows) == 5
    assert exact.next_key is None
    one = await store.list_notifications("t1", "u1", page(limit=1))
    assert len(one.rows) == 1
    assert one.next_key == one.rows[0].key
    nobody = await store.list_notifications("t1", "nobody", page())
    assert list(nobody.rows) == []
    assert nobody.unread_count == 0
    assert nobody.next_key is None


async def test_unread_counts_and_unread_only(store: Store) -> None:
    rows = [make_row(i) for i in range(6)]
    rows.append(make_row(6, status=Status.FAILED))
    await store.create_notifications(rows)
    assert (await store.list_notifications("t1", "u1", page())).unread_count == 6
    await store.mark_delivered(rows[:2], 1_700_000_000_500)
    assert (await store.list_notifications("t1", "u1", page())).unread_count == 6
    read = await store.mark_read("t1", "u1", rows[3].id, 1_700_000_000_900)
    assert read is not None
    assert read.status is Status.READ
    unread = await store.list_notifications("t1", "u1", page(unread_only=True, limit=3))
    assert unread.unread_count == 5
    assert [r.id for r in unread.rows] == [rows[5].id, rows[4].id, rows[2].id]
    rest = await store.list_notifications("t1", "u1", page(unread_only=True, after=unread.next_key))
    assert [r.id for r in rest.rows] == [rows[1].id, rows[0].id]


async def test_tenant_and_user_isolation(store: Store) -> None:
    mine = make_row(0, tenant="acme", user="alice")
    same_user_other_tenant = make_row(0, tenant="globex", user="alice")
    other_user = make_row(0, tenant="acme", user="bob")
    stored = await store.create_notifications([mine, same_user_other_tenant, other_user])
    assert all(s.created for s in stored)  # the same notification_id is a different key
    assert [r.id for r in await all_rows(store, "acme", "alice")] == [mine.id]
    assert await store.mark_read("globex", "alice", mine.id, 5) is None
    assert await store.mark_read("acme", "bob", mine.id, 5) is None
    assert await store.mark_read("acme", "alice", "not-a-uuid", 5) is None
    assert await store.mark_read("acme", "alice", new_id(), 5) is None
    assert (await store.list_notifications("acme", "alice", page())).unread_count == 1
    after = await store.list_after("acme", "alice", PageKey(0, new_id(0)), Channel.IN_APP, 10)
    assert [r.id for r in after] == [mine.id]


async def test_status_transitions_and_timestamps(store: Store) -> None:
    rows = [make_row(i) for i in range(3)]
    await store.create_notifications(rows)
    await store.mark_delivered(rows[:1], 1_700_000_000_100)
    first = await store.mark_read("t1", "u1", rows[0].id, 1_700_000_000_200)
    assert first is not None
    assert (first.status, first.delivered_at_ms, first.read_at_ms) == (
        Status.READ,
        1_700_000_000_100,
        1_700_000_000_200,
    )
    again = await store.mark_read("t1", "u1", rows[0].id, 1_700_000_000_999)
    assert again is not None
    assert again.read_at_ms == 1_700_000_000_200
    await store.mark_delivered(rows[:1], 1_700_000_000_300)  # READ is not moved back
    pending = await store.mark_read("t1", "u1", rows[1].id, 1_700_000_000_400)
    assert pending is not None
    assert pending.delivered_at_ms == 0
    by_id = {r.id: r for r in await all_rows(store)}
    assert by_id[rows[0].id].status is Status.READ
    assert by_id[rows[0].id].delivered_at_ms == 1_700_000_000_100
    assert by_id[rows[2].id].status is Status.PENDING
    assert (await store.list_notifications("t1", "u1", page())).unread_count == 1


async def test_list_after_is_oldest_first_on_one_channel(store: Store) -> None:
    rows = [make_row(i, created_at_ms=1_700_000_000_000 + i // 2) for i in range(8)]
    rows.append(make_row(50, channel=Channel.EMAIL))
    await store.create_notifications(rows)
    in_app = sorted((r for r in rows if r.channel is Channel.IN_APP), key=lambda r: r.key)
    assert await store.list_after("t1", "u1", in_app[2].key, Channel.IN_APP, 100) == in_app[3:]
    assert await store.list_after("t1", "u1", in_app[2].key, Channel.IN_APP, 2) == in_app[3:5]
    assert await store.list_after("t1", "u1", in_app[-1].key, Channel.IN_APP, 100) == []


async def test_get_notifications_by_id_in_the_order_asked(store: Store) -> None:
    rows = [make_row(i, user=f"u{i}") for i in range(4)]
    other_tenant = make_row(9, tenant="t2")
    await store.create_notifications([*rows, other_tenant])
    asked = [rows[2].id, "not-a-uuid", new_id(), rows[0].id, other_tenant.id, rows[3].id]
    assert await store.get_notifications("t1", asked) == [rows[2], rows[0], rows[3]]
    assert await store.get_notifications("t1", []) == []
    assert await store.get_notifications("t2", [other_tenant.id]) == [other_tenant]


async def test_devices_several_per_type_idempotent_by_token(store: Store) -> None:
    await store.upsert_device(Device("t1", "u1", DeviceType.IOS, "apns-1", 1))
    await store.upsert_device(Device("t1", "u1", DeviceType.ANDROID, "fcm-1", 2))
    await store.upsert_device(Device("t1", "u1", DeviceType.IOS, "apns-2", 3))
    await store.upsert_device(Device("t1", "u1", DeviceType.IOS, "apns-1", 5))  # again
    await store.upsert_device(Device("t2", "u1", DeviceType.IOS, "other-tenant", 4))
    await store.upsert_device(Device("t1", "u2", DeviceType.IOS, "apns-u2", 6))  # other user
    assert await store.list_devices("t1", "u1") == [
        Device("t1", "u1", DeviceType.ANDROID, "fcm-1", 2),
        Device("t1", "u1", DeviceType.IOS, "apns-1", 5),
        Device("t1", "u1", DeviceType.IOS, "apns-2", 3),
    ]
    assert await store.list_devices("t1", "nobody") == []
    assert await store.list_devices("t2", "u1") == [
        Device("t2", "u1", DeviceType.IOS, "other-tenant", 4)
    ]


async def test_a_token_registered_by_another_user_moves_to_them(store: Store) -> None:
    """A shared browser or a phone handed on gets only its current user's pushes."""
    await store.upsert_device(Device("t1", "alice", DeviceType.BROWSER, "sub-shared", 1))
    await store.upsert_device(Device("t1", "alice", DeviceType.BROWSER, "sub-alice", 2))
    await store.upsert_device(Device("t2", "carol", DeviceType.BROWSER, "sub-shared", 3))
    await store.upsert_device(Device("t1", "alice", DeviceType.ANDROID, "sub-shared", 4))
    await store.upsert_device(Device("t1", "bob", DeviceType.BROWSER, "sub-shared", 5))
    assert await store.list_devices("t1", "alice") == [
        Device("t1", "alice", DeviceType.BROWSER, "sub-alice", 2),
        Device("t1", "alice", DeviceType.ANDROID, "sub-shared", 4),  # another type's token
    ]
    assert await store.list_devices("t1", "bob") == [
        Device("t1", "bob", DeviceType.BROWSER, "sub-shared", 5)
    ]
    assert await store.list_devices("t2", "carol") == [
        Device("t2", "carol", DeviceType.BROWSER, "sub-shared", 3)  # another tenant's
    ]
    assert await store.delete_device("t1", "alice", DeviceType.BROWSER, "sub-shared") is False
    assert await store.delete_device("t1", "bob", DeviceType.BROWSER, "sub-shared") is True
    await store.upsert_device(Device("t1", "alice", DeviceType.BROWSER, "sub-shared", 6))
    assert len(await store.list_devices("t1", "alice")) == 3


async def test_devices_long_and_unicode_tokens(store: Store) -> None:
    """A browser's token is its PushSubscription JSON: long, and any text."""
    long_token = "{" + "x" * (MAX_TOKEN_LENGTH - 2) + "}"
    odd = "é\"\\'✓ 🔔"
    await store.upsert_device(Device("t1", "u1", DeviceType.BROWSER, long_token, 1))
    await store.upsert_device(Device("t1", "u1", DeviceType.BROWSER, odd, 2))
    await store.upsert_device(Device("t1", "u1", DeviceType.BROWSER, long_token, 3))
    assert await store.list_devices("t1", "u1") == [
        Device("t1", "u1", DeviceType.BROWSER, long_token, 3),
        Device("t1", "u1", DeviceType.BROWSER, odd, 2),
    ]


async def test_delete_device_forgets_exactly_that_one(store: Store) -> None:
    await store.upsert_device(Device("t1", "u1", DeviceType.BROWSER, "sub-a", 1))
    await store.upsert_device(Device("t1", "u1", DeviceType.BROWSER, "sub-b", 2))
    await store.upsert_device(Device("t1", "u1", DeviceType.ANDROID, "sub-a", 3))
    await store.upsert_device(Device("t1", "u2", DeviceType.BROWSER, "sub-c", 4))
    assert await store.delete_device("t1", "u1", DeviceType.BROWSER, "sub-a") is True
    assert await store.delete_device("t1", "u1", DeviceType.BROWSER, "sub-a") is False
    assert await store.delete_device("t2", "u1", DeviceType.BROWSER, "sub-b") is False
    assert await store.delete_device("t1", "u1", DeviceType.BROWSER, "sub-c") is False  # u2's
    assert await store.list_devices("t1", "u1") == [
        Device("t1", "u1", DeviceType.BROWSER, "sub-b", 2),
        Device("t1", "u1", DeviceType.ANDROID, "sub-a", 3),
    ]
    assert await store.list_devices("t1", "u2") == [
        Device("t1", "u2", DeviceType.BROWSER, "sub-c", 4)
    ]


async def test_devices_beyond_the_cap_drop_the_least_recent(store: Store) -> None:
    for i in range(MAX_DEVICES_PER_TYPE):
        await store.upsert_device(Device("t1", "u1", DeviceType.BROWSER, f"sub-{i:02}", 10 + i))
    await store.upsert_device(Device("t1", "u1", DeviceType.IOS, "phone", 1))
    # Re-registering the oldest makes it the newest: sub-01 is now the least recent.
    await store.upsert_device(Device("t1", "u1", DeviceType.BROWSER, "sub-00", 100))
    await store.upsert_device(Device("t1", "u1", DeviceType.BROWSER, "sub-new", 101))
    browsers = [
        d.token for d in await store.list_devices("t1", "u1") if d.device_type is DeviceType.BROWSER
    ]
    expected = sorted(["sub-00", "sub-new", *(f"sub-{i:02}" for i in range(2, 10))])
    assert browsers == expected
    assert len(browsers) == MAX_DEVICES_PER_TYPE
    # Another type's devices are not counted against it.
    assert Device("t1", "u1", DeviceType.IOS, "phone", 1) in await store.list_devices("t1", "u1")


async def test_ping(store: Store) -> None:
    await store.ping()


async def test_concurrent_calls_each_get_their_own_rows(store: Store) -> None:
    """Drivers may group concurrent calls into one write; each call still gets its answer."""
    calls = [
        [make_row(i * 10 + j, notification_id=f"c{i}-{j}") for j in range(i % 4 + 1)]
        for i in range(40)
    ]
    calls.append([make_row(999, notification_id="c0-0")])  # the same key as the first call's row
    results = await asyncio.gather(*(store.create_notifications(call) for call in calls))
    for call, result in zip(calls, results, strict=True):
        assert [s.row.notification_id for s in result] == [row.notification_id for row in call]
    first, duplicate = results[0][0], results[-1][0]
    assert first.row.id == duplicate.row.id
    assert first.created != duplicate.created  # exactly one of the two stored it
    assert len(await all_rows(store, limit=100)) == sum(len(call) for call in calls) - 1


NOW = 1_700_000_100_000


def inbox_page(filter: Filter = INBOX, limit: int = 50) -> PageRequest:
    return PageRequest(after=None, limit=limit, unread_only=False, filter=filter, now_ms=NOW)


async def listed(store: Store, filter: Filter = INBOX, user: str = "u1") -> list[str]:
    return [
        r.notification_id
        for r in (await store.list_notifications("t1", user, inbox_page(filter))).rows
    ]


def rich(i: int, **fields: Any) -> Notification:
    return make_row(
        i,
        severity=Severity.WARNING,
        category="comments",
        actions=(
            Action("open", "Open", "/tasks/42", True),
            Action("mute", "Mute", "https://x.test/m"),
        ),
        data='{"task":42,"who":["bob","ünï"],"nested":{"deep":[1,2.5,null,true]}}',
        tags=("tasks", "urgent"),
        image_url="https://x.test/a.png",
        **fields,
    )


async def test_rich_rows_round_trip(store: Store) -> None:
    row = rich(0, expires_at_ms=NOW + 10_000, collapse_key="task:42", collapsed_count=1)
    await store.create_notifications([row])
    [got] = await store.get_notifications("t1", [row.id])
    assert got == row
    [listed_row] = (await store.list_notifications("t1", "u1", inbox_page())).rows
    assert listed_row == row


async def test_a_read_row_stays_as_it_was_read(store: Store) -> None:
    """Reads hand out rows that later changes never touch: they reach later reads only."""
    row, later = make_row(0), make_row(1, deliver_at_ms=NOW + 1_000, visible=False)
    await store.create_notifications([row, later])
    start = PageKey(0, new_id(0))
    [listed_row] = (await store.list_notifications("t1", "u1", inbox_page())).rows
    [got, hidden] = await store.get_notifications("t1", [row.id, later.id])
    [replayed] = await store.list_after("t1", "u1", start, Channel.IN_APP, 10)
    read = [listed_row, got, hidden, replayed]
    as_read = [r.copy() for r in read]
    await store.mark_delivered([row], NOW)
    await store.mark("t1", "u1", Selection(ids=(row.id,)), Change(Mark.READ), NOW)
    await store.mark("t1", "u1", Selection(ids=(row.id,)), Change(Mark.ARCHIVED), NOW)
    await store.mark(
        "t1", "u1", Selection(ids=(row.id,)), Change(Mark.SNOOZED, snooze_until_ms=NOW + 5), NOW
    )
    await store.run_due(NOW + 1_000, 10)  # wakes both: the snoozed row and the scheduled one
    assert read == as_read
    [now_row, now_later] = await store.get_notifications("t1", [row.id, later.id])
    # Read, archived, snoozed, then woken: unread again, still archived.
    assert (now_row.status, now_row.archived_at_ms, now_row.visible) == (
        Status.DELIVERED,
        NOW,
        True,
    )
    assert now_later.visible


async def test_inbox_counts_follow_every_change(store: Store) -> None:
    rows = [make_row(i) for i in range(5)]
    rows.append(make_row(5, channel=Channel.EMAIL))  # not in the inbox
    await store.create_notifications(rows)
    assert await store.counts("t1", "u1", INBOX, NOW) == Counts(unread=5, unseen=5, total=5)
    seen = await store.mark("t1", "u1", Selection(ids=(rows[0].id,)), Change(Mark.SEEN), NOW)
    assert [r.id for r in seen.rows] == [rows[0].id]
    assert seen.counts == Counts(unread=5, unseen=4, total=5)
    read = await store.mark("t1", "u1", Selection(ids=(rows[1].id,)), Change(Mark.READ), NOW)
    assert read.rows[0].seen_at_ms == NOW  # read implies seen
    assert read.counts == Counts(unread=4, unseen=3, total=5)
    archived = await store.mark(
        "t1", "u1", Selection(ids=(rows[2].id,)), Change(Mark.ARCHIVED), NOW
    )
    assert archived.counts == Counts(unread=3, unseen=2, total=4)
    assert rows[2].notification_id not in await listed(store)
    assert await listed(
        store, Filter(channels=(Channel.IN_APP,), archived=ArchiveScope.ARCHIVED)
    ) == [rows[2].notification_id]
    deleted = await store.delete("t1", "u1", Selection(ids=(rows[3].id, "nope", new_id())), NOW)
    assert deleted.ids == [rows[3].id]
    assert deleted.counts == Counts(unread=2, unseen=1, total=3)
    assert await store.inbox_counts("t1", ["u1", "nobody"]) == {
        "u1": Counts(unread=2, unseen=1, total=3),
        "nobody": Counts(),
    }
    page = await store.list_notifications("t1", "u1", inbox_page())
    assert page.counts == Counts(unread=2, unseen=1, total=3)


async def test_mark_rules(store: Store) -> None:
    row = rich(0)
    await store.create_notifications([row])
    await store.mark_delivered([row], NOW - 5)
    by_id = Selection(ids=(row.id,))

    async def mark(change: Change) -> list[Notification]:
        return (await store.mark("t1", "u1", by_id, change, NOW)).rows

    [read] = await mark(Change(Mark.READ))
    assert (read.status, read.read_at_ms, read.seen_at_ms) == (Status.READ, NOW, NOW)
    assert await mark(Change(Mark.READ)) == []  # a repeat changes nothing
    [unread] = await mark(Change(Mark.UNREAD))
    assert (unread.status, unread.read_at_ms, unread.seen_at_ms) == (Status.DELIVERED, 0, NOW)
    assert await mark(Change(Mark.ACTIONED, action_id="nope")) == []
    [actioned] = await mark(Change(Mark.ACTIONED, action_id="open"))
    assert (actioned.action_id, actioned.actioned_at_ms, actioned.status) == (
        "open",
        NOW,
        Status.READ,
    )
    [archived] = await mark(Change(Mark.ARCHIVED))
    assert archived.archived_at_ms == NOW
    assert archived.status is Status.READ
    [back] = await mark(Change(Mark.UNARCHIVED))
    assert back.archived_at_ms == 0
    [snoozed] = await mark(Change(Mark.SNOOZED, snooze_until_ms=NOW + 60_000))
    assert (snoozed.visible, snoozed.snoozed_until_ms) == (False, NOW + 60_000)
    assert await listed(store) == []
    assert await listed(store, Filter(channels=(Channel.IN_APP,), snoozed=True)) == ["n-0"]
    assert await store.counts("t1", "u1", INBOX, NOW) == Counts()
    assert await mark(Change(Mark.READ)) == []  # a snoozed row is out of reach
    [woken] = await mark(Change(Mark.UNSNOOZED))
    assert (woken.visible, woken.seen_at_ms, woken.status) == (True, 0, Status.DELIVERED)
    assert await store.counts("t1", "u1", INBOX, NOW) == Counts(unread=1, unseen=1, total=1)


async def test_marks_reach_only_the_callers_rows(store: Store) -> None:
    mine, theirs = make_row(0), make_row(1, user="u2")
    await store.create_notifications([mine, theirs])
    changed = await store.mark(
        "t1", "u1", Selection(ids=(mine.id, theirs.id)), Change(Mark.READ), NOW
    )
    assert [r.id for r in changed.rows] == [mine.id]
    gone = await store.delete("t1", "u1", Selection(ids=(theirs.id,)), NOW)
    assert gone.ids == []
    assert await store.counts("t1", "u2", INBOX, NOW) == Counts(1, 1, 1)


async def test_mark_and_delete_all_by_filter(store: Store) -> None:
    rows = [make_row(i, category="a" if i % 2 else "b") for i in range(6)]
    await store.create_notifications(rows)
    only_a = Filter(channels=(Channel.IN_APP,), categories=("a",))
    changed = await store.mark("t1", "u1", Selection(filter=only_a), Change(Mark.READ), NOW)
    assert sorted(r.notification_id for r in changed.rows) == ["n-1", "n-3", "n-5"]
    assert changed.counts.unread == 3
    unread = replace(INBOX, read=ReadScope.UNREAD)
    assert await listed(store, unread) == ["n-4", "n-2", "n-0"]
    assert await listed(store, replace(INBOX, read=ReadScope.READ)) == ["n-5", "n-3", "n-1"]
    all_read = await store.mark("t1", "u1", Selection(filter=INBOX), Change(Mark.READ), NOW)
    assert len(all_read.rows) == 3
    assert all_read.counts == Counts(unread=0, unseen=0, total=6)
    deleted = await store.delete("t1", "u1", Selection(filter=only_a), NOW)
    assert sorted(deleted.ids) == sorted(r.id for r in rows if r.category == "a")
    assert deleted.counts.total == 3


async def test_filters_select_by_payload(store: Store) -> None:
    await store.create_notifications(
        [
            make_row(0, category="billing", severity=Severity.ERROR, tags=("money",)),
            make_row(1, category="comments", severity=Severity.INFO, tags=("social", "team")),
            make_row(2, category="comments", tags=()),
            make_row(3, channel=Channel.EMAIL, category="billing"),
        ]
    )
    assert await listed(store, replace(INBOX, categories=("comments",))) == ["n-2", "n-1"]
    assert await listed(store, replace(INBOX, tags=("team", "money"))) == ["n-1", "n-0"]
    assert await listed(store, replace(INBOX, severities=(Severity.ERROR,))) == ["n-0"]
    every = Filter(channels=(Channel.IN_APP, Channel.EMAIL), categories=("billing",))
    assert await listed(store, every) == ["n-3", "n-0"]
    counted = await store.counts("t1", "u1", replace(INBOX, categories=("comments",)), NOW)
    assert counted == Counts(unread=2, unseen=2, total=2)


async def test_collapse_replaces_the_unread_row_with_the_same_key(store: Store) -> None:
    first = make_row(0, collapse_key="thread:1", collapsed_count=1)
    [one] = await store.create_notifications([first])
    assert one.replaced == ""
    second = make_row(1, collapse_key="thread:1", collapsed_count=1)
    [two] = await store.create_notifications([second])
    assert two.replaced == first.id
    assert two.row.collapsed_count == 2
    third = make_row(2, collapse_key="thread:1", collapsed_count=1)
    [three] = await store.create_notifications([third])
    assert (three.replaced, three.row.collapsed_count) == (second.id, 3)
    assert await listed(store) == ["n-2"]
    assert (await store.get_notifications("t1", [third.id]))[0].collapsed_count == 3
    assert await store.counts("t1", "u1", INBOX, NOW) == Counts(1, 1, 1)
    # A retry collapses nothing; a read row is not replaced; other users are apart.
    [again] = await store.create_notifications([replace(third, id=new_id(NOW))])
    assert (again.created, again.replaced) == (False, "")
    await store.mark("t1", "u1", Selection(ids=(third.id,)), Change(Mark.READ), NOW)
    [fourth] = await store.create_notifications([make_row(3, collapse_key="thread:1")])
    assert fourth.replaced == ""
    [other] = await store.create_notifications([make_row(4, user="u2", collapse_key="thread:1")])
    assert other.replaced == ""
    assert await listed(store) == ["n-3", "n-2"]


async def test_scheduled_snoozed_and_expiring_rows_follow_the_clock(store: Store) -> None:
    later = make_row(0, deliver_at_ms=NOW + 1_000, visible=False)
    expiring = make_row(1, expires_at_ms=NOW + 2_000)
    plain = make_row(2)
    await store.create_notifications([later, expiring, plain])
    assert await listed(store) == ["n-2", "n-1"]
    assert await store.counts("t1", "u1", INBOX, NOW) == Counts(2, 2, 2)
    await store.mark(
        "t1",
        "u1",
        Selection(ids=(plain.id,)),
        Change(Mark.SNOOZED, snooze_until_ms=NOW + 3_000),
        NOW,
    )
    assert await store.next_due_ms() == NOW + 1_000
    nothing = await store.run_due(NOW + 999, 10)
    assert (nothing.woken, nothing.expired) == ([], [])
    due = await store.run_due(NOW + 1_000, 10)
    assert [r.id for r in due.woken] == [later.id]
    assert due.woken[0].visible
    assert due.expired == []
    assert await store.next_due_ms() == NOW + 2_000
    # Past its expiry a row is gone from reads at once, before the sweep.
    gone = PageRequest(after=None, limit=50, unread_only=False, filter=INBOX, now_ms=NOW + 2_000)
    assert [r.id for r in (await store.list_notifications("t1", "u1", gone)).rows] == [later.id]
    assert await store.list_after(
        "t1", "u1", PageKey(0, new_id(0)), Channel.IN_APP, 10, now_ms=NOW + 2_000
    ) == [(await store.get_notifications("t1", [later.id]))[0]]
    swept = await store.run_due(NOW + 2_500, 10)
    assert [r.id for r in swept.expired] == [expiring.id]
    assert await store.get_notifications("t1", [expiring.id]) == []
    woke = await store.run_due(NOW + 3_000, 10)
    assert woke.woken == []
    assert [r.id for r in woke.snoozed] == [plain.id]
    assert (woke.snoozed[0].visible, woke.snoozed[0].snoozed_until_ms) == (True, 0)
    assert await store.next_due_ms() is None
    assert await store.counts("t1", "u1", INBOX, NOW + 3_000) == Counts(2, 2, 2)


async def test_hidden_rows_are_not_listed_counted_or_replayed(store: Store) -> None:
    hidden = make_row(0, deliver_at_ms=NOW + 1_000, visible=False)
    await store.create_notifications([hidden])
    assert await listed(store) == []
    assert await store.counts("t1", "u1", INBOX, NOW) == Counts()
    assert await store.list_after("t1", "u1", PageKey(0, new_id(0)), Channel.IN_APP, 10) == []
    touched = await store.mark("t1", "u1", Selection(ids=(hidden.id,)), Change(Mark.READ), NOW)
    assert touched.rows == []


async def test_the_change_log_records_every_state_change_in_order(store: Store) -> None:
    rows = [make_row(i) for i in range(3)]
    await store.create_notifications(rows)
    assert await store.last_change("t1", "u1") == 0  # creating is not a state change
    read = await store.mark("t1", "u1", Selection(ids=(rows[0].id,)), Change(Mark.READ), NOW)
    assert read.change > 0
    assert await store.mark_read("t1", "u1", rows[1].id, NOW) is not None
    gone = await store.delete("t1", "u1", Selection(ids=(rows[2].id,)), NOW)
    assert gone.change > read.change
    first = make_row(5, collapse_key="k")
    await store.create_notifications([first])
    await store.create_notifications([make_row(6, collapse_key="k")])  # collapses ``first``
    entries = await store.changes_after("t1", "u1", 0, 100)
    assert [(e.row_id, e.deleted) for e in entries] == [
        (rows[0].id, False),
        (rows[1].id, False),
        (rows[2].id, True),
        (first.id, True),
    ]
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert await store.last_change("t1", "u1") == entries[-1].seq
    assert await store.changes_after("t1", "u1", entries[1].seq, 100) == entries[2:]
    assert await store.changes_after("t1", "u1", 0, 2) == entries[:2]
    assert await store.changes_after("t1", "nobody", 0, 100) == []
    # A repeat that changes nothing logs nothing.
    again = await store.mark("t1", "u1", Selection(ids=(rows[0].id,)), Change(Mark.READ), NOW)
    assert again.change == 0
    assert await store.last_change("t1", "u1") == entries[-1].seq


async def test_purge_read_deletes_only_rows_read_before_the_cutoff(store: Store) -> None:
    rows = [make_row(i) for i in range(5)]
    other = make_row(5, user="u2")
    await store.create_notifications([*rows, other])
    for i, row in enumerate(rows[:4]):  # read at NOW, NOW+1000, NOW+2000, NOW+3000
        await store.mark("t1", "u1", Selection(ids=(row.id,)), Change(Mark.READ), NOW + i * 1000)
    await store.mark("t1", "u2", Selection(ids=(other.id,)), Change(Mark.READ), NOW)
    # Read and then unread again: not read any more, so kept.
    await store.mark("t1", "u1", Selection(ids=(rows[3].id,)), Change(Mark.UNREAD), NOW + 3500)
    before = await store.counts("t1", "u1", INBOX, NOW)
    assert before == Counts(unread=2, unseen=1, total=5)

    first = await store.purge_read(NOW + 1500, NOW + 9000, limit=2)
    # The longest read first, across users; the limit holds.
    assert {r.id for r in first.rows} == {rows[0].id, other.id}
    second = await store.purge_read(NOW + 1500, NOW + 9000, limit=10)
    assert [r.id for r in second.rows] == [rows[1].id]
    assert second.rows[0].read_at_ms == NOW + 1000
    assert await store.purge_read(NOW + 1500, NOW + 9000, limit=10) == Purged([], {})
    assert await listed(store, INBOX) == ["n-4", "n-3", "n-2"]
    assert await store.counts("t1", "u1", INBOX, NOW) == Counts(unread=2, unseen=1, total=3)
    assert await store.counts("t1", "u2", INBOX, NOW) == Counts()
    # Each purge is a delete in the user's change log, at the position it reports.
    entries = await store.changes_after("t1", "u1", 0, 100)
    deleted = [e for e in entries if e.deleted]
    assert [e.row_id for e in deleted] == [rows[0].id, rows[1].id]
    assert first.changes[("t1", "u1")] == deleted[0].seq
    assert second.changes == {("t1", "u1"): deleted[1].seq}
    # Gone for good.
    assert await store.get_notifications("t1", [rows[0].id]) == []


# ------------------------------------------------------------ delivery: the outbox

T0 = 1_700_000_000_000
LEASE = 30_000


def token() -> str:
    """A dispatcher's lease token (drivers may require a UUID)."""
    return str(uuid.uuid4())


async def test_external_rows_are_queued_with_their_row(store: Store) -> None:
    rows = [
        make_row(0, channel=Channel.IN_APP),
        make_row(0, channel=Channel.EMAIL, address="ann@example.com"),
        make_row(0, channel=Channel.WEBHOOK, address="https://hooks.example.com/a"),
    ]
    await store.create_notifications(rows)
    mine = token()
    emails = await store.claim_outbox(Channel.EMAIL, T0 + 10, 10, LEASE, mine)
    assert [(e.row.id, e.row.address, e.first_due_ms) for e in emails] == [
        (rows[1].id, "ann@example.com", T0)
    ]
    hooks = await store.claim_outbox(Channel.WEBHOOK, T0 + 10, 10, LEASE, mine)
    assert [e.row.address for e in hooks] == ["https://hooks.example.com/a"]
    assert await store.claim_outbox(Channel.IN_APP, T0 + 10, 10, LEASE, mine) == []
    # A retry of the create queues nothing more.
    await store.create_notifications(rows)
    assert await store.claim_outbox(Channel.EMAIL, T0 + LEASE + 11, 10, LEASE, token()) != []
    assert await store.claim_outbox(Channel.EMAIL, T0 + LEASE + 12, 10, LEASE, token()) == []


async def test_a_lease_keeps_an_entry_until_it_runs_out(store: Store) -> None:
    row = make_row(0, channel=Channel.EMAIL, address="a@example.com")
    await store.create_notifications([row])
    first, second = token(), token()
    assert len(await store.claim_outbox(Channel.EMAIL, T0, 10, LEASE, first)) == 1
    assert await store.claim_outbox(Channel.EMAIL, T0 + LEASE - 1, 10, LEASE, second) == []
    taken = await store.claim_outbox(Channel.EMAIL, T0 + LEASE, 10, LEASE, second)
    assert [e.row.id for e in taken] == [row.id]
    # The first holder's lease is lost: its result is ignored, the second's counts.
    late = SendResult(row.id, Status.DELIVERED, 1, at_ms=T0 + LEASE, provider_message_id="x")
    assert await store.finish_outbox(first, [late]) == []
    assert (await store.get_notifications("t1", [row.id]))[0].status is Status.PENDING
    assert await store.finish_outbox(second, [late]) == [row.id]


async def test_results_end_or_requeue_entries_and_land_on_the_row(store: Store) -> None:
    rows = [make_row(i, channel=Channel.EMAIL, address=f"u{i}@example.com") for i in range(3)]
    await store.create_notifications(rows)
    mine = token()
    assert len(await store.claim_outbox(Channel.EMAIL, T0 + 5, 10, LEASE, mine)) == 3
    recorded = await store.finish_outbox(
        mine,
        [
            SendResult(rows[0].id, Status.DELIVERED, 1, at_ms=T0 + 6, provider_message_id="<m0>"),
            SendResult(rows[1].id, Status.FAILED, 1, at_ms=T0 + 6, reason="550 no such user"),
            SendResult(rows[2].id, Status.PENDING, 1, reason="421 busy", retry_at_ms=T0 + 5000),
        ],
    )
    assert sorted(recorded) == sorted(r.id for r in rows)
    by_id = {r.id: r for r in await store.get_notifications("t1", [r.id for r in rows])}
    delivered, failed, retried = (by_id[r.id] for r in rows)
    assert (delivered.status, delivered.delivered_at_ms, delivered.provider_message_id) == (
        Status.DELIVERED,
        T0 + 6,
        "<m0>",
    )
    assert (delivered.attempts, delivered.failure_reason) == (1, "")
    assert (failed.status, failed.failure_reason, failed.attempts) == (
        Status.FAILED,
        "550 no such user",
        1,
    )
    assert (retried.status, retried.failure_reason, retried.attempts) == (
        Status.PENDING,
        "421 busy",
        1,
    )
    # Only the requeued entry comes back, and only when its retry is due.
    assert await store.claim_outbox(Channel.EMAIL, T0 + 4999, 10, LEASE, token()) == []
    again = await store.claim_outbox(Channel.EMAIL, T0 + 5000, 10, LEASE, token())
    assert [(e.row.id, e.row.attempts, e.first_due_ms) for e in again] == [(rows[2].id, 1, T0 + 2)]


async def test_release_gives_entries_back_at_once(store: Store) -> None:
    row = make_row(0, channel=Channel.WEBHOOK, address="https://h.example.com")
    await store.create_notifications([row])
    mine = token()
    assert len(await store.claim_outbox(Channel.WEBHOOK, T0, 10, LEASE, mine)) == 1
    await store.release_outbox(token(), [row.id])  # not the holder: nothing changes
    assert await store.claim_outbox(Channel.WEBHOOK, T0 + 1, 10, LEASE, token()) == []
    await store.release_outbox(mine, [row.id])
    assert len(await store.claim_outbox(Channel.WEBHOOK, T0 + 1, 10, LEASE, token())) == 1


async def test_concurrent_claims_never_share_an_entry(store: Store) -> None:
    rows = [make_row(i, channel=Channel.EMAIL, address="a@example.com") for i in range(60)]
    await store.create_notifications(rows)
    claims = await asyncio.gather(
        *(store.claim_outbox(Channel.EMAIL, T0 + 100, 7, LEASE, token()) for _ in range(12))
    )
    ids = [e.row.id for claim in claims for e in claim]
    assert len(ids) == len(set(ids)) == 60
    # Oldest due first within one claim.
    for claim in claims:
        assert [e.first_due_ms for e in claim] == sorted(e.first_due_ms for e in claim)


async def test_scheduled_deleted_and_claimed_limits(store: Store) -> None:
    later = make_row(0, channel=Channel.EMAIL, address="a@example.com", deliver_at_ms=T0 + 9000,
                     visible=False)  # fmt: skip
    gone = make_row(1, channel=Channel.EMAIL, address="b@example.com")
    await store.create_notifications([later, gone])
    await store.delete("t1", "u1", Selection(ids=(gone.id,)), T0)
    assert await store.claim_outbox(Channel.EMAIL, T0 + 8999, 10, LEASE, token()) == []
    due = await store.claim_outbox(Channel.EMAIL, T0 + 9000, 10, LEASE, token())
    assert [(e.row.id, e.first_due_ms) for e in due] == [(later.id, T0 + 9000)]


async def test_outbox_depth_by_channel(store: Store) -> None:
    assert await store.outbox_depth(T0) == {}
    await store.create_notifications(
        [
            make_row(0, channel=Channel.EMAIL, address="a@example.com"),
            make_row(5, channel=Channel.EMAIL, address="a@example.com"),
            make_row(0, channel=Channel.WEBHOOK, address="https://h.example.com",
                     deliver_at_ms=T0 + 100, visible=False),
            make_row(0, channel=Channel.IN_APP),
        ]
    )  # fmt: skip
    depth = await store.outbox_depth(T0 + 50)
    assert depth == {Channel.EMAIL: OutboxDepth(2, T0), Channel.WEBHOOK: OutboxDepth(1, 0)}


# ------------------------------------------------------------ delivery: preferences


async def test_preferences_merge_replace_and_tenant_defaults(store: Store) -> None:
    off_email = PreferenceRule("billing", Channel.EMAIL, False)
    on_all = PreferenceRule("", Channel.UNSPECIFIED, True)
    assert (await store.preferences_for("t1", ["u1"]))["u1"] == Preferences()
    got = await store.update_preferences("t1", "u1", [off_email, on_all], replace=False)
    assert got.rules == (on_all, off_email)  # sorted by (category, channel)
    flipped = PreferenceRule("billing", Channel.EMAIL, True)
    hooks_off = PreferenceRule("", Channel.WEBHOOK, False)
    got = await store.update_preferences("t1", "u1", [flipped, hooks_off], replace=False)
    assert got.rules == (on_all, hooks_off, flipped)
    got = await store.update_preferences("t1", "u1", [hooks_off], replace=True)
    assert got.rules == (hooks_off,)
    tenant = TenantPreferences((PreferenceRule("", Channel.EMAIL, False),), ("security",))
    await store.set_tenant_preferences("t1", tenant)
    found = await store.preferences_for("t1", ["u1", "u2"])
    assert found == {"u1": Preferences((hooks_off,), tenant), "u2": Preferences((), tenant)}
    # Isolation: another tenant and user see nothing of it.
    assert (await store.preferences_for("t2", ["u1"]))["u1"] == Preferences()
    await store.set_tenant_preferences("t1", TenantPreferences())
    assert (await store.preferences_for("t1", ["u1"]))["u1"] == Preferences((hooks_off,))


# What ``from notify.store.conformance import *`` brings: the tests and the helpers.
__all__ = [
    "ADVERSARIAL",
    "NOW",
    "all_rows",
    "inbox_page",
    "listed",
    "make_row",
    "page",
    "rich",
    *(name for name in list(globals()) if name.startswith("test_")),
]
