"""Typed keyword arguments -> the contract's request messages.

Built once per call, before the first attempt: the idempotency key and every
relative time (``expires_in``) are fixed then, so each retry sends the very
same request and the server's (tenant, user, notification_id) key makes the
retries harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NotRequired, Required, TypedDict, TypeVar

from notify_client.proto import pb

__all__ = [
    "Action",
    "Channel",
    "DataChangeFields",
    "Instant",
    "NotifyFields",
    "Severity",
    "data_change_request",
    "new_key",
    "notify_request",
]

Channel = Literal["in_app", "email", "web_push", "mobile_push", "sms", "whatsapp"]
Severity = Literal["info", "success", "warning", "error"]
E = TypeVar("E")
# Epoch seconds, or an aware datetime.
Instant = float | int | datetime

# The enum values by the names callers write ("in_app"), from the module's constants.
CHANNELS: dict[str, pb.DeliveryChannel] = {
    name: getattr(pb, "DELIVERY_CHANNEL_" + name.upper())
    for name in ("in_app", "email", "web_push", "mobile_push", "sms", "whatsapp")
}
SEVERITIES: dict[str, pb.Severity] = {
    name: getattr(pb, "SEVERITY_" + name.upper())
    for name in ("info", "success", "warning", "error")
}


@dataclass(frozen=True)
class Action:
    """A button on the notification (at most 5): ``url`` is https:, http: or a relative path."""

    id: str
    label: str
    url: str = ""
    primary: bool = False


class NotifyFields(TypedDict, total=False):
    """Every field of a Notify, as the clients' keyword arguments."""

    tenant_id: Required[str]
    user_ids: Required[str | Iterable[str]]
    title: Required[str]
    body: str
    # The idempotency key; made when not given.
    notification_id: str | None
    channels: Sequence[Channel]
    subject_ref: str
    subject_type: str
    severity: Severity | None
    category: str
    actions: Sequence[Action]
    data: Mapping[str, Any] | None
    tags: Sequence[str]
    image_url: str
    expires_at: Instant | None
    # Seconds (or a timedelta) from now; not with expires_at.
    expires_in: float | timedelta | None
    deliver_at: Instant | None
    collapse_key: str
    # user id -> channel name ("email", "sms", ...) -> address.
    addresses: Mapping[str, Mapping[str, str]] | None


class DataChangeFields(TypedDict):
    """Every field of a PublishDataChange, as the clients' keyword arguments."""

    tenant_id: str
    user_ids: str | Iterable[str]
    subject_ref: str
    subject_type: NotRequired[str]
    # Names the change (acks, repeats); made when not given.
    idempotency_key: NotRequired[str | None]


def new_key() -> str:
    """A fresh idempotency key: random, so two calls never collide by accident."""
    return uuid.uuid4().hex


def _ids(value: str | Iterable[str]) -> list[str]:
    # A bare string is an iterable of characters: take it as one id.
    return [value] if isinstance(value, str) else list(value)


def _epoch_ms(value: Instant) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware")
        return round(value.timestamp() * 1000)
    return round(float(value) * 1000)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def notify_request(
    *,
    tenant_id: str,
    user_ids: str | Iterable[str],
    title: str,
    body: str = "",
    notification_id: str | None = None,
    channels: Sequence[Channel] = (),
    subject_ref: str = "",
    subject_type: str = "",
    severity: Severity | None = None,
    category: str = "",
    actions: Sequence[Action] = (),
    data: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    image_url: str = "",
    expires_at: Instant | None = None,
    expires_in: float | timedelta | None = None,
    deliver_at: Instant | None = None,
    collapse_key: str = "",
    addresses: Mapping[str, Mapping[str, str]] | None = None,
    now: Callable[[], float],
) -> pb.NotifyRequest:
    """The NotifyRequest for these arguments; ``now`` is the wall clock (epoch seconds).

    The server validates every limit (lengths, counts, URL schemes); this only
    catches what the wire cannot say, such as both ``expires_at`` and
    ``expires_in``, or an unknown channel name.
    """
    if expires_at is not None and expires_in is not None:
        raise ValueError("give expires_at or expires_in, not both")
    request = pb.NotifyRequest(
        tenant_id=tenant_id,
        notification_id=notification_id or new_key(),
        user_ids=_ids(user_ids),
        channels=[_enum(CHANNELS, "channel", c) for c in channels],
        subject_ref=subject_ref,
        subject_type=subject_type,
        title=title,
        body=body,
        category=category,
        actions=[pb.Action(id=a.id, label=a.label, url=a.url, primary=a.primary) for a in actions],
        tags=list(tags),
        image_url=image_url,
        collapse_key=collapse_key,
    )
    if severity is not None:
        request.severity = _enum(SEVERITIES, "severity", severity)
    if data is not None:
        request.data.update(dict(data))
    if expires_at is not None:
        request.expires_at_ms = _epoch_ms(expires_at)
    if expires_in is not None:
        request.expires_at_ms = _epoch_ms(now() + _seconds(expires_in))
    if deliver_at is not None:
        request.deliver_at_ms = _epoch_ms(deliver_at)
    for user, by_channel in (addresses or {}).items():
        request.addresses[user].by_channel.update(dict(by_channel))
    return request


def data_change_request(
    *,
    tenant_id: str,
    user_ids: str | Iterable[str],
    subject_ref: str,
    subject_type: str = "",
    idempotency_key: str | None = None,
) -> pb.PublishDataChangeRequest:
    return pb.PublishDataChangeRequest(
        tenant_id=tenant_id,
        user_ids=_ids(user_ids),
        subject_ref=subject_ref,
        subject_type=subject_type,
        idempotency_key=idempotency_key or new_key(),
    )


def _enum(table: Mapping[str, E], what: str, name: str) -> E:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}: one of {', '.join(table)}") from None
