"""NotificationClientService: browsers and apps, on the client port.

Tenant and user always come from the caller's credentials, never the body:
the Authentication interceptor has checked them before any handler runs, and
``caller()`` hands them over.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.context import current_request
from notify.api.convert import notification_to_pb
from notify.api.interceptors import Ctx, caller
from notify.core.commands import (
    build_data_change_ack,
    build_page_request,
    build_resume_position,
    stream_device_type,
)
from notify.core.cursors import encode_cursor, encode_resume_token
from notify.core.errors import ResourceExhausted, Unimplemented
from notify.core.model import Notification
from notify.metrics import Metrics
from notify.realtime.hub import CloseReason, Event, Heartbeat, NotificationPush, SessionClosed
from notify.service.notifier import Notifier

_CLOSE_CODES = {
    CloseReason.SHUTDOWN: (Code.UNAVAILABLE, "server is shutting down; reconnect"),
    CloseReason.SLOW_CONSUMER: (
        Code.RESOURCE_EXHAUSTED,
        "stream fell too far behind; reconnect and page what was missed",
    ),
}


def _notification_event(session_id: str, row: Notification) -> pb.StreamEvent:
    return pb.StreamEvent(
        session_id=session_id,
        notification=pb.NotificationEvent(
            notification=notification_to_pb(row), resume_token=encode_resume_token(row.key)
        ),
    )


def _event(session_id: str, event: Event) -> pb.StreamEvent:
    if isinstance(event, NotificationPush):
        return _notification_event(session_id, event.notification)
    if isinstance(event, Heartbeat):
        return pb.StreamEvent(
            session_id=session_id, heartbeat=pb.HeartbeatEvent(timestamp_ms=event.timestamp_ms)
        )
    return pb.StreamEvent(
        session_id=session_id,
        data_change=pb.DataChangeEvent(
            idempotency_key=event.idempotency_key,
            subject_ref=event.subject_ref,
            subject_type=event.subject_type,
        ),
    )


class ClientService:
    def __init__(self, notifier: Notifier, metrics: Metrics, *, live_enabled: bool) -> None:
        self._notifier = notifier
        self._metrics = metrics
        self._live_enabled = live_enabled

    async def stream_events(
        self, request: pb.StreamEventsRequest, ctx: Ctx
    ) -> AsyncIterator[pb.StreamEvent]:
        principal = caller()
        if not self._live_enabled:
            raise Unimplemented("live streaming is switched off on this server")
        device_type = stream_device_type(request.device_type)
        resume_after = build_resume_position(request.resume_token)
        try:
            session = self._notifier.open_session(principal, device_type)
        except ResourceExhausted:
            self._metrics.streams_ended.labels(reason="limit").inc()
            raise
        info = current_request.get()
        if info is not None:
            info.on_disconnect(lambda: session.close(CloseReason.CLIENT_GONE))
        events = self._metrics.stream_events_sent
        sent_heartbeat = events.labels(kind="heartbeat")
        sent_notification = events.labels(kind="notification")
        sent_data_change = events.labels(kind="data_change")
        latency = self._metrics.delivery_latency
        session_id = session.id
        try:
            # Registered first, replayed second: whatever is created meanwhile is
            # queued live, and the replayed ids are skipped when it comes out.
            replayed: set[str] = set()
            if resume_after is not None:
                handshake = await session.next()
                yield _event(session_id, handshake)
                sent_heartbeat.inc()
                for row in await self._notifier.missed_since(principal, resume_after):
                    replayed.add(row.id)
                    sent_notification.inc()
                    yield _notification_event(session_id, row)
            while True:
                try:
                    event = await session.next()
                except SessionClosed as closed:
                    code = _CLOSE_CODES.get(closed.reason)
                    if code is None:
                        return
                    raise ConnectError(*code) from None
                if isinstance(event, NotificationPush):
                    row = event.notification
                    if row.id in replayed:
                        replayed.discard(row.id)  # pushed live while it was replayed
                        continue
                    latency.observe((time.perf_counter_ns() - event.stored_at_ns) / 1e9)
                    sent_notification.inc()
                elif isinstance(event, Heartbeat):
                    sent_heartbeat.inc()
                else:
                    sent_data_change.inc()
                yield _event(session_id, event)
        finally:
            session.close(CloseReason.CLIENT_GONE)

    async def get_notifications(
        self, request: pb.GetNotificationsRequest, ctx: Ctx
    ) -> pb.GetNotificationsResponse:
        page = build_page_request(request.cursor, request.limit, request.unread_only)
        result = await self._notifier.list_notifications(caller(), page)
        return pb.GetNotificationsResponse(
            notifications=[notification_to_pb(row) for row in result.rows],
            next_cursor=encode_cursor(result.next_key),
            unread_count=result.unread_count,
        )

    async def ack_notification(
        self, request: pb.AckNotificationRequest, ctx: Ctx
    ) -> pb.AckNotificationResponse:
        await self._notifier.mark_read(caller(), request.id)
        return pb.AckNotificationResponse()

    async def ack_data_change(
        self, request: pb.AckDataChangeRequest, ctx: Ctx
    ) -> pb.AckDataChangeResponse:
        ack = build_data_change_ack(
            idempotency_key=request.idempotency_key, session_id=request.session_id
        )
        self._notifier.ack_data_change(caller(), ack)
        return pb.AckDataChangeResponse()

    async def register_push_token(
        self, request: pb.RegisterPushTokenRequest, ctx: Ctx
    ) -> pb.RegisterPushTokenResponse:
        await self._notifier.register_push_token(caller(), request.device_type, request.token)
        return pb.RegisterPushTokenResponse()
