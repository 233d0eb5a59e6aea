"""Notifications, devices and their statuses: pure values, no I/O.

Enum numbers equal the wire enums in ``proto/elloloop/notify/v1/notify.proto``
so conversion is a plain ``int``.

``Notification`` is the one definition of a stored row's columns: the stores
(``notify.store.postgres.columns``), the protobuf converter
(``notify.api.convert``) and the tests' row factories derive from its fields,
so adding a field means adding it here, in a migration and, if it is on the
wire, in the proto.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Channel(IntEnum):
    UNSPECIFIED = 0
    IN_APP = 1
    EMAIL = 2
    WEB_PUSH = 3
    MOBILE_PUSH = 4
    SMS = 5
    WHATSAPP = 6

    @property
    def address_key(self) -> str:
        """The key of this channel in ``NotifyRequest.addresses[user].by_channel``."""
        return "" if self in (Channel.UNSPECIFIED, Channel.IN_APP) else self.name.lower()


class Status(IntEnum):
    """A row's delivery status.

    Wire number 3 (DELIVERY_STATUS_ACKED) is reserved by the contract and never
    produced by this server: a row goes PENDING -> DELIVERED -> READ (or FAILED).
    """

    UNSPECIFIED = 0
    PENDING = 1
    DELIVERED = 2
    READ = 4
    FAILED = 5

    @property
    def unread(self) -> bool:
        """Everything below READ counts as unread (the contract)."""
        return self < Status.READ


class DeviceType(IntEnum):
    UNSPECIFIED = 0
    BROWSER = 1
    ANDROID = 2
    IOS = 3


@dataclass(slots=True)
class Notification:
    """One stored row: a user's copy of a notification on one channel."""

    id: str
    tenant_id: str
    user_id: str
    notification_id: str
    channel: Channel
    subject_ref: str
    subject_type: str
    title: str
    body: str
    status: Status
    created_at_ms: int
    delivered_at_ms: int = 0
    ack_at_ms: int = 0
    read_at_ms: int = 0

    @property
    def key(self) -> PageKey:
        return PageKey(self.created_at_ms, self.id)

    def copy(self) -> Notification:
        """A detached copy; several times faster than dataclasses.replace."""
        return _copy_notification(self)


def _compile_copy(cls: type[Any]) -> Callable[[Any], Any]:
    """``lambda row: cls(row.a, row.b, ...)`` for every field: no per-field loop."""
    args = ", ".join(f"row.{f.name}" for f in dataclasses.fields(cls))
    namespace: dict[str, Any] = {"cls": cls}
    exec(f"def copy(row):\n    return cls({args})", namespace)  # built from field names only
    copy: Callable[[Any], Any] = namespace["copy"]
    return copy


_copy_notification: Callable[[Notification], Notification] = _compile_copy(Notification)

# The row's columns in declaration order: what stores and converters derive from.
NOTIFICATION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Notification))


@dataclass(frozen=True, slots=True, order=True)
class PageKey:
    """The keyset position of a row: newest first is descending on this key.

    The id breaks ties between rows created in the same millisecond, so a page
    boundary never skips or repeats them.
    """

    created_at_ms: int
    id: str


@dataclass(frozen=True, slots=True)
class Device:
    """A push token registered by one of a user's devices."""

    tenant_id: str
    user_id: str
    device_type: DeviceType
    token: str
    updated_at_ms: int


@dataclass(frozen=True, slots=True)
class NotifyOutcome:
    """Counts of the rows a Notify covers, by resulting status."""

    delivered: int = 0
    pending: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class PageRequest:
    after: PageKey | None
    limit: int
    unread_only: bool


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a user's inbox, newest first; ``next_key`` is None on the last page."""

    rows: Sequence[Notification]
    next_key: PageKey | None
    unread_count: int
