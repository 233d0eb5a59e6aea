"""The live side of the bus: this process's sessions, and the replies for them.

The relay subscribes to the bus and turns its requests into offers to the
local hub's sessions: new rows become NotificationPush events (stamped
DELIVERED, since a session took them), data-change hints start a round.
Whatever a local session took is answered back to the requester, which is
how the service learns that a row was delivered wherever its user's streams
are open.
"""

from __future__ import annotations

from notify.core.clock import Clock
from notify.core.events import (
    BusEvent,
    DataChangeAcked,
    DataChangePublished,
    DataChangeReached,
    InboxChanged,
    NotificationsCreated,
    NotificationsTaken,
)
from notify.core.model import Status
from notify.core.ports import Bus
from notify.realtime.datachange import DataChangeRounds
from notify.realtime.hub import CountsPush, Hub, NotificationPush, UpdatePush


class LiveRelay:
    def __init__(self, bus: Bus, hub: Hub, rounds: DataChangeRounds, clock: Clock) -> None:
        self._bus = bus
        self._hub = hub
        self._rounds = rounds
        self._clock = clock
        self._unsubscribe = bus.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: BusEvent) -> None:
        if isinstance(event, NotificationsCreated):
            self._offer(event)
        elif isinstance(event, DataChangePublished):
            reached = self._rounds.publish(event.command)
            if reached:
                self._bus.publish(DataChangeReached(event.origin, event.ticket, reached))
        elif isinstance(event, InboxChanged):
            if not self._hub.has_sessions(event.tenant_id, event.user_id):
                return
            if event.rows or event.deleted_ids:
                update = UpdatePush(event.rows, event.deleted_ids, event.change)
                self._hub.publish(event.tenant_id, event.user_id, update)
            if event.counts is not None:
                self._hub.publish(event.tenant_id, event.user_id, CountsPush(event.counts))
        elif isinstance(event, DataChangeAcked):
            session = self._hub.find(event.tenant_id, event.user_id, event.session_id)
            if session is not None:
                self._rounds.ack(session, event.idempotency_key)

    def _offer(self, event: NotificationsCreated) -> None:
        hub = self._hub
        taken: list[str] = []
        stamp = 0
        for row in event.rows:
            if not hub.has_sessions(row.tenant_id, row.user_id):
                continue
            if not stamp:
                stamp = self._clock.now_ms()
            pushed = row.copy()
            pushed.status = Status.DELIVERED
            pushed.delivered_at_ms = stamp
            if hub.publish(
                row.tenant_id, row.user_id, NotificationPush(pushed, event.stored_at_ns)
            ):
                taken.append(row.id)
        if taken:
            self._bus.publish(NotificationsTaken(event.origin, event.ticket, tuple(taken), stamp))
