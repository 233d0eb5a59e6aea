"""NotificationInternalService: the producers' side, on the internal port.

The internal token is checked by the Authentication interceptor before any
handler runs; handlers only translate protobuf to commands and back.
"""

from __future__ import annotations

from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.interceptors import Ctx
from notify.core.clock import Clock
from notify.core.commands import (
    build_data_change,
    build_notify_command,
    build_payload,
    build_preference_rules,
    build_required_categories,
    require_id,
)
from notify.service.notifier import Notifier
from notify.wire.convert import actions_from_pb, rules_from_pb, struct_to_data

INTERNAL_TOKEN_HEADER = "x-notify-internal-token"


class InternalService:
    def __init__(self, notifier: Notifier, clock: Clock) -> None:
        self._notifier = notifier
        self._clock = clock

    async def notify(self, request: pb.NotifyRequest, ctx: Ctx) -> pb.NotifyResponse:
        command = build_notify_command(
            tenant_id=request.tenant_id,
            notification_id=request.notification_id,
            user_ids=request.user_ids,
            channels=request.channels,
            subject_ref=request.subject_ref,
            subject_type=request.subject_type,
            title=request.title,
            body=request.body,
            addresses={user: entry.by_channel for user, entry in request.addresses.items()},
            payload=build_payload(
                severity=request.severity,
                category=request.category,
                actions=actions_from_pb(request.actions),
                data=struct_to_data(request.data, request.HasField("data")),
                tags=request.tags,
                image_url=request.image_url,
                expires_at_ms=request.expires_at_ms,
                deliver_at_ms=request.deliver_at_ms,
                collapse_key=request.collapse_key,
                now_ms=self._clock.now_ms(),
            ),
        )
        outcome = await self._notifier.notify(command)
        return pb.NotifyResponse(
            delivered=outcome.delivered,
            pending=outcome.pending,
            failed=outcome.failed,
            skipped=outcome.skipped or None,
        )

    async def publish_data_change(
        self, request: pb.PublishDataChangeRequest, ctx: Ctx
    ) -> pb.PublishDataChangeResponse:
        command = build_data_change(
            tenant_id=request.tenant_id,
            user_ids=request.user_ids,
            idempotency_key=request.idempotency_key,
            subject_ref=request.subject_ref,
            subject_type=request.subject_type,
        )
        return pb.PublishDataChangeResponse(
            sessions=await self._notifier.publish_data_change(command)
        )

    async def set_tenant_preferences(
        self, request: pb.SetTenantPreferencesRequest, ctx: Ctx
    ) -> pb.SetTenantPreferencesResponse:
        require_id("tenant_id", request.tenant_id)
        await self._notifier.set_tenant_preferences(
            request.tenant_id,
            build_preference_rules("defaults", rules_from_pb(request.defaults)),
            build_required_categories(request.required_categories),
        )
        return pb.SetTenantPreferencesResponse()
