"""NotificationClientService: browsers and apps, on the client port.

Tenant and user always come from the caller's credentials, never the body.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.context import current_request
from notify.api.convert import notification_to_pb
from notify.api.handler import Ctx, server_stream, unary
from notify.auth import ClientAuthenticator, Principal
from notify.domain import (
    Notification,
    build_page_request,
    decode_resume_token,
    encode_resume_token,
    stream_device_type,
)
from notify.errors import ResourceExhausted, Unimplemented
from notify.metrics import Metrics
from notify.notifier import Notifier
from notify.realtime.hub import CloseReason, Event, Heartbeat, NotificationPush, SessionClosed

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
    def __init__(
        self,
        notifier: Notifier,
        authenticator: ClientAuthenticator,
        metrics: Metrics,
        *,
        live_enabled: bool,
    ) -> None:
        self._notifier = notifier
        self._auth = authenticator
        self._metrics = metrics
        self._live_enabled = live_enabled

    def _principal(self, ctx: Ctx) -> Principal:
        principal = self._auth.authenticate(ctx.request_headers().get("authorization"))
        info = current_request.get()
        if info is not None:
            info.tenant_id = principal.tenant_id
            info.user_id = principal.user_id
        return principal

    @server_stream
    async def stream_events(
        self, request: pb.StreamEventsRequest, ctx: Ctx
    ) -> AsyncIterator[pb.StreamEvent]:
        principal = self._principal(ctx)
        if not self._live_enabled:
            raise Unimplemented("live streaming is switched off on this server")
        device_type = stream_device_type(request.device_type)
        resume_after = decode_resume_token(request.resume_token)
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

    @unary
    async def get_notifications(
        self, request: pb.GetNotificationsRequest, ctx: Ctx
    ) -> pb.GetNotificationsResponse:
        principal = self._principal(ctx)
        page = build_page_request(request.cursor, request.limit, request.unread_only)
        result = await self._notifier.list_notifications(principal, page)
        return pb.GetNotificationsResponse(
            notifications=[notification_to_pb(row) for row in result.notifications],
            next_cursor=result.next_cursor,
            unread_count=result.unread_count,
        )

    @unary
    async def ack_notification(
        self, request: pb.AckNotificationRequest, ctx: Ctx
    ) -> pb.AckNotificationResponse:
        principal = self._principal(ctx)
        await self._notifier.mark_read(principal, request.id)
        return pb.AckNotificationResponse()

    @unary
    async def ack_data_change(
        self, request: pb.AckDataChangeRequest, ctx: Ctx
    ) -> pb.AckDataChangeResponse:
        principal = self._principal(ctx)
        self._notifier.ack_data_change(principal, request.idempotency_key, request.session_id)
        return pb.AckDataChangeResponse()

    @unary
    async def register_push_token(
        self, request: pb.RegisterPushTokenRequest, ctx: Ctx
    ) -> pb.RegisterPushTokenResponse:
        principal = self._principal(ctx)
        await self._notifier.register_push_token(principal, request.device_type, request.token)
        return pb.RegisterPushTokenResponse()
