"""Memory-store specifics; behaviour shared with every driver lives in conformance/."""

from __future__ import annotations

from typing import Any

from notify.core.ids import new_id
from notify.core.model import Channel, Notification, PageRequest, Status
from notify.store.memory import MemoryStore


class CountingDict(dict[str, Any]):
    reads = 0

    def __getitem__(self, key: str) -> Any:
        CountingDict.reads += 1
        return super().__getitem__(key)


def row(i: int, user: str = "u") -> Notification:
    return Notification(
        id=new_id(1_000 + i),
        tenant_id="t",
        user_id=user,
        notification_id=f"n{i}",
        channel=Channel.IN_APP,
        subject_ref="",
        subject_type="",
        title="",
        body="",
        status=Status.PENDING,
        created_at_ms=1_000 + i,
    )


async def test_a_page_touches_only_its_own_rows() -> None:
    store = MemoryStore()
    await store.create_notifications([row(i) for i in range(20_000)])
    inbox = store._inboxes[("t", "u")]
    inbox.rows = CountingDict(inbox.rows)
    page = await store.list_notifications(
        "t", "u", PageRequest(after=None, limit=20, unread_only=False)
    )
    deep = await store.list_notifications(
        "t", "u", PageRequest(after=page.next_key, limit=20, unread_only=True)
    )
    assert [r.notification_id for r in page.rows][:2] == ["n19999", "n19998"]
    assert deep.rows[0].notification_id == "n19979"
    assert page.unread_count == 20_000
    # Each page reads its rows and the one after them (is there a next page?).
    assert CountingDict.reads == 42


async def test_returned_rows_are_copies() -> None:
    store = MemoryStore()
    [created] = await store.create_notifications([row(1)])
    created.row.title = "mutated"
    page = await store.list_notifications(
        "t", "u", PageRequest(after=None, limit=5, unread_only=False)
    )
    assert page.rows[0].title == ""
