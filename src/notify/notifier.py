"""The orchestrator: every use case, over a Store and the live Hub.

Transports call in; the Notifier calls the store and the hub; nothing here
knows about HTTP, protobuf or Connect.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from notify.auth import Principal
from notify.domain import (
    MAX_ID_LENGTH,
    MAX_REPLAY,
    MAX_SUBJECT_LENGTH,
    Channel,
    DeviceType,
    Notification,
    NotifyCommand,
    NotifyOutcome,
    Page,
    PageKey,
    PageRequest,
    Status,
    build_device,
    encode_cursor,
    require_text,
    require_user_ids,
)
from notify.errors import NotFound, OutOfRange
from notify.ids import new_id, now_ms
from notify.metrics import Metrics
from notify.realtime.datachange import DataChangeRounds
from notify.realtime.hub import Hub, NotificationPush, Session
from notify.store import Store, StoredRow

# Channels that have an active provider. In-app is served by the hub; the
# external channels (email, push, SMS, WhatsApp) have no provider yet, so
# their rows are stored PENDING for a provider to pick up.
ACTIVE_CHANNELS: tuple[Channel, ...] = (Channel.IN_APP,)


class Notifier:
    def __init__(self, store: Store, hub: Hub, rounds: DataChangeRounds, metrics: Metrics) -> None:
        self.store = store
        self.hub = hub
        self.rounds = rounds
        self._metrics = metrics

    async def notify(self, command: NotifyCommand) -> NotifyOutcome:
        """Stores one row per (user, channel), then pushes new in-app rows live.

        A retry finds the rows already stored: it creates and pushes nothing and
        reports the stored statuses again.
        """
        created_at = now_ms()
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
            for channel in command.channels
        ]
        stored = await self.store.create_notifications(rows)
        delivered = self._push(stored)
        if delivered:
            await self.store.mark_delivered(delivered, delivered[0].delivered_at_ms)
        counts = {Status.DELIVERED: 0, Status.PENDING: 0, Status.FAILED: 0}
        for item in stored:
            status = item.row.status
            if item.created:
                self._metrics.notifications_stored.labels(
                    channel=item.row.channel.name.lower(), status=status.name.lower()
                ).inc()
            if status in counts:
                counts[status] += 1
            elif status is not Status.UNSPECIFIED:
                # ACKED or READ on a retry: the user already has it.
                counts[Status.DELIVERED] += 1
        return NotifyOutcome(
            delivered=counts[Status.DELIVERED],
            pending=counts[Status.PENDING],
            failed=counts[Status.FAILED],
        )

    def _push(self, stored: Sequence[StoredRow]) -> list[Notification]:
        """Offers each new in-app row to its user's live sessions.

        Returns the rows at least one session took, already marked DELIVERED in
        memory (the pushed copy carries that status); the store is told next.
        """
        delivered: list[Notification] = []
        stamp = now_ms()
        stored_at_ns = time.perf_counter_ns()
        for item in stored:
            row = item.row
            if not item.created or row.channel is not Channel.IN_APP:
                continue
            if not self.hub.has_sessions(row.tenant_id, row.user_id):
                continue
            row.status = Status.DELIVERED
            row.delivered_at_ms = stamp
            if self.hub.publish(row.tenant_id, row.user_id, NotificationPush(row, stored_at_ns)):
                delivered.append(row)
            else:
                row.status = Status.PENDING
                row.delivered_at_ms = 0
        return delivered

    async def list_notifications(self, principal: Principal, page: PageRequest) -> Page:
        result = await self.store.list_notifications(principal.tenant_id, principal.user_id, page)
        return Page(
            notifications=result.rows,
            next_cursor=encode_cursor(result.next_key) if result.next_key else "",
            unread_count=result.unread_count,
        )

    async def mark_read(self, principal: Principal, row_id: str) -> Notification:
        require_text("id", row_id, MAX_ID_LENGTH, required=True)
        row = await self.store.mark_read(principal.tenant_id, principal.user_id, row_id, now_ms())
        if row is None:
            raise NotFound("no notification with that id")
        return row

    async def register_push_token(self, principal: Principal, device_type: int, token: str) -> None:
        device = build_device(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            device_type=device_type,
            token=token,
            now_ms=now_ms(),
        )
        await self.store.upsert_device(device)

    def open_session(self, principal: Principal, device_type: DeviceType) -> Session:
        """Registers a live session; from now on it receives every push."""
        return self.hub.open(principal.tenant_id, principal.user_id, device_type)

    async def missed_since(self, principal: Principal, after: PageKey) -> list[Notification]:
        """The in-app rows created after ``after``, oldest first, for a resuming stream.

        Call it only after ``open_session``, so that nothing created meanwhile
        can fall between the replay and the live pushes. Replayed rows that were
        still PENDING are now delivered, and are stored as such.
        """
        rows = await self.store.list_after(
            principal.tenant_id, principal.user_id, after, Channel.IN_APP, MAX_REPLAY + 1
        )
        if len(rows) > MAX_REPLAY:
            raise OutOfRange(
                f"more than {MAX_REPLAY} notifications were missed; "
                "page them with GetNotifications and reconnect without a resume_token"
            )
        pending = [row for row in rows if row.status is Status.PENDING]
        if pending:
            stamp = now_ms()
            for row in pending:
                row.status = Status.DELIVERED
                row.delivered_at_ms = stamp
            await self.store.mark_delivered(pending, stamp)
        return rows

    def publish_data_change(
        self,
        tenant_id: str,
        user_ids: Sequence[str],
        idempotency_key: str,
        subject_ref: str,
        subject_type: str,
    ) -> int:
        """Hints every live session of the users to refetch; see DataChangeRounds."""
        require_text("tenant_id", tenant_id, MAX_ID_LENGTH, required=True)
        require_text("idempotency_key", idempotency_key, MAX_ID_LENGTH, required=True)
        require_user_ids(user_ids)
        require_text("subject_ref", subject_ref, MAX_SUBJECT_LENGTH)
        require_text("subject_type", subject_type, MAX_SUBJECT_LENGTH)
        return self.rounds.publish(tenant_id, user_ids, idempotency_key, subject_ref, subject_type)

    def ack_data_change(self, principal: Principal, idempotency_key: str, session_id: str) -> None:
        """Stops redelivery of a data-change hint to one of the caller's sessions.

        An ack naming a session the caller does not own changes nothing, and
        answers exactly like any other ack (no existence leak).
        """
        require_text("idempotency_key", idempotency_key, MAX_ID_LENGTH, required=True)
        require_text("session_id", session_id, MAX_ID_LENGTH, required=True)
        session = self.hub.find(principal.tenant_id, principal.user_id, session_id)
        if session is not None:
            self.rounds.ack(session, idempotency_key)
