"""The catch-up after a bus drop: each missed row once, to every session of its user."""

from __future__ import annotations

from notify.core.clock import ManualClock
from notify.core.events import BusEvent, NotificationsCreated
from notify.core.ids import new_id
from notify.core.model import Channel, DeviceType, Notification, Status
from notify.realtime.catchup import CatchUp
from notify.realtime.hub import CloseReason, Hub
from notify.realtime.presence import LocalPresence
from notify.store.memory import MemoryStore


def make_row(clock: ManualClock, user: str, name: str, tenant: str = "acme") -> Notification:
    return Notification(
        id=new_id(clock.now_ms()), tenant_id=tenant, user_id=user, notification_id=name,
        channel=Channel.IN_APP, subject_ref="s", subject_type="t", title=name, body="",
        status=Status.PENDING, created_at_ms=clock.now_ms(),
    )  # fmt: skip


class Setup:
    def __init__(self, max_rows: int = 100) -> None:
        self.clock = ManualClock()
        self.store = MemoryStore()
        self.local = LocalPresence()
        self.hub = Hub(
            heartbeat_interval=3600,
            queue_size=64,
            clock=self.clock,
            on_change=lambda s, ended: (
                self.local.opened((s.tenant_id, s.user_id))
                if ended is None
                else self.local.closed((s.tenant_id, s.user_id))
            ),
        )
        self.catch_up = CatchUp(
            self.hub, self.store, self.local, self.clock, replica_id="me", max_rows=max_rows
        )
        self.dispatched: list[BusEvent] = []

    def dispatch(self, event: BusEvent) -> None:
        self.dispatched.append(event)
        self.catch_up.observe(event)

    async def store_rows(self, user: str, *names: str, tenant: str = "acme") -> list[Notification]:
        rows = []
        for name in names:
            self.clock.advance(0.001)
            rows.append(make_row(self.clock, user, name, tenant))
        await self.store.create_notifications(rows)
        return rows


async def test_offers_only_what_no_session_was_offered_then_nothing_twice() -> None:
    s = Setup()
    s.hub.open("acme", "alice", DeviceType.BROWSER)
    since = s.clock.now_ms()
    seen = await s.store_rows("alice", "live-1", "missed-1")
    # live-1 reached the sessions before the drop; missed-1 was announced while down.
    s.dispatch(NotificationsCreated("other", 1, (seen[0],), 0))
    await s.store_rows("bob", "not-watched")
    await s.store_rows("alice", "other-tenant", tenant="globex")
    missed = await s.store_rows("alice", "missed-2")
    assert s.catch_up.wants("acme", "alice", seen[1].id)
    assert not s.catch_up.wants("acme", "alice", seen[0].id)
    assert not s.catch_up.wants("acme", "bob", "any")

    users, rows = await s.catch_up.run(since, s.dispatch)

    assert (users, rows) == (1, 2)
    caught = s.dispatched[-1]
    assert isinstance(caught, NotificationsCreated)
    assert (caught.origin, caught.ticket) == ("me", 0)  # answered to nobody
    assert [r.notification_id for r in caught.rows] == ["missed-1", "missed-2"]
    # Announcements arriving late are not fetched again; a second catch-up finds nothing.
    assert not s.catch_up.wants("acme", "alice", missed[0].id)
    assert await s.catch_up.run(since, s.dispatch) == (1, 0)
    # The caught-up rows reached a stream: they are stored DELIVERED.
    stored = await s.store.get_notifications("acme", [seen[1].id, missed[0].id])
    assert [r.status for r in stored] == [Status.DELIVERED, Status.DELIVERED]


async def test_rows_before_the_window_are_left_to_resume() -> None:
    s = Setup()
    s.hub.open("acme", "alice", DeviceType.BROWSER)
    await s.store_rows("alice", "old")
    since = s.clock.now_ms() + 1
    await s.store_rows("alice", "new")
    assert await s.catch_up.run(since, s.dispatch) == (1, 1)
    caught = s.dispatched[-1]
    assert isinstance(caught, NotificationsCreated)
    assert [r.notification_id for r in caught.rows] == ["new"]


async def test_too_much_missed_ends_the_streams_so_they_resume_by_token() -> None:
    s = Setup(max_rows=2)
    session = s.hub.open("acme", "alice", DeviceType.BROWSER)
    since = s.clock.now_ms()
    await s.store_rows("alice", "a", "b", "c")
    assert await s.catch_up.run(since, s.dispatch) == (1, 0)
    assert session.closed is CloseReason.SLOW_CONSUMER
    assert s.dispatched == []


async def test_what_was_offered_is_kept_while_the_bus_is_down() -> None:
    s = Setup()
    s.hub.open("acme", "alice", DeviceType.BROWSER)
    since = s.clock.now_ms()
    s.catch_up.hold(since)
    rows = await s.store_rows("alice", "offered")
    s.dispatch(NotificationsCreated("me", 1, tuple(rows), 0))
    s.clock.advance(600)  # far past the usual memory, but the bus is still down
    later = await s.store_rows("alice", "later")
    s.dispatch(NotificationsCreated("me", 2, tuple(later), 0))
    assert not s.catch_up.wants("acme", "alice", rows[0].id)
    assert await s.catch_up.run(since, s.dispatch) == (1, 0)
