"""NotificationClientService: browsers and apps, on the client port.

Tenant and user always come from the caller's credentials, never the body:
the Authentication interceptor has checked them before any handler runs, and
``caller()`` hands them over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.context import current_request
from notify.api.directframes import ConnectFrameSink, stream_codec
from notify.api.interceptors import Ctx, caller
from notify.core.clock import Clock
from notify.core.commands import (
    build_data_change_ack,
    build_delete,
    build_filter,
    build_mark,
    build_page_request,
    build_preference_rules,
)
from notify.core.cursors import encode_cursor
from notify.core.model import Filter
from notify.metrics import Metrics
from notify.realtime.hub import CountsPush, DataChangePush, Heartbeat
from notify.service.live import CaughtUp, LiveNotification, LiveStreams, LiveUpdate, StreamItem
from notify.service.notifier import Notifier
from notify.wire.convert import counts_to_pb, notification_to_pb, preferences_to_pb, rules_from_pb
from notify.wire.pages import PageWriter
from notify.wire.streamevents import StreamEventWriter


def stream_event(session_id: str, item: StreamItem) -> pb.StreamEvent:
    """One item of a live stream as the contract's StreamEvent (every transport's payload)."""
    if isinstance(item, LiveNotification):
        return pb.StreamEvent(
            session_id=session_id,
            notification=pb.NotificationEvent(
                notification=notification_to_pb(item.notification),
                resume_token=item.resume_token,
            ),
        )
    if isinstance(item, Heartbeat):
        return pb.StreamEvent(
            session_id=session_id, heartbeat=pb.HeartbeatEvent(timestamp_ms=item.timestamp_ms)
        )
    if isinstance(item, CountsPush):
        return pb.StreamEvent(
            session_id=session_id, counts=pb.CountsEvent(counts=counts_to_pb(item.counts))
        )
    if isinstance(item, LiveUpdate):
        return pb.StreamEvent(
            session_id=session_id,
            update=pb.NotificationUpdateEvent(
                notifications=[notification_to_pb(row) for row in item.rows],
                deleted_ids=item.deleted_ids,
                resume_token=item.resume_token,
            ),
        )
    assert isinstance(item, DataChangePush), item
    return pb.StreamEvent(
        session_id=session_id,
        data_change=pb.DataChangeEvent(
            idempotency_key=item.idempotency_key,
            subject_ref=item.subject_ref,
            subject_type=item.subject_type,
        ),
    )


class ClientService:
    def __init__(
        self, notifier: Notifier, metrics: Metrics, clock: Clock, *, live_enabled: bool
    ) -> None:
        self._notifier = notifier
        self._clock = clock
        self._live = LiveStreams(notifier, metrics, clock, enabled=live_enabled)
        self._pages = PageWriter()
        # Frames spliced from row bytes shared with the pages: one encoding per fan-out.
        self._frames = StreamEventWriter(self._pages.json_rows, self._pages.proto_rows)

    @property
    def frames(self) -> StreamEventWriter:
        """The streams' frame writer, shared with the SSE transport (one set of kept bytes)."""
        return self._frames

    async def stream_events(
        self, request: pb.StreamEventsRequest, ctx: Ctx
    ) -> AsyncIterator[pb.StreamEvent]:
        stream = self._live.open(caller(), request.device_type, request.resume_token)
        info = current_request.get()
        session_id = stream.session_id
        if info is not None:
            info.on_disconnect(stream.close)
            if info.body_writer is not None:
                headers = ctx.request_headers()
                codec = stream_codec(
                    headers.get("content-type", ""), headers.get("connect-accept-encoding", "")
                )
                if codec is not None:
                    stream.attach(
                        ConnectFrameSink(info.body_writer, self._frames, session_id, codec)
                    )
        frames = self._frames
        try:
            async with aclosing(stream.items()) as items:
                async for item in items:
                    if isinstance(item, LiveNotification):
                        yield frames.notification(session_id, item.notification, item.resume_token)
                    elif isinstance(item, CountsPush):
                        yield frames.counts(session_id, item.counts)
                    elif not isinstance(item, CaughtUp):
                        yield stream_event(session_id, item)
        finally:
            stream.close()

    async def get_notifications(
        self, request: pb.GetNotificationsRequest, ctx: Ctx
    ) -> pb.GetNotificationsResponse:
        page = build_page_request(
            request.cursor, request.limit, request.unread_only, _filter(request.filter)
        )
        result = await self._notifier.list_notifications(caller(), page)
        # Written by the call's codec from the rows' kept bytes (no Struct per row).
        return self._pages.answer(result.rows, encode_cursor(result.next_key), result.counts)

    async def get_notification(
        self, request: pb.GetNotificationRequest, ctx: Ctx
    ) -> pb.GetNotificationResponse:
        row = await self._notifier.get_notification(caller(), request.id)
        return pb.GetNotificationResponse(notification=notification_to_pb(row))

    async def get_counts(self, request: pb.GetCountsRequest, ctx: Ctx) -> pb.GetCountsResponse:
        counts = await self._notifier.counts(caller(), _filter(request.filter))
        return pb.GetCountsResponse(counts=counts_to_pb(counts))

    async def mark_notifications(
        self, request: pb.MarkNotificationsRequest, ctx: Ctx
    ) -> pb.MarkNotificationsResponse:
        command = build_mark(
            ids=request.ids,
            all=request.all,
            filter=_filter(request.filter) if request.HasField("filter") else None,
            mark=request.mark,
            snooze_until_ms=request.snooze_until_ms,
            action_id=request.action_id,
            now_ms=self._clock.now_ms(),
        )
        changed = await self._notifier.mark(caller(), command)
        return pb.MarkNotificationsResponse(
            updated=len(changed.rows), counts=counts_to_pb(changed.counts)
        )

    async def delete_notifications(
        self, request: pb.DeleteNotificationsRequest, ctx: Ctx
    ) -> pb.DeleteNotificationsResponse:
        command = build_delete(
            ids=request.ids,
            all=request.all,
            filter=_filter(request.filter) if request.HasField("filter") else None,
        )
        deleted = await self._notifier.delete(caller(), command)
        return pb.DeleteNotificationsResponse(
            deleted=len(deleted.ids), counts=counts_to_pb(deleted.counts)
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

    async def get_preferences(
        self, request: pb.GetPreferencesRequest, ctx: Ctx
    ) -> pb.GetPreferencesResponse:
        found = await self._notifier.get_preferences(caller())
        return pb.GetPreferencesResponse(preferences=preferences_to_pb(found))

    async def update_preferences(
        self, request: pb.UpdatePreferencesRequest, ctx: Ctx
    ) -> pb.UpdatePreferencesResponse:
        rules = build_preference_rules("rules", rules_from_pb(request.rules))
        found = await self._notifier.update_preferences(caller(), rules, replace=request.replace)
        return pb.UpdatePreferencesResponse(preferences=preferences_to_pb(found))


def _filter(wire: pb.NotificationFilter) -> Filter:
    return build_filter(
        categories=wire.categories,
        tags=wire.tags,
        severities=wire.severities,
        archived=wire.archived,
        read=wire.read,
        channels=wire.channels,
        snoozed=wire.snoozed,
    )
