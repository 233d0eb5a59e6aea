"""Every request the service accepts, validated in one place.

A ``build_*`` function takes the raw fields a transport decoded and returns
a frozen command, or raises ``InvalidArgument`` whose message names the
field. Nothing past this module re-checks input: the service, the stores
and the bus trust a command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from notify.core.cursors import decode_cursor, decode_resume_token
from notify.core.errors import InvalidArgument
from notify.core.model import Channel, Device, DeviceType, PageKey, PageRequest

# Limits on what one request may carry. They bound memory per request and
# keep every value storable by every driver (PostgreSQL text cannot hold NUL).
MAX_ID_LENGTH = 256
MAX_SUBJECT_LENGTH = 1024
MAX_TITLE_LENGTH = 4096
MAX_BODY_LENGTH = 65536
MAX_USERS_PER_NOTIFY = 10_000
MAX_TOKEN_LENGTH = 4096
MAX_ADDRESS_LENGTH = 2048
# Every recipient stores its own copy of the text, so one Notify may store at
# most this much (users x channels x the text's UTF-8 bytes): 10,000 users with
# a 3 KiB body, or 500 with the largest body. Bounded so that the largest
# request these limits allow is written well within the store's timeouts.
MAX_STORED_BYTES_PER_NOTIFY = 32 * 1024 * 1024
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# Channels by the key producers use for them in NotifyRequest.addresses.
_ADDRESS_KEYS = {c.address_key: c for c in Channel if c.address_key}


@dataclass(frozen=True, slots=True)
class NotifyCommand:
    """A validated Notify request. Empty ``channels``: every channel with an active provider."""

    tenant_id: str
    notification_id: str
    user_ids: tuple[str, ...]
    channels: tuple[Channel, ...]
    subject_ref: str
    subject_type: str
    title: str
    body: str
    # user id -> channel -> address (email address, phone number, ...).
    addresses: Mapping[str, Mapping[Channel, str]] = field(default_factory=dict)

    def address(self, user_id: str, channel: Channel) -> str:
        return self.addresses.get(user_id, {}).get(channel, "")


@dataclass(frozen=True, slots=True)
class DataChangeCommand:
    """A validated PublishDataChange request."""

    tenant_id: str
    user_ids: tuple[str, ...]
    idempotency_key: str
    subject_ref: str
    subject_type: str


@dataclass(frozen=True, slots=True)
class DataChangeAck:
    """A validated AckDataChange request (the caller is known from its credentials)."""

    idempotency_key: str
    session_id: str


def require_text(name: str, value: str, max_length: int, *, required: bool = False) -> str:
    """Checks one string field: presence, length and storability."""
    if required and not value:
        raise InvalidArgument(f"{name} is required")
    if len(value) > max_length:
        raise InvalidArgument(f"{name} is longer than {max_length} characters")
    if "\x00" in value:
        raise InvalidArgument(f"{name} must not contain the NUL character")
    return value


def require_id(name: str, value: str) -> str:
    """An identifier: required, bounded, and not just white space."""
    require_text(name, value, MAX_ID_LENGTH, required=True)
    if not value.strip():
        raise InvalidArgument(f"{name} must not be blank")
    return value


def require_user_ids(user_ids: Sequence[str]) -> tuple[str, ...]:
    """Validates the recipients; duplicates collapse to one, in first-seen order."""
    if not user_ids:
        raise InvalidArgument("user_ids is required")
    if len(user_ids) > MAX_USERS_PER_NOTIFY:
        raise InvalidArgument(f"user_ids has more than {MAX_USERS_PER_NOTIFY} entries")
    for user_id in user_ids:
        require_id("user_ids entry", user_id)
    return tuple(dict.fromkeys(user_ids))


E = TypeVar("E", bound=IntEnum)


def _enum(kind: type[E], name: str, number: int) -> E:
    """A wire enum number as its domain enum; a number this build does not know is refused."""
    try:
        return kind(number)
    except ValueError:
        raise InvalidArgument(f"{name} has an unknown value {number}") from None


def _channels(numbers: Sequence[int]) -> tuple[Channel, ...]:
    resolved: list[Channel] = []
    for number in numbers:
        channel = _enum(Channel, "channels", number)
        if channel is Channel.UNSPECIFIED:
            raise InvalidArgument("channels must not contain DELIVERY_CHANNEL_UNSPECIFIED")
        resolved.append(channel)
    return tuple(dict.fromkeys(resolved))


def _addresses(
    addresses: Mapping[str, Mapping[str, str]],
) -> dict[str, dict[Channel, str]]:
    if len(addresses) > MAX_USERS_PER_NOTIFY:
        raise InvalidArgument(f"addresses has more than {MAX_USERS_PER_NOTIFY} entries")
    resolved: dict[str, dict[Channel, str]] = {}
    for user_id, by_channel in addresses.items():
        require_id("addresses key", user_id)
        entry: dict[Channel, str] = {}
        for key, address in by_channel.items():
            channel = _ADDRESS_KEYS.get(key)
            if channel is None:
                known = ", ".join(sorted(_ADDRESS_KEYS))
                raise InvalidArgument(
                    f"addresses[{user_id!r}] has an unknown channel key {key[:64]!r} "
                    f"(one of {known})"
                )
            entry[channel] = require_text(
                f"addresses[{user_id!r}][{key!r}]", address, MAX_ADDRESS_LENGTH
            )
        resolved[user_id] = entry
    return resolved


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
) -> NotifyCommand:
    """Validates a Notify request; duplicate user ids and channels collapse to one."""
    require_id("tenant_id", tenant_id)
    require_id("notification_id", notification_id)
    users = require_user_ids(user_ids)
    resolved = _channels(channels)
    require_text("subject_ref", subject_ref, MAX_SUBJECT_LENGTH)
    require_text("subject_type", subject_type, MAX_SUBJECT_LENGTH)
    require_text("title", title, MAX_TITLE_LENGTH)
    require_text("body", body, MAX_BODY_LENGTH)
    copies = len(users) * max(1, len(resolved))
    text_bytes = sum(len(t.encode()) for t in (subject_ref, subject_type, title, body))
    if copies * text_bytes > MAX_STORED_BYTES_PER_NOTIFY:
        raise InvalidArgument(
            f"this Notify would store {copies} copies of {text_bytes} bytes of text, more than "
            f"{MAX_STORED_BYTES_PER_NOTIFY // (1024 * 1024)} MiB; send it in several calls with "
            "fewer user_ids each"
        )
    return NotifyCommand(
        tenant_id=tenant_id,
        notification_id=notification_id,
        user_ids=users,
        channels=resolved,
        subject_ref=subject_ref,
        subject_type=subject_type,
        title=title,
        body=body,
        addresses=_addresses(addresses),
    )


def build_data_change(
    *,
    tenant_id: str,
    user_ids: Sequence[str],
    idempotency_key: str,
    subject_ref: str,
    subject_type: str,
) -> DataChangeCommand:
    require_id("tenant_id", tenant_id)
    require_id("idempotency_key", idempotency_key)
    users = require_user_ids(user_ids)
    require_text("subject_ref", subject_ref, MAX_SUBJECT_LENGTH)
    require_text("subject_type", subject_type, MAX_SUBJECT_LENGTH)
    return DataChangeCommand(tenant_id, users, idempotency_key, subject_ref, subject_type)


def build_data_change_ack(*, idempotency_key: str, session_id: str) -> DataChangeAck:
    require_id("idempotency_key", idempotency_key)
    require_id("session_id", session_id)
    return DataChangeAck(idempotency_key, session_id)


def build_row_id(row_id: str) -> str:
    """A store id named by a client (AckNotification)."""
    return require_id("id", row_id)


def page_size(limit: int) -> int:
    """limit <= 0 means the default; anything above the maximum is clamped."""
    if limit <= 0:
        return DEFAULT_PAGE_SIZE
    return min(limit, MAX_PAGE_SIZE)


def build_page_request(cursor: str, limit: int, unread_only: bool) -> PageRequest:
    return PageRequest(after=decode_cursor(cursor), limit=page_size(limit), unread_only=unread_only)


def build_resume_position(resume_token: str) -> PageKey | None:
    """Where a resuming stream continues from; None for a live-only stream."""
    return decode_resume_token(resume_token)


def build_device(
    *, tenant_id: str, user_id: str, device_type: int, token: str, now_ms: int
) -> Device:
    kind = _enum(DeviceType, "device_type", device_type)
    if kind is DeviceType.UNSPECIFIED:
        raise InvalidArgument("device_type is required")
    require_text("token", token, MAX_TOKEN_LENGTH, required=True)
    if not token.strip():
        raise InvalidArgument("token must not be blank")
    return Device(tenant_id, user_id, kind, token, now_ms)


def stream_device_type(device_type: int) -> DeviceType:
    """A stream may leave its device type unset; an unknown number is rejected."""
    return _enum(DeviceType, "device_type", device_type)
