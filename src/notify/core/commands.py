"""Every request the service accepts, validated in one place.

A ``build_*`` function takes the raw fields a transport decoded and returns
a frozen command, or raises ``InvalidArgument`` whose message names the
field. Nothing past this module re-checks input: the service, the stores
and the bus trust a command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import TypeVar

from notify.core.cursors import ResumePosition, decode_cursor, decode_resume_token
from notify.core.errors import InvalidArgument
from notify.core.inbox import Change
from notify.core.model import (
    INBOX,
    Action,
    ArchiveScope,
    Channel,
    Device,
    DeviceType,
    Filter,
    Mark,
    PageRequest,
    ReadScope,
    Severity,
)
from notify.core.preferences import PreferenceRule
from notify.core.subscription import parse_subscription

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

MAX_CATEGORY_LENGTH = 64
MAX_TAGS = 20
MAX_TAG_LENGTH = 64
MAX_ACTIONS = 5
MAX_ACTION_LABEL = 100
MAX_URL_LENGTH = 2048
MAX_DATA_BYTES = 16 * 1024
MAX_SCHEDULE_AHEAD_MS = 366 * 24 * 3600 * 1000
MAX_MARK_IDS = 500
MAX_FILTER_VALUES = 50
_CATEGORY = re.compile(r"[a-z0-9._:-]*")

# Channels by the key producers use for them in NotifyRequest.addresses.
_ADDRESS_KEYS = {c.address_key: c for c in Channel if c.address_key}


@dataclass(frozen=True, slots=True)
class Payload:
    """What an inbox renders, beyond title and body (validated)."""

    severity: Severity = Severity.UNSPECIFIED
    category: str = ""
    actions: tuple[Action, ...] = ()
    data: str = ""  # a JSON object as text, "" for none
    tags: tuple[str, ...] = ()
    image_url: str = ""
    expires_at_ms: int = 0
    deliver_at_ms: int = 0
    collapse_key: str = ""


@dataclass(frozen=True, slots=True)
class MarkCommand:
    selection_ids: tuple[str, ...]
    selection_filter: Filter | None
    change: Change


@dataclass(frozen=True, slots=True)
class DeleteCommand:
    selection_ids: tuple[str, ...]
    selection_filter: Filter | None


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
    payload: Payload = field(default_factory=lambda: Payload())

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


def _url(name: str, url: str, *, relative: bool) -> str:
    """An absolute http(s) URL, or (when allowed) a path on the inbox's own site.

    An inbox renders these as links, so anything a browser could run or send
    elsewhere unexpectedly is refused: other schemes (javascript:, data:, ...),
    network-path references (//host), backslashes browsers read as slashes,
    and white space or control characters a browser would strip first.
    """
    require_text(name, url, MAX_URL_LENGTH)
    if not url:
        return url
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in url):
        raise InvalidArgument(f"{name} must not contain white space, control characters or '\\'")
    lowered = url.lower()
    if lowered.startswith(("https://", "http://")) and len(url.split("/", 3)[2]) > 0:
        return url
    # A relative reference has no scheme: no ':' before its first '/', '?' or '#'.
    head = re.split(r"[/?#]", url, maxsplit=1)[0]
    if relative and ":" not in head and not url.startswith("//"):
        return url
    allowed = "https:, http: or a relative path" if relative else "https: or http:"
    raise InvalidArgument(f"{name} must be {allowed}")


def _category(name: str, category: str) -> str:
    if len(category) > MAX_CATEGORY_LENGTH or not _CATEGORY.fullmatch(category):
        raise InvalidArgument(
            f"{name} must be at most {MAX_CATEGORY_LENGTH} characters of "
            "a-z, 0-9, '.', '_', ':', '-'"
        )
    return category


def _tags(name: str, tags: Sequence[str]) -> tuple[str, ...]:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"{name} has more than {MAX_TAGS} entries")
    for tag in tags:
        require_text(f"{name} entry", tag, MAX_TAG_LENGTH, required=True)
    return tuple(dict.fromkeys(tags))


def build_actions(actions: Sequence[Action]) -> tuple[Action, ...]:
    if len(actions) > MAX_ACTIONS:
        raise InvalidArgument(f"actions has more than {MAX_ACTIONS} entries")
    seen: set[str] = set()
    for index, action in enumerate(actions):
        where = f"actions[{index}]"
        require_id(f"{where}.id", action.id)
        if action.id in seen:
            raise InvalidArgument(f"{where}.id {action.id[:64]!r} is given twice")
        seen.add(action.id)
        require_text(f"{where}.label", action.label, MAX_ACTION_LABEL, required=True)
        _url(f"{where}.url", action.url, relative=True)
    return tuple(actions)


def build_payload(
    *,
    severity: int,
    category: str,
    actions: Sequence[Action],
    data: str,
    tags: Sequence[str],
    image_url: str,
    expires_at_ms: int,
    deliver_at_ms: int,
    collapse_key: str,
    now_ms: int,
) -> Payload:
    if len(data.encode()) > MAX_DATA_BYTES:
        raise InvalidArgument(f"data is larger than {MAX_DATA_BYTES} bytes encoded as JSON")
    if "\x00" in data:
        raise InvalidArgument("data must not contain the NUL character")
    if expires_at_ms < 0 or deliver_at_ms < 0:
        raise InvalidArgument(
            "expires_at_ms and deliver_at_ms are epoch milliseconds, not negative"
        )
    if expires_at_ms and expires_at_ms <= now_ms:
        raise InvalidArgument("expires_at_ms must be in the future")
    if deliver_at_ms > now_ms + MAX_SCHEDULE_AHEAD_MS:
        raise InvalidArgument("deliver_at_ms must be at most 366 days ahead")
    if expires_at_ms and deliver_at_ms and expires_at_ms <= deliver_at_ms:
        raise InvalidArgument("expires_at_ms must be after deliver_at_ms")
    require_text("collapse_key", collapse_key, MAX_ID_LENGTH)
    return Payload(
        severity=_enum(Severity, "severity", severity),
        category=_category("category", category),
        actions=build_actions(actions),
        data=data,
        tags=_tags("tags", tags),
        image_url=_url("image_url", image_url, relative=False),
        expires_at_ms=expires_at_ms,
        deliver_at_ms=deliver_at_ms if deliver_at_ms > now_ms else 0,
        collapse_key=collapse_key,
    )


def build_filter(
    *,
    categories: Sequence[str] = (),
    tags: Sequence[str] = (),
    severities: Sequence[int] = (),
    archived: int = 0,
    read: int = 0,
    channels: Sequence[int] = (),
    snoozed: bool = False,
) -> Filter:
    """A wire filter; empty channels is the inbox (in-app only)."""
    for name, values in (("categories", categories), ("severities", severities)):
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidArgument(f"filter.{name} has more than {MAX_FILTER_VALUES} entries")
    for category in categories:
        _category("filter.categories entry", category)
    return Filter(
        categories=tuple(dict.fromkeys(categories)),
        tags=_tags("filter.tags", tags),
        severities=tuple(
            dict.fromkeys(_enum(Severity, "filter.severities", s) for s in severities)
        ),
        archived=_enum(ArchiveScope, "filter.archived", archived),
        read=_enum(ReadScope, "filter.read", read),
        channels=_channels(channels) or (Channel.IN_APP,),
        snoozed=snoozed,
    )


def _selection(
    ids: Sequence[str], all: bool, filter: Filter | None
) -> tuple[tuple[str, ...], Filter | None]:
    if bool(ids) == all:
        raise InvalidArgument("give exactly one of ids or all: true")
    if ids:
        if filter is not None:
            raise InvalidArgument("filter goes with all: true, not with ids")
        if len(ids) > MAX_MARK_IDS:
            raise InvalidArgument(f"ids has more than {MAX_MARK_IDS} entries")
        for row_id in ids:
            require_id("ids entry", row_id)
        return tuple(dict.fromkeys(ids)), None
    return (), filter or INBOX


def build_mark(
    *,
    ids: Sequence[str],
    all: bool,
    filter: Filter | None,
    mark: int,
    snooze_until_ms: int,
    action_id: str,
    now_ms: int,
) -> MarkCommand:
    kind = _enum(Mark, "mark", mark)
    if kind is Mark.UNSPECIFIED:
        raise InvalidArgument("mark is required")
    if kind is Mark.SNOOZED:
        if snooze_until_ms <= now_ms:
            raise InvalidArgument("snooze_until_ms must be in the future")
        if snooze_until_ms > now_ms + MAX_SCHEDULE_AHEAD_MS:
            raise InvalidArgument("snooze_until_ms must be at most 366 days ahead")
    elif snooze_until_ms:
        raise InvalidArgument("snooze_until_ms goes with MARK_SNOOZED only")
    if kind is Mark.ACTIONED:
        require_id("action_id", action_id)
    elif action_id:
        raise InvalidArgument("action_id goes with MARK_ACTIONED only")
    if kind is Mark.UNSNOOZED and all and filter is None:
        filter = Filter(channels=(Channel.IN_APP,), snoozed=True)
    selection_ids, selection_filter = _selection(ids, all, filter)
    return MarkCommand(selection_ids, selection_filter, Change(kind, snooze_until_ms, action_id))


def build_delete(*, ids: Sequence[str], all: bool, filter: Filter | None) -> DeleteCommand:
    selection_ids, selection_filter = _selection(ids, all, filter)
    return DeleteCommand(selection_ids, selection_filter)


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
    payload: Payload | None = None,
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
    text = (subject_ref, subject_type, title, body, payload.data if payload else "")
    # UTF-8 takes at most 4 bytes a character: encode only when it could matter.
    text_bytes = sum(map(len, text))
    if copies * text_bytes * 4 > MAX_STORED_BYTES_PER_NOTIFY:
        text_bytes = sum(len(t.encode()) for t in text)
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
        payload=payload or Payload(),
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


def build_page_request(
    cursor: str, limit: int, unread_only: bool, filter: Filter = INBOX
) -> PageRequest:
    """A page of what ``filter`` selects (the inbox by default); unread_only narrows it."""
    if unread_only and filter.read is ReadScope.ANY:
        filter = replace(filter, read=ReadScope.UNREAD)
    return PageRequest(
        after=decode_cursor(cursor), limit=page_size(limit), unread_only=unread_only, filter=filter
    )


def build_resume_position(resume_token: str) -> ResumePosition | None:
    """Where a resuming stream continues from; None for a live-only stream."""
    return decode_resume_token(resume_token)


def build_device(
    *,
    tenant_id: str,
    user_id: str,
    device_type: int,
    token: str,
    now_ms: int,
    allow_insecure_webpush: bool = False,
) -> Device:
    """A browser's token is its PushSubscription JSON, validated and kept canonical (so the
    same subscription again is the same device); a phone's is its FCM or APNs token."""
    kind = _enum(DeviceType, "device_type", device_type)
    if kind is DeviceType.UNSPECIFIED:
        raise InvalidArgument("device_type is required")
    require_text("token", token, MAX_TOKEN_LENGTH, required=True)
    if not token.strip():
        raise InvalidArgument("token must not be blank")
    if kind is DeviceType.BROWSER:
        token = parse_subscription(token, allow_insecure=allow_insecure_webpush).token()
    return Device(tenant_id, user_id, kind, token, now_ms)


