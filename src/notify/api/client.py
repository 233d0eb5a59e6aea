"""NotificationClientService: browsers and apps, on the client port.

Tenant and user always come from the caller's credentials, never the body:
the Authentication interceptor has checked them before any handler runs, and
``caller()`` hands them over.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.context import current_request
from notify.api.interceptors import Ctx, caller
from notify.core.clock import Clock
from notify.core.commands import (
    build_data_change_ack,
    build_delete,
    build_filter,
    build_mark,
    build_page_request,
    build_preference_rules,
    build_resume_position,
    stream_device_type,
)
from notify.core.cursors import encode_cursor, encode_resume_token
from notify.core.errors import ResourceExhausted, Unimplemented
from notify.core.model import INBOX, Counts, Filter, Notification, PageKey
from notify.metrics import Metrics
from notify.realtime.hub import (
    CloseReason,
    CountsPush,
    DataChangePush,
    Event,
    Heartbeat,
    NotificationPush,
    SessionClosed,
    UpdatePush,
)
from notify.service.notifier import Notifier
from notify.wire.convert import counts_to_pb, notification_to_pb, preferences_to_pb, rules_from_pb
from notify.wire.pages import PageWriter
from notify.wire.streamevents import StreamEventWriter

_CLOSE_CODES = {
    CloseReason.SHUTDOWN: (Code.UNAVAILABLE, "server is shutting down; reconnect"),
    CloseReason.SLOW_CONSUMER: (
        Code.RESOURCE_EXHAUSTED,
        "stream fell too far behind; reconnect and page what was missed",
    ),
}


# The smallest UUIDv7: a position before every row of a millisecond.
FIRST_ID = "00000000-0000-7000-8000-000000000000"


def _notification_event(session_id: str, row: Notification, change: int = 0) -> pb.StreamEvent:
    return pb.StreamEvent(
        session_id=session_id,
        notification=pb.NotificationEvent(
            notification=notification_to_pb(row),
            resume_token=encode_resume_token(row.key, change),
        ),
    )


def _update_event(
    session_id: str,
    rows: Sequence[Notification],
    deleted_ids: Sequence[str],
    resume_token: str,
) -> pb.StreamEvent:
    return pb.StreamEvent(
        session_id=session_id,
        update=pb.NotificationUpdateEvent(
            notifications=[notification_to_pb(row) for row in rows],
            deleted_ids=deleted_ids,
            resume_token=resume_token,
        ),
    )


def _counts_event(session_id: str, counts: Counts) -> pb.StreamEvent:
    return pb.StreamEvent(session_id=session_id, counts=pb.CountsEvent(counts=counts_to_pb(counts)))


def _event(session_id: str, event: Event) -> pb.StreamEvent:
    if isinstance(event, NotificationPush):
        return _notification_event(session_id, event.notification)
    if isinstance(event, Heartbeat):
        return pb.StreamEvent(
            session_id=session_id, heartbeat=pb.HeartbeatEvent(timestamp_ms=event.timestamp_ms)
        )
    if isinstance(event, CountsPush):
        return _counts_event(session_id, event.counts)
    assert isinstance(event, DataChangePush)
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
        self, notifier: Notifier, metrics: Metrics, clock: Clock, *, live_enabled: bool
    ) -> None:
        self._notifier = notifier
        self._metrics = metrics
        self._clock = clock
        self._live_enabled = live_enabled
        self._pages = PageWriter()
        # Frames spliced from row bytes shared with the pages: one encoding per fan-out.
        self._frames = StreamEventWriter(self._pages.json_rows, self._pages.proto_rows)

    async def stream_events(
        self, request: pb.StreamEventsRequest, ctx: Ctx
    ) -> AsyncIterator[pb.StreamEvent]:
        principal = caller()
        if not self._live_enabled:
            raise Unimplemented("live streaming is switched off on this server")
        device_type = stream_device_type(request.device_type)
        position = build_resume_position(request.resume_token)
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
        sent_update = events.labels(kind="update")
        sent_counts = events.labels(kind="counts")
        latency = self._metrics.delivery_latency
        session_id = session.id
        frames = self._frames
        try:
            # The handshake, then the badge: a client is right from its first frames.
            handshake = await session.next()
            yield _event(session_id, handshake)
            sent_heartbeat.inc()
            yield frames.counts(session_id, await self._notifier.counts(principal, INBOX))
            sent_counts.inc()
            # Where this stream is, for the resume tokens it hands out: the last
            # row it had, and the last change of the inbox it had.
            if position is not None:
                last_key = position.key
                last_change = position.change or 0
            else:
                last_key = PageKey(self._clock.now_ms(), FIRST_ID)
                last_change = await self._notifier.last_change(principal)
            # Registered first, replayed second: whatever happens meanwhile is
            # queued live, and what the replay covered is skipped when it comes out.
            replayed: set[str] = set()
            replayed_change = 0
            if position is not None:
                for row in await self._notifier.missed_since(principal, position.key):
                    replayed.add(row.id)
                    last_key = row.key
                    sent_notification.inc()
                    yield frames.notification(session_id, row, last_change)
                if position.change is not None:
                    missed = await self._notifier.missed_changes(
                        principal, position.change, replayed
                    )
                    replayed_change = last_change = missed.change
                    if missed.rows or missed.deleted_ids:
                        sent_update.inc()
                        yield _update_event(
                            session_id,
                            missed.rows,
                            missed.deleted_ids,
                            encode_resume_token(last_key, last_change),
                        )
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
                    last_key = max(last_key, row.key)
                    yield frames.notification(session_id, row, last_change)
                    continue
                if isinstance(event, UpdatePush):
                    if event.change and event.change <= replayed_change:
                        continue  # the replay already carried it
                    last_change = max(last_change, event.change)
                    sent_update.inc()
                    yield _update_event(
                        session_id,
                        event.rows,
                        event.deleted_ids,
                        encode_resume_token(last_key, last_change),
                    )
                    continue
                if isinstance(event, CountsPush):
                    sent_counts.inc()
                    yield frames.counts(session_id, event.counts)
                    continue
                if isinstance(event, Heartbeat):
                    sent_heartbeat.inc()
                else:
                    sent_data_change.inc()
                yield _event(session_id, event)
        finally:
            session.close(CloseReason.CLIENT_GONE)

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
