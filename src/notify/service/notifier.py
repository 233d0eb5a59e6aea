"""The orchestrator: every use case, over the store, the providers and the bus.

Transports call in with validated commands (``notify.core.commands``) and the
caller's principal; the Notifier decides, and calls the store, the channel
providers and the bus. Nothing here knows about HTTP, protobuf or Connect,
nor which store or bus driver runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from notify.auth import Principal
from notify.core.clock import Clock
from notify.core.commands import (
    DataChangeAck,
    DataChangeCommand,
    NotifyCommand,
    build_device,
    build_row_id,
)
from notify.core.errors import NotFound, OutOfRange
from notify.core.events import DataChangeAcked, DataChangePublished, DataChangeReached, Reply
from notify.core.ids import new_id
from notify.core.model import (
    Channel,
    DeviceType,
    Notification,
    NotifyOutcome,
    Page,
    PageKey,
    PageRequest,
    Status,
)
from notify.core.ports import Delivery, Receipt
from notify.core.ratelimit import RateLimiter
from notify.delivery.registry import ProviderRegistry
from notify.metrics import Metrics
from notify.realtime.bus import BusClient
from notify.realtime.hub import Hub, Session
from notify.store import Store, StoredRow

# A resume replays at most this many missed notifications by default; a
# client further behind is told OUT_OF_RANGE and pages its inbox instead.
DEFAULT_MAX_REPLAY = 10_000


class Notifier:
    def __init__(
        self,
        store: Store,
        providers: ProviderRegistry,
        bus: BusClient,
        hub: Hub,
        metrics: Metrics,
        clock: Clock,
        *,
        max_replay: int = DEFAULT_MAX_REPLAY,
        recipients: RateLimiter | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self._bus = bus
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._max_replay = max_replay
        self._recipients = recipients
        # Label children bound on first use (an unused pair exposes no series).
        self._stored: dict[tuple[Channel, Status], Any] = {}

    async def notify(self, command: NotifyCommand) -> NotifyOutcome:
        """Stores one row per (user, channel), then hands new rows to their providers.

        A retry finds the rows already stored: it creates and sends nothing and
        reports the stored statuses again. A channel without a provider keeps
        its rows PENDING.
        """
        if self._recipients is not None:
            self._recipients.take(command.tenant_id, len(command.user_ids))
        created_at = self._clock.now_ms()
        channels = command.channels or self.providers.active_channels
        rows = [
            Notification(
                id=new_id(created_at),
                tenant_id=command.tenant_id,
                user_id=user_id,
                notification_id=command.notification_id,
                channel=channel,
                subject_ref=command.subject_ref,
                subject_type=command.subject_type,
                title=command.title,
                body=command.body,
                status=Status.PENDING,
                created_at_ms=created_at,
            )
            for user_id in command.user_ids
            for channel in channels
        ]
        stored = await self.store.create_notifications(rows)
        await self._send(command, stored)
        counts = {Status.DELIVERED: 0, Status.PENDING: 0, Status.FAILED: 0}
        for item in stored:
            status = item.row.status
            if item.created:
                self._stored_counter(item.row.channel, status).inc()
            if status in counts:
                counts[status] += 1
            elif status is Status.READ:
                counts[Status.DELIVERED] += 1  # a retry: the user already has it
        return NotifyOutcome(
            delivered=counts[Status.DELIVERED],
            pending=counts[Status.PENDING],
            failed=counts[Status.FAILED],
        )

    def _stored_counter(self, channel: Channel, status: Status) -> Any:
        child = self._stored.get((channel, status))
        if child is None:
            child = self._stored[(channel, status)] = self._metrics.notifications_stored.labels(
                channel=channel.name.lower(), status=status.name.lower()
            )
        return child

    async def _send(self, command: NotifyCommand, stored: Sequence[StoredRow]) -> None:
        """Offers each new row to its channel's provider; records who delivered."""
        by_channel: dict[Channel, list[Notification]] = defaultdict(list)
        for item in stored:
            if item.created:
                by_channel[item.row.channel].append(item.row)
        delivered: dict[int, list[Notification]] = defaultdict(list)
        for channel, rows in by_channel.items():
            provider = self.providers.get(channel)
            if provider is None:
                continue
            deliveries = [Delivery(row, command.address(row.user_id, channel)) for row in rows]
            receipts = await provider.send(deliveries)
            for row, receipt in zip(rows, receipts, strict=True):
                _apply(row, receipt)
                if receipt.status is Status.DELIVERED:
                    delivered[receipt.at_ms].append(row)
        for at_ms, rows in delivered.items():
            await self.store.mark_delivered(rows, at_ms)

    async def list_notifications(self, principal: Principal, page: PageRequest) -> Page:
        return await self.store.list_notifications(principal.tenant_id, principal.user_id, page)

    async def mark_read(self, principal: Principal, row_id: str) -> Notification:
        build_row_id(row_id)
        row = await self.store.mark_read(
            principal.tenant_id, principal.user_id, row_id, self._clock.now_ms()
        )
        if row is None:
            raise NotFound("no notification with that id")
        return row

    async def register_push_token(self, principal: Principal, device_type: int, token: str) -> None:
        device = build_device(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            device_type=device_type,
            token=token,
            now_ms=self._clock.now_ms(),
        )
        await self.store.upsert_device(device)

    def open_session(self, principal: Principal, device_type: DeviceType) -> Session:
        """Registers a live session; from now on it receives every push."""
        return self._hub.open(principal.tenant_id, principal.user_id, device_type)

    async def missed_since(self, principal: Principal, after: PageKey) -> list[Notification]:
        """The in-app rows created after ``after``, oldest first, for a resuming stream.

        Call it only after ``open_session``, so that nothing created meanwhile
        can fall between the replay and the live pushes. Replayed rows that were
        still PENDING are now delivered, and are stored as such.
        """
        limit = self._max_replay
        rows = await self.store.list_after(
            principal.tenant_id, principal.user_id, after, Channel.IN_APP, limit + 1
        )
        if len(rows) > limit:
            raise OutOfRange(
                f"more than {limit} notifications were missed; "
                "page them with GetNotifications and reconnect without a resume_token"
            )
        pending = [row for row in rows if row.status is Status.PENDING]
        if pending:
            delivered = Receipt(Status.DELIVERED, at_ms=self._clock.now_ms())
            for row in pending:
                _apply(row, delivered)
            await self.store.mark_delivered(pending, delivered.at_ms)
        return rows

    async def publish_data_change(self, command: DataChangeCommand) -> int:
        """Hints every live session of the users, on every replica; see DataChangeRounds."""
        replies: list[Reply] = await self._bus.ask(
            lambda origin, ticket: DataChangePublished(origin, ticket, command)
        )
        return sum(r.sessions for r in replies if isinstance(r, DataChangeReached))

    def ack_data_change(self, principal: Principal, ack: DataChangeAck) -> None:
        """Stops redelivery of a data-change hint to one of the caller's sessions.

        The ack is addressed by the caller's own (tenant, user): one naming a
        session the caller does not own changes nothing, and answers exactly
        like any other ack (no existence leak).
        """
        self._bus.tell(
            DataChangeAcked(
                principal.tenant_id, principal.user_id, ack.session_id, ack.idempotency_key
            )
        )


def _apply(row: Notification, receipt: Receipt) -> None:
    """Records a provider's answer on the row.

    Only DELIVERED changes a row today: the in-app provider answers DELIVERED
    or PENDING. Recording FAILED (and its reason) arrives with the providers
    that can fail, together with the store columns that keep it.
    """
    if receipt.status is Status.DELIVERED:
        row.status = Status.DELIVERED
        row.delivered_at_ms = receipt.at_ms
