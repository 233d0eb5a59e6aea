"""The contract's messages and methods, as the SDK uses them.

``make gen`` puts the contract in ``_gen/``: ``notify.binpb``, the compiled
.proto (a FileDescriptorSet), and type stubs for it. The messages are built at
import from the descriptor set in a descriptor pool of the SDK's own, not in
protobuf's default pool: a process that also loads another copy of
notify.proto (the server's generated code, a newer or older contract) would
otherwise fail at import with "duplicate file name". ``pb`` looks like a
generated ``notify_pb2`` module (messages, enums, enum constants), and mypy
checks it against the stubs.

The method descriptions connect-python needs are read from the .proto's own
service descriptors rather than written out by hand: a renamed or retyped
RPC shows up here at import time, not as a 404 at run time.
"""

from __future__ import annotations

import types
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from connectrpc.method import IdempotencyLevel, MethodInfo
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import enum_type_wrapper
from google.protobuf.message import Message

PROTO_FILE = "elloloop/notify/v1/notify.proto"


def _load() -> types.ModuleType:
    """The messages and enums of notify.proto, in a pool of their own."""
    blob = resources.files("notify_client").joinpath("_gen/notify.binpb").read_bytes()
    pool = descriptor_pool.DescriptorPool()
    # buf writes dependencies (google/protobuf/struct.proto) before dependants.
    for file in descriptor_pb2.FileDescriptorSet.FromString(blob).file:
        pool.Add(file)
    desc = pool.FindFileByName(PROTO_FILE)
    module = types.ModuleType("notify_client.pb", "notify.proto's messages (private pool)")
    module.DESCRIPTOR = desc  # type: ignore[attr-defined]
    for name, message in desc.message_types_by_name.items():
        setattr(module, name, message_factory.GetMessageClass(message))
    for name, enum in desc.enum_types_by_name.items():
        setattr(module, name, enum_type_wrapper.EnumTypeWrapper(enum))
        for value in enum.values:
            setattr(module, value.name, value.number)
    return module


if TYPE_CHECKING:
    from notify_client._gen.elloloop.notify.v1 import notify_pb2 as pb
else:
    pb = _load()

__all__ = ["CLIENT_SERVICE", "INTERNAL_SERVICE", "method", "pb"]

INTERNAL_SERVICE = "NotificationInternalService"
CLIENT_SERVICE = "NotificationClientService"

REQ = TypeVar("REQ", bound=Message)
RES = TypeVar("RES", bound=Message)


def method(
    service: str, name: str, request: type[REQ], response: type[RES]
) -> MethodInfo[REQ, RES]:
    """The MethodInfo of ``service/name``, checked against the descriptor.

    ``request`` and ``response`` give the static types; they must be the
    classes the descriptor names, or this raises at import time.
    """
    desc = pb.DESCRIPTOR.services_by_name[service].methods_by_name[name]
    actual: tuple[Any, Any] = (
        message_factory.GetMessageClass(desc.input_type),
        message_factory.GetMessageClass(desc.output_type),
    )
    if actual != (request, response):
        raise TypeError(f"{service}/{name} takes {actual[0]} and returns {actual[1]}")
    return MethodInfo(
        name=name,
        service_name=pb.DESCRIPTOR.package + "." + service,
        input=request,
        output=response,
        idempotency_level=IdempotencyLevel.UNKNOWN,
    )


NOTIFY = method(INTERNAL_SERVICE, "Notify", pb.NotifyRequest, pb.NotifyResponse)
PUBLISH_DATA_CHANGE = method(
    INTERNAL_SERVICE,
    "PublishDataChange",
    pb.PublishDataChangeRequest,
    pb.PublishDataChangeResponse,
)
STREAM_EVENTS = method(CLIENT_SERVICE, "StreamEvents", pb.StreamEventsRequest, pb.StreamEvent)
GET_NOTIFICATIONS = method(
    CLIENT_SERVICE, "GetNotifications", pb.GetNotificationsRequest, pb.GetNotificationsResponse
)
ACK_NOTIFICATION = method(
    CLIENT_SERVICE, "AckNotification", pb.AckNotificationRequest, pb.AckNotificationResponse
)
MARK_NOTIFICATIONS = method(
    CLIENT_SERVICE, "MarkNotifications", pb.MarkNotificationsRequest, pb.MarkNotificationsResponse
)
DELETE_NOTIFICATIONS = method(
    CLIENT_SERVICE,
    "DeleteNotifications",
    pb.DeleteNotificationsRequest,
    pb.DeleteNotificationsResponse,
)
GET_NOTIFICATION = method(
    CLIENT_SERVICE, "GetNotification", pb.GetNotificationRequest, pb.GetNotificationResponse
)
GET_COUNTS = method(CLIENT_SERVICE, "GetCounts", pb.GetCountsRequest, pb.GetCountsResponse)
GET_PREFERENCES = method(
    CLIENT_SERVICE, "GetPreferences", pb.GetPreferencesRequest, pb.GetPreferencesResponse
)
UPDATE_PREFERENCES = method(
    CLIENT_SERVICE, "UpdatePreferences", pb.UpdatePreferencesRequest, pb.UpdatePreferencesResponse
)
SET_TENANT_PREFERENCES = method(
    INTERNAL_SERVICE,
    "SetTenantPreferences",
    pb.SetTenantPreferencesRequest,
    pb.SetTenantPreferencesResponse,
)
