"""NotificationInternalService: the producers' side, on the internal port."""

from __future__ import annotations

from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.handler import Ctx, unary
from notify.auth import InternalAuthenticator
from notify.domain import build_notify_command
from notify.notifier import ACTIVE_CHANNELS, Notifier

INTERNAL_TOKEN_HEADER = "x-notify-internal-token"


class InternalService:
    def __init__(self, notifier: Notifier, authenticator: InternalAuthenticator) -> None:
        self._notifier = notifier
        self._auth = authenticator

    @unary
    async def notify(self, request: pb.NotifyRequest, ctx: Ctx) -> pb.NotifyResponse:
        self._auth.check(ctx.request_headers().get(INTERNAL_TOKEN_HEADER))
        command = build_notify_command(
            tenant_id=request.tenant_id,
            notification_id=request.notification_id,
            user_ids=request.user_ids,
            channels=request.channels,
            subject_ref=request.subject_ref,
            subject_type=request.subject_type,
            title=request.title,
            body=request.body,
            addresses={user: dict(entry.by_channel) for user, entry in request.addresses.items()},
            default_channels=ACTIVE_CHANNELS,
        )
        outcome = await self._notifier.notify(command)
        return pb.NotifyResponse(
            delivered=outcome.delivered, pending=outcome.pending, failed=outcome.failed
        )

    @unary
    async def publish_data_change(
        self, request: pb.PublishDataChangeRequest, ctx: Ctx
    ) -> pb.PublishDataChangeResponse:
        self._auth.check(ctx.request_headers().get(INTERNAL_TOKEN_HEADER))
        reached = self._notifier.publish_data_change(
            request.tenant_id,
            request.user_ids,
            request.idempotency_key,
            request.subject_ref,
            request.subject_type,
        )
        return pb.PublishDataChangeResponse(sessions=reached)
