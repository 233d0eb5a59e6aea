"""Opaque positions handed to clients: page cursors and stream resume tokens.

Both encode a row's PageKey (created_at_ms, id) behind a version prefix, so
a cursor cannot be passed as a resume token or vice versa, and anything this
server did not make is INVALID_ARGUMENT rather than a silent restart.
"""

from __future__ import annotations

import base64
import binascii
import uuid

from notify.core.errors import InvalidArgument
from notify.core.model import PageKey

_CURSOR_PREFIX = "v1:"
_RESUME_PREFIX = "r1:"
# A position holds a 19-digit number and a UUID; anything much longer is not one.
_MAX_TOKEN_LENGTH = 512


def _encode_position(prefix: str, key: PageKey) -> str:
    raw = f"{prefix}{key.created_at_ms}:{key.id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_position(prefix: str, token: str, invalid: InvalidArgument) -> PageKey:
    if len(token) > _MAX_TOKEN_LENGTH:
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


def encode_cursor(key: PageKey | None) -> str:
    """The next page's cursor; empty when there is no next page."""
    return _encode_position(_CURSOR_PREFIX, key) if key is not None else ""


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
