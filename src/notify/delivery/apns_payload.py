"""What one row looks like to APNs: the request headers and the JSON payload. No I/O.

The payload is ``{"aps": {"alert": {"title", "body"}, "category", "thread-id",
"mutable-content"}, "id", "notification_id", "url", "image", "data"}``:
``category`` is the row's (the app registers its actions under it),
``thread-id`` the subject (iOS groups a subject's notifications),
``mutable-content`` is set when there is an image for the app's notification
service extension to fetch, ``id`` is the store id (the app reads the full row
with GetNotification), ``url`` the primary action's.

APNs refuses payloads over 4 KiB, so what does not fit gives way in this
order: ``data`` first (the app can fetch it by ``id``), then the body is cut
to fit, ending in "…"; only when even an empty body leaves no room do the
image, then the url go, and at last the title is cut. The result is never
over the limit.

Headers: ``apns-priority`` is 10 (send now) except for INFO and SUCCESS
rows, which are 5 (APNs may wait for a moment that spares the battery);
``apns-expiration`` is the row's ``expires_at_ms`` in epoch seconds, and is
left out when the row never expires, so APNs keeps the push for a phone that
is off (``0`` would mean "now or never"); ``apns-collapse-id`` is the
collapse key, or its SHA-256 in hex (64 bytes) when the key is longer than
APNs' 64 bytes; ``apns-id`` is a UUID derived from the row and the device
token, so a retry of the same push carries the same id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from notify.core.model import Notification, Severity

MAX_PAYLOAD_BYTES = 4096
MAX_COLLAPSE_ID_BYTES = 64
# Longer subjects are hashed like long collapse keys: the thread only has to match.
MAX_THREAD_ID_BYTES = 64
ELLIPSIS = "…"
LOW_PRIORITY_SEVERITIES = frozenset({Severity.INFO, Severity.SUCCESS})
# apns-id: uuid5 in this namespace of "<row id>/<device token>".
APNS_ID_NAMESPACE = uuid.UUID("6f1a7c1e-4a8b-5d0e-9c43-2b7e9d6a0f15")


def message_id(row_id: str, device_token: str) -> str:
    """The same UUID for every retry of one row to one device (APNs' canonical form)."""
    return str(uuid.uuid5(APNS_ID_NAMESPACE, f"{row_id}/{device_token}"))


def priority(severity: Severity) -> str:
    return "5" if severity in LOW_PRIORITY_SEVERITIES else "10"


def expiration(expires_at_ms: int) -> str | None:
    """Epoch seconds, rounded up so a row still valid is never sent as already expired."""
    if expires_at_ms <= 0:
        return None
    return str((expires_at_ms + 999) // 1000)


def _bounded(value: str, limit: int) -> str:
    """``value`` when it fits ``limit`` UTF-8 bytes, else its SHA-256 in hex (64 bytes)."""
    if len(value.encode()) <= limit:
        return value
    return hashlib.sha256(value.encode()).hexdigest()


def collapse_id(collapse_key: str) -> str | None:
    return _bounded(collapse_key, MAX_COLLAPSE_ID_BYTES) if collapse_key else None


def headers(row: Notification, device_token: str, topic: str) -> dict[str, str]:
    """Every header but ``authorization`` (the sender adds the provider token)."""
    out = {
        "apns-topic": topic,
        "apns-push-type": "alert",
        "apns-priority": priority(row.severity),
        "apns-id": message_id(row.id, device_token),
    }
    expires = expiration(row.expires_at_ms)
    if expires is not None:
        out["apns-expiration"] = expires
    collapse = collapse_id(row.collapse_key)
    if collapse is not None:
        out["apns-collapse-id"] = collapse
    return out


def primary_url(row: Notification) -> str:
    return next((action.url for action in row.actions if action.primary and action.url), "")


def _extras(row: Notification) -> list[tuple[str, Any]]:
    """The optional keys, most important first: what gives way is taken from the end."""
    extras: list[tuple[str, Any]] = []
    url = primary_url(row)
    if url:
        extras.append(("url", url))
    if row.image_url:
        extras.append(("image", row.image_url))
    if row.data:
        extras.append(("data", orjson.Fragment(row.data)))
    return extras


def _encode(row: Notification, title: str, body: str, extras: list[tuple[str, Any]]) -> bytes:
    alert: dict[str, str] = {}
    if title:
        alert["title"] = title
    if body:
        alert["body"] = body
    aps: dict[str, Any] = {"alert": alert}
    if row.category:
        aps["category"] = row.category
    if row.subject_ref:
        aps["thread-id"] = _bounded(row.subject_ref, MAX_THREAD_ID_BYTES)
    if row.image_url:
        aps["mutable-content"] = 1
    payload: dict[str, Any] = {"aps": aps, "id": row.id, "notification_id": row.notification_id}
    payload.update(extras)
    return orjson.dumps(payload)


def _fit(build: Callable[[str], bytes], text: str, limit: int) -> bytes:
    """The payload with the longest prefix of ``text`` (marked "…" when cut) that fits.

    ``build("")`` must fit. A binary search over the number of characters kept:
    JSON escapes and multi-byte characters make the byte size of a prefix
    unknowable without encoding it, and each encoding costs microseconds.
    """
    whole = build(text)
    if len(whole) <= limit:
        return whole
    best = build("")
    # Every character is at least one byte, so more than `limit` of them never fit.
    low, high = 0, min(len(text) - 1, limit)
    while low <= high:
        kept = (low + high) // 2
        candidate = build(text[:kept] + ELLIPSIS)
        if len(candidate) <= limit:
            best, low = candidate, kept + 1
        else:
            high = kept - 1
    return best


def payload(row: Notification, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The JSON body for ``row``, at most ``limit`` bytes (see the module's order)."""
    # Every character is at least one byte: past `limit` characters nothing fits whole, so
    # longer texts are cut there first and never encoded whole (a 64 KiB body costs no more).
    title, body = row.title[: limit + 1], row.body[: limit + 1]
    extras = _extras(row)
    without_data = [item for item in extras if item[0] != "data"]
    for keep in (extras, without_data):
        whole = _encode(row, title, body, keep)
        if len(whole) <= limit:
            return whole
    for count in range(len(without_data), -1, -1):
        keep = without_data[:count]
        if len(_encode(row, title, "", keep)) <= limit:
            return _fit(_with_body(row, title, keep), body, limit)
    return _fit(lambda cut: _encode(row, cut, "", []), title, limit)


def _with_body(
    row: Notification, title: str, extras: list[tuple[str, Any]]
) -> Callable[[str], bytes]:
    return lambda body: _encode(row, title, body, extras)
