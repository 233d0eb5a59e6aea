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
from notify.domain import build_page_request, stream_device_type
from notify.errors import Unimplemented
from notify.metrics import Metrics
from notify.notifier import Notifier
from notify.realtime.hub import CloseReason, Heartbeat, NotificationPush, SessionClosed

_CLOSE_CODES = {
    CloseReason.SHUTDOWN: (Code.UNAVAILABLE, "server is shutting down; reconnect"),
    CloseReason.SLOW_CONSUMER: (
        Code.RESOURCE_EXHAUSTED,
        "stream fell too far behind; reconnect and page what was missed",
    ),
}


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
        session = self._notifier.open_session(principal, device_type)
        info = current_request.get()
        if info is not None:
            info.on_disconnect(lambda: session.close(CloseReason.CLIENT_GONE))
        sent = self._metrics.stream_events_sent
        sent_heartbeat = sent.labels(kind="heartbeat")
        sent_notification = sent.labels(kind="notification")
        latency = self._metrics.delivery_latency
        try:
            while True:
                try:
                    event = await session.next()
                except SessionClosed as closed:
                    code = _CLOSE_CODES.get(closed.reason)
                    if code is None:
                        return
                    raise ConnectError(*code) from None
                if isinstance(event, Heartbeat):
                    sent_heartbeat.inc()
                    yield pb.StreamEvent(
                        session_id=session.id,
                        heartbeat=pb.HeartbeatEvent(timestamp_ms=event.timestamp_ms),
                    )
                elif isinstance(event, NotificationPush):
                    message = pb.StreamEvent(
                        session_id=session.id,
                        notification=pb.NotificationEvent(
                            notification=notification_to_pb(event.notification)
                        ),
                    )
                    latency.observe((time.perf_counter_ns() - event.stored_at_ns) / 1e9)
                    sent_notification.inc()
                    yield message
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
