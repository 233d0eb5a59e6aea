"""Domain values <-> protobuf messages. Enum numbers are shared, so no tables."""

from __future__ import annotations

from elloloop.notify.v1 import notify_pb2 as pb

from notify.domain import Notification


def notification_to_pb(row: Notification) -> pb.Notification:
    return pb.Notification(
        id=row.id,
        notification_id=row.notification_id,
        subject_ref=row.subject_ref,
        subject_type=row.subject_type,
        title=row.title,
        body=row.body,
        channel=int(row.channel),  # type: ignore[arg-type]
        status=int(row.status),  # type: ignore[arg-type]
        created_at_ms=row.created_at_ms,
        delivered_at_ms=row.delivered_at_ms,
        ack_at_ms=row.ack_at_ms,
        read_at_ms=row.read_at_ms,
    )