def stream_device_type(device_type: int) -> DeviceType:
    """A stream may leave its device type unset; an unknown number is rejected."""
    return _enum(DeviceType, "device_type", device_type)


# Preference rules a user (or a tenant's defaults) may hold: one per
# (category, channel) pair anyone needs, with room to spare.
MAX_PREFERENCE_RULES = 200
MAX_REQUIRED_CATEGORIES = 100


def build_preference_rules(
    name: str, rules: Sequence[tuple[str, int, bool]]
) -> tuple[PreferenceRule, ...]:
    """Validated (category, channel, enabled) triples as PreferenceRules."""
    if len(rules) > MAX_PREFERENCE_RULES:
        raise InvalidArgument(f"{name} has more than {MAX_PREFERENCE_RULES} rules")
    return tuple(
        PreferenceRule(
            _category(f"{name}[{index}].category", category),
            _enum(Channel, f"{name}[{index}].channel", channel),
            enabled,
        )
        for index, (category, channel, enabled) in enumerate(rules)
    )


def build_required_categories(categories: Sequence[str]) -> tuple[str, ...]:
    if len(categories) > MAX_REQUIRED_CATEGORIES:
        raise InvalidArgument(
            f"required_categories has more than {MAX_REQUIRED_CATEGORIES} entries"
        )
    for category in categories:
        if not category:
            raise InvalidArgument("required_categories entries must not be empty")
        _category("required_categories entry", category)
    return tuple(sorted(set(categories)))
