"""Domain values <-> protobuf messages. Enum numbers are shared, so no tables.

``notification_to_pb`` is generated from the fields ``Notification`` and the
wire message share (by name), so a field added to both needs no edit here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from elloloop.notify.v1 import notify_pb2 as pb

from notify.core.model import NOTIFICATION_FIELDS, Notification


def _compile() -> Callable[[Notification], pb.Notification]:
    wire = pb.Notification.DESCRIPTOR.fields_by_name
    shared = [name for name in NOTIFICATION_FIELDS if name in wire]
    args = ", ".join(f"{name}=row.{name}" for name in shared)
    namespace: dict[str, Any] = {"Message": pb.Notification}
    exec(f"def to_pb(row):\n    return Message({args})", namespace)  # field names only
    to_pb: Callable[[Notification], pb.Notification] = namespace["to_pb"]
    return to_pb


notification_to_pb = _compile()
