"""Opaque positions handed to clients: page cursors and stream resume tokens.

Both encode a row's PageKey (created_at_ms, id) behind a version prefix, so
a cursor cannot be passed as a resume token or vice versa, and anything this
server did not make is INVALID_ARGUMENT rather than a silent restart.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

from notify.core.errors import InvalidArgument
from notify.core.model import PageKey

_CURSOR_PREFIX = "v1:"
_RESUME_PREFIX = "r1:"
_RESUME2_PREFIX = "r2:"
# A position holds a 19-digit number and a UUID; anything much longer is not one.
_MAX_TOKEN_LENGTH = 512


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


def _encode_position(prefix: str, key: PageKey) -> str:
    return _encode(f"{prefix}{key.created_at_ms}:{key.id}")


def _decode_text(token: str, invalid: InvalidArgument) -> str:
    """The token's text, or ``invalid`` if it is too long or not base64url UTF-8."""
    if len(token) > _MAX_TOKEN_LENGTH:
        raise invalid
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None


def _parse_key(text: str, invalid: InvalidArgument) -> PageKey:
    """``<created_at_ms>:<uuid>`` as a PageKey."""
    millis, sep, row_id = text.partition(":")
    if not sep or not millis.isdigit() or len(millis) > 19:
        raise invalid
    try:
        uuid.UUID(row_id)  # every store id is a UUID
    except ValueError:
        raise invalid from None
    return PageKey(int(millis), row_id)


def _decode_position(prefix: str, token: str, invalid: InvalidArgument) -> PageKey:
    raw = _decode_text(token, invalid)
    if not raw.startswith(prefix):
        raise invalid
    return _parse_key(raw[len(prefix) :], invalid)


def encode_cursor(key: PageKey | None) -> str:
    """The next page's cursor; empty when there is no next page."""
    return _encode_position(_CURSOR_PREFIX, key) if key is not None else ""


def decode_cursor(cursor: str) -> PageKey | None:
    """Empty means the first page; anything not made by encode_cursor is INVALID_ARGUMENT."""
    if not cursor:
        return None
    invalid = InvalidArgument("cursor is malformed; pass the next_cursor of a previous page")
    return _decode_position(_CURSOR_PREFIX, cursor, invalid)


@dataclass(frozen=True, slots=True)
class ResumePosition:
    """Where a stream was: the last row it had, and the last inbox change it had.

    ``change`` is None for tokens made before the inbox's change log (``r1:``):
    such a stream gets the rows it missed, not the state changes.
    """

    key: PageKey
    change: int | None


def encode_resume_token(key: PageKey, change: int = 0) -> str:
    """``r2:<created_at_ms>:<row id>:<change seq>``, base64url."""
    return _encode(f"{_RESUME2_PREFIX}{key.created_at_ms}:{key.id}:{change}")


def decode_resume_token(token: str) -> ResumePosition | None:
    """Empty means live only; anything not made by encode_resume_token is INVALID_ARGUMENT."""
    if not token:
        return None
    invalid = InvalidArgument(
        "resume_token is malformed; pass the resume_token of a received event"
    )
    raw = _decode_text(token, invalid)
    if raw.startswith(_RESUME_PREFIX):
        return ResumePosition(_parse_key(raw[len(_RESUME_PREFIX) :], invalid), None)
    if not raw.startswith(_RESUME2_PREFIX):
        raise invalid
    head, sep, change = raw[len(_RESUME2_PREFIX) :].rpartition(":")
    if not sep or not change.isdigit() or len(change) > 19:
        raise invalid
    return ResumePosition(_parse_key(head, invalid), int(change))
