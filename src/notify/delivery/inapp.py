"""In-app delivery: rows go to the user's live streams over the bus.

A row is DELIVERED when a live session on any replica took it (the replica
that owns the session says so in a NotificationsTaken reply), and PENDING
otherwise: it waits in the inbox and is replayed to a resuming stream.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from notify.core.events import NotificationsCreated, NotificationsTaken, Reply
from notify.core.model import Channel, Status
from notify.core.ports import Delivery, Receipt
from notify.realtime.bus import BusClient

_PENDING = Receipt(Status.PENDING)


class InAppProvider:
    name = "in_app"
    channel = Channel.IN_APP

    def __init__(self, bus: BusClient) -> None:
        self._bus = bus

    async def send(self, deliveries: Sequence[Delivery]) -> list[Receipt]:
        rows = tuple(d.row for d in deliveries)
        if not rows:
            return []
        stored_at_ns = time.perf_counter_ns()
        wanted = len(rows)

        def all_taken(replies: list[Reply]) -> bool:
            return sum(len(r.row_ids) for r in replies if isinstance(r, NotificationsTaken)) >= (
                wanted
            )

        replies = await self._bus.ask(
            lambda origin, ticket: NotificationsCreated(origin, ticket, rows, stored_at_ns),
            all_taken,
        )
        taken: dict[str, Receipt] = {}
        for reply in replies:
            if isinstance(reply, NotificationsTaken):
                receipt = Receipt(Status.DELIVERED, at_ms=reply.at_ms)
                for row_id in reply.row_ids:
                    taken.setdefault(row_id, receipt)
        return [taken.get(row.id, _PENDING) for row in rows]
