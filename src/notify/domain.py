"""Notifications, devices and their statuses: pure values and rules, no I/O.

Enum numbers equal the wire enums in ``proto/elloloop/notify/v1/notify.proto``
so conversion is a plain ``int``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from notify.errors import InvalidArgument


class Channel(IntEnum):
    UNSPECIFIED = 0
    IN_APP = 1
    EMAIL = 2
    WEB_PUSH = 3
    MOBILE_PUSH = 4
    SMS = 5
    WHATSAPP = 6


class Status(IntEnum):
    UNSPECIFIED = 0
    PENDING = 1
    DELIVERED = 2
    ACKED = 3
    READ = 4
    FAILED = 5

    @property
    def unread(self) -> bool:
        """Everything below READ counts as unread (CONTRACT.md)."""
        return self < Status.READ


class DeviceType(IntEnum):
    UNSPECIFIED = 0
    BROWSER = 1
    ANDROID = 2
    IOS = 3


# Limits on what one request may carry. They bound memory per request and
# keep every value storable by every driver (PostgreSQL text cannot hold NUL).
MAX_ID_LENGTH = 256
MAX_SUBJECT_LENGTH = 1024
MAX_TITLE_LENGTH = 4096
MAX_BODY_LENGTH = 65536
MAX_USERS_PER_NOTIFY = 10_000
MAX_TOKEN_LENGTH = 4096
# A resume replays at most this many missed notifications; a client further
# behind is told OUT_OF_RANGE and pages its inbox instead.
MAX_REPLAY = 10_000
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


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
        return Notification(
            self.id, self.tenant_id, self.user_id, self.notification_id, self.channel,
            self.subject_ref, self.subject_type, self.title, self.body, self.status,
            self.created_at_ms, self.delivered_at_ms, self.ack_at_ms, self.read_at_ms,
        )  # fmt: skip


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
class NotifyCommand:
    """A validated Notify request."""

    tenant_id: str
    notification_id: str
    user_ids: tuple[str, ...]
    channels: tuple[Channel, ...]
    subject_ref: str
    subject_type: str
    title: str
    body: str
    addresses: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


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
    notifications: Sequence[Notification]
    next_cursor: str
    unread_count: int


def require_text(name: str, value: str, max_length: int, *, required: bool = False) -> str:
    """Checks one string field: presence, length and storability."""
    if required and not value:
        raise InvalidArgument(f"{name} is required")
    if len(value) > max_length:
        raise InvalidArgument(f"{name} is longer than {max_length} characters")
    if "\x00" in value:
        raise InvalidArgument(f"{name} must not contain the NUL character")
    return value


def require_user_ids(user_ids: Sequence[str]) -> None:
    if not user_ids:
        raise InvalidArgument("user_ids is required")
    if len(user_ids) > MAX_USERS_PER_NOTIFY:
        raise InvalidArgument(f"user_ids has more than {MAX_USERS_PER_NOTIFY} entries")
    for user_id in user_ids:
        require_text("user_ids entry", user_id, MAX_ID_LENGTH, required=True)


def build_notify_command(
    *,
    tenant_id: str,
    notification_id: str,
    user_ids: Sequence[str],
    channels: Sequence[int],
    subject_ref: str,
    subject_type: str,
    title: str,
    body: str,
    addresses: Mapping[str, Mapping[str, str]],
    default_channels: Sequence[Channel],
) -> NotifyCommand:
    """Validates a Notify request; duplicate user ids and channels collapse to one."""
    require_text("tenant_id", tenant_id, MAX_ID_LENGTH, required=True)
    require_text("notification_id", notification_id, MAX_ID_LENGTH, required=True)
    require_user_ids(user_ids)
    resolved: list[Channel] = []
    for number in channels:
        try:
            channel = Channel(number)
        except ValueError:
            raise InvalidArgument(f"channels has an unknown value {number}") from None
        if channel is Channel.UNSPECIFIED:
            raise InvalidArgument("channels must not contain DELIVERY_CHANNEL_UNSPECIFIED")
        resolved.append(channel)
    require_text("subject_ref", subject_ref, MAX_SUBJECT_LENGTH)
    require_text("subject_type", subject_type, MAX_SUBJECT_LENGTH)
    require_text("title", title, MAX_TITLE_LENGTH)
    require_text("body", body, MAX_BODY_LENGTH)
    return NotifyCommand(
        tenant_id=tenant_id,
        notification_id=notification_id,
        user_ids=tuple(dict.fromkeys(user_ids)),
        channels=tuple(dict.fromkeys(resolved or default_channels)),
        subject_ref=subject_ref,
        subject_type=subject_type,
        title=title,
        body=body,
        addresses=addresses,
    )


def page_size(limit: int) -> int:
    """limit <= 0 means the default; anything above the maximum is clamped."""
    if limit <= 0:
        return DEFAULT_PAGE_SIZE
    return min(limit, MAX_PAGE_SIZE)


_CURSOR_PREFIX = "v1:"
_RESUME_PREFIX = "r1:"


def _encode_position(prefix: str, key: PageKey) -> str:
    raw = f"{prefix}{key.created_at_ms}:{key.id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_position(prefix: str, token: str, invalid: InvalidArgument) -> PageKey:
    if len(token) > 2 * MAX_ID_LENGTH:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    if not raw.startswith(prefix):
        raise invalid
    millis, sep, row_id = raw[len(prefix) :].partition(":")
    if not sep or not millis.isdigit() or len(millis) > 19:
        raise invalid
    try:
        uuid.UUID(row_id)  # every store id is a UUID
    except ValueError:
        raise invalid from None
    return PageKey(int(millis), row_id)


def encode_cursor(key: PageKey) -> str:
    return _encode_position(_CURSOR_PREFIX, key)


def decode_cursor(cursor: str) -> PageKey | None:
    """Empty means the first page; anything not made by encode_cursor is INVALID_ARGUMENT."""
    if not cursor:
        return None
    invalid = InvalidArgument("cursor is malformed; pass the next_cursor of a previous page")
    return _decode_position(_CURSOR_PREFIX, cursor, invalid)


def encode_resume_token(key: PageKey) -> str:
    return _encode_position(_RESUME_PREFIX, key)


def decode_resume_token(token: str) -> PageKey | None:
    """Empty means live only; anything not made by encode_resume_token is INVALID_ARGUMENT."""
    if not token:
        return None
    invalid = InvalidArgument(
        "resume_token is malformed; pass the resume_token of a received notification"
    )
    return _decode_position(_RESUME_PREFIX, token, invalid)


def build_page_request(cursor: str, limit: int, unread_only: bool) -> PageRequest:
    return PageRequest(after=decode_cursor(cursor), limit=page_size(limit), unread_only=unread_only)


def build_device(
    *, tenant_id: str, user_id: str, device_type: int, token: str, now_ms: int
) -> Device:
    try:
        kind = DeviceType(device_type)
    except ValueError:
        raise InvalidArgument(f"device_type has an unknown value {device_type}") from None
    if kind is DeviceType.UNSPECIFIED:
        raise InvalidArgument("device_type is required")
    require_text("token", token, MAX_TOKEN_LENGTH, required=True)
    return Device(tenant_id, user_id, kind, token, now_ms)


def stream_device_type(device_type: int) -> DeviceType:
    """A stream may leave its device type unset; an unknown number is rejected."""
    try:
        return DeviceType(device_type)
    except ValueError:
        raise InvalidArgument(f"device_type has an unknown value {device_type}") from None
