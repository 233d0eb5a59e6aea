"""Notify hands the store an announcer for exactly the rows the in-app provider pushes.

A bus double that announces (as PgBus does, without a database) and a
memory store that calls the announcer like the PostgreSQL driver (inside the
write, with the rows it created) show the wiring: only created, visible,
in-app rows are announced; the announced event is then dispatched here only,
never sent again; a retry announces nothing; a failed write leaves no
reservation behind.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from notify.core.clock import ManualClock
from notify.core.commands import NotifyCommand, Payload
from notify.core.errors import Unavailable
from notify.core.events import BusEvent, NotificationsCreated
from notify.core.model import Channel, Notification
from notify.core.ports import Announcement, Announcer
from notify.delivery.inapp import InAppProvider
from notify.delivery.registry import ProviderRegistry
from notify.metrics import Metrics
from notify.realtime.bus import BusClient, LocalBus
from notify.realtime.hub import Hub
from notify.service.notifier import Notifier
from notify.store import StoredRow
from notify.store.memory import MemoryStore


class AnnouncingBus(LocalBus):
    """Announces like a bus across processes: payloads for the store, sends recorded."""

    def __init__(self) -> None:
        super().__init__(replica_id="here")
        self.announced: list[BusEvent] = []
        self.sent: list[BusEvent] = []
        self.here_only: list[BusEvent] = []

    def announcement(self, event: BusEvent) -> Announcement | None:
        self.announced.append(event)
        return Announcement("bus", (f"payload-{len(self.announced)}",))

    def publish(self, event: BusEvent) -> None:
        self.sent.append(event)
        super().publish(event)

    def dispatch_announced(self, event: BusEvent) -> None:
        self.here_only.append(event)
        super().dispatch_announced(event)


class AnnouncingStore(MemoryStore):
    """Calls the announcer with the rows it created, and keeps what it answered."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.announcements: list[Announcement | None] = []
        self.given: list[Announcer | None] = []

    async def create_notifications(
        self, rows: Sequence[Notification], announce: Announcer | None = None
    ) -> list[StoredRow]:
        self.given.append(announce)
        if self.fail:
            raise Unavailable("the store is away")
        stored = await super().create_notifications(rows)
        created = [s.row for s in stored if s.created]
        if announce is not None and created:
            self.announcements.append(announce(created))
        return stored


def build(store: MemoryStore, bus: LocalBus) -> tuple[Notifier, BusClient]:
    client = BusClient(bus)
    notifier = Notifier(
        store,
        ProviderRegistry([InAppProvider(client)]),
        client,
        Hub(heartbeat_interval=3600, queue_size=16),
        Metrics(),
        ManualClock(),
    )
    return notifier, client


def command(
    notification_id: str, *users: str, channels: tuple[Channel, ...] = (Channel.IN_APP,),
    payload: Payload | None = None,
) -> NotifyCommand:  # fmt: skip
    return NotifyCommand(
        "acme", notification_id, users, channels, "", "", notification_id, "",
        payload=payload or Payload(),
    )  # fmt: skip


async def test_new_in_app_rows_are_announced_in_the_write_and_dispatched_here_only() -> None:
    store, bus = AnnouncingStore(), AnnouncingBus()
    notifier, client = build(store, bus)
    outcome = await notifier.notify(
        command("n-1", "alice", "bob", channels=(Channel.IN_APP, Channel.EMAIL))
    )
    assert outcome.pending == 4
    # One announcement, of the two in-app rows only (the email rows are the outbox's).
    (event,) = bus.announced
    assert isinstance(event, NotificationsCreated)
    assert sorted((r.user_id, r.channel) for r in event.rows) == [
        ("alice", Channel.IN_APP), ("bob", Channel.IN_APP),
    ]  # fmt: skip
    assert store.announcements == [Announcement("bus", ("payload-1",))]
    # After the commit: dispatched here with the same rows, and never sent.
    (dispatched,) = bus.here_only
    assert isinstance(dispatched, NotificationsCreated)
    assert (dispatched.origin, dispatched.ticket) == (event.origin, event.ticket)
    assert [r.id for r in dispatched.rows] == [r.id for r in event.rows]
    assert not [e for e in bus.sent if isinstance(e, NotificationsCreated)]
    assert client.pending == 0


async def test_a_retry_announces_nothing_and_leaves_no_reservation() -> None:
    store, bus = AnnouncingStore(), AnnouncingBus()
    notifier, client = build(store, bus)
    await notifier.notify(command("n-1", "alice"))
    await notifier.notify(command("n-1", "alice"))
    assert len(bus.announced) == 1
    assert len(bus.here_only) == 1
    assert client.pending == 0


async def test_rows_for_later_and_channels_without_push_get_no_announcer() -> None:
    store, bus = AnnouncingStore(), AnnouncingBus()
    notifier, client = build(store, bus)
    later = Payload(deliver_at_ms=1_900_000_000_000)
    await notifier.notify(command("n-1", "alice", payload=later))
    await notifier.notify(command("n-2", "alice", channels=(Channel.EMAIL,)))
    assert store.given == [None, None]
    assert bus.announced == []
    assert client.pending == 0


async def test_a_failed_write_releases_its_reservation() -> None:
    store, bus = AnnouncingStore(fail=True), AnnouncingBus()
    notifier, client = build(store, bus)
    with pytest.raises(Unavailable):
        await notifier.notify(command("n-1", "alice"))
    assert store.given[0] is not None  # an announcer was offered
    assert client.pending == 0
    assert bus.announced == bus.here_only == bus.sent == []


async def test_a_bus_with_nobody_else_to_tell_publishes_as_before() -> None:
    store = AnnouncingStore()
    bus = LocalBus()
    seen: list[BusEvent] = []
    bus.subscribe(seen.append)
    notifier, client = build(store, bus)
    await notifier.notify(command("n-1", "alice"))
    assert store.announcements == [None]
    assert [type(e) for e in seen] == [NotificationsCreated]
    assert client.pending == 0
