"""Notifications, devices and their statuses: pure values, no I/O.

Enum numbers equal the wire enums in ``proto/elloloop/notify/v1/notify.proto``
so conversion is a plain ``int``.

``Notification`` is the one definition of a stored row's columns: the stores
(``notify.store.postgres.columns``), the protobuf converter
(``notify.wire.convert``) and the tests' row factories derive from its fields,
so adding a field means adding it here, in a migration and, if it is on the
wire, in the proto.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from notify.core.codegen import define


class Channel(IntEnum):
    UNSPECIFIED = 0
    IN_APP = 1
    EMAIL = 2
    WEB_PUSH = 3
    MOBILE_PUSH = 4
    SMS = 5
    WHATSAPP = 6
    WEBHOOK = 7

    @property
    def address_key(self) -> str:
        """The key of this channel in ``NotifyRequest.addresses[user].by_channel``."""
        return "" if self in (Channel.UNSPECIFIED, Channel.IN_APP) else self.name.lower()

    @property
    def to_devices(self) -> bool:
        """Push channels reach the user's registered devices, not an address the Notify names."""
        return self in (Channel.WEB_PUSH, Channel.MOBILE_PUSH)


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


class Severity(IntEnum):
    UNSPECIFIED = 0
    INFO = 1
    SUCCESS = 2
    WARNING = 3
    ERROR = 4


class ArchiveScope(IntEnum):
    UNARCHIVED = 0  # the wire's UNSPECIFIED: the inbox
    ARCHIVED = 1
    ALL = 2


class ReadScope(IntEnum):
    ANY = 0
    UNREAD = 1
    READ = 2


class Mark(IntEnum):
    UNSPECIFIED = 0
    READ = 1
    UNREAD = 2
    SEEN = 3
    ARCHIVED = 4
    UNARCHIVED = 5
    SNOOZED = 6
    UNSNOOZED = 7
    ACTIONED = 8


class DeviceType(IntEnum):
    UNSPECIFIED = 0
    BROWSER = 1
    ANDROID = 2
    IOS = 3


@dataclass(frozen=True, slots=True)
class Action:
    """A button the inbox shows on a notification."""

    id: str
    label: str
    url: str
    primary: bool = False


@dataclass(slots=True)
class Notification:
    """One stored row: a user's copy of a notification on one channel.

    ``visible`` is False while the row waits for its ``deliver_at_ms`` or sleeps
    until ``snoozed_until_ms``: it is then neither listed, counted, pushed nor
    replayed. ``data`` is the payload's JSON object as text (byte-exact), ""
    for none.
    """

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
    severity: Severity = Severity.UNSPECIFIED
    category: str = ""
    actions: tuple[Action, ...] = ()
    data: str = ""
    tags: tuple[str, ...] = ()
    image_url: str = ""
    expires_at_ms: int = 0
    deliver_at_ms: int = 0
    seen_at_ms: int = 0
    archived_at_ms: int = 0
    snoozed_until_ms: int = 0
    collapse_key: str = ""
    collapsed_count: int = 0
    actioned_at_ms: int = 0
    action_id: str = ""
    visible: bool = True
    # External channels (email, webhook): sends tried, why the row FAILED (or the
    # last transient error while retried), the provider's id for the message,
    # and the address the outbox sends to (never on the wire: the producer's).
    attempts: int = 0
    failure_reason: str = ""
    provider_message_id: str = ""
    address: str = ""

    @property
    def key(self) -> PageKey:
        return PageKey(self.created_at_ms, self.id)

    @property
    def read(self) -> bool:
        return self.status is Status.READ

    def in_inbox(self, now_ms: int) -> bool:
        """Counted and listed by default: in-app, visible, not archived, not expired."""
        return (
            self.channel is Channel.IN_APP
            and self.visible
            and not self.archived_at_ms
            and not (self.expires_at_ms and self.expires_at_ms <= now_ms)
        )

    def due_at_ms(self) -> int:
        """When time next changes this row (it comes due, wakes or expires); 0: never."""
        if not self.visible:
            return max(self.deliver_at_ms, self.snoozed_until_ms)
        return self.expires_at_ms

    def copy(self) -> Notification:
        """A detached copy; several times faster than dataclasses.replace."""
        return _copy_notification(self)


def _compile_copy(cls: type[Any]) -> Callable[[Any], Any]:
    """``lambda row: cls(row.a, row.b, ...)`` for every field: no per-field loop."""
    args = ", ".join(f"row.{f.name}" for f in dataclasses.fields(cls))
    namespace: dict[str, Any] = {"cls": cls}
    define(f"def copy(row):\n    return cls({args})", namespace)  # built from field names only
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
    # Rows not created: the user's preferences turned the channel off.
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class Counts:
    """Over the inbox as the user sees it (``Notification.in_inbox``)."""

    unread: int = 0
    unseen: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True)
class Filter:
    """Which of a user's rows a call covers; every tuple is "any of", empty = no constraint.

    ``channels`` None means every channel (the stores' default); the service
    passes (IN_APP,) for the inbox.
    """

    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    severities: tuple[Severity, ...] = ()
    archived: ArchiveScope = ArchiveScope.UNARCHIVED
    read: ReadScope = ReadScope.ANY
    channels: tuple[Channel, ...] | None = None
    snoozed: bool = False

    @property
    def is_inbox(self) -> bool:
        """The unfiltered inbox: what the maintained counts count."""
        return self == INBOX

    def matches(self, row: Notification, now_ms: int) -> bool:
        if self.channels is not None and row.channel not in self.channels:
            return False
        if row.expires_at_ms and row.expires_at_ms <= now_ms:
            return False
        if self.snoozed:
            if not (row.snoozed_until_ms and not row.visible):
                return False
        elif not row.visible:
            return False
        if self.archived is ArchiveScope.UNARCHIVED and row.archived_at_ms:
            return False
        if self.archived is ArchiveScope.ARCHIVED and not row.archived_at_ms:
            return False
        if self.read is ReadScope.UNREAD and not row.status.unread:
            return False
        if self.read is ReadScope.READ and not row.read:
            return False
        if self.categories and row.category not in self.categories:
            return False
        if self.severities and row.severity not in self.severities:
            return False
        return not self.tags or any(tag in row.tags for tag in self.tags)


INBOX = Filter(channels=(Channel.IN_APP,))


@dataclass(frozen=True, slots=True)
class PageRequest:
    after: PageKey | None
    limit: int
    unread_only: bool
    filter: Filter = Filter()
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a user's rows, newest first; ``next_key`` is None on the last page."""

    rows: Sequence[Notification]
    next_key: PageKey | None
    counts: Counts

    @property
    def unread_count(self) -> int:
        return self.counts.unread
