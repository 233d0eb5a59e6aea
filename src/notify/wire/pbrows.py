"""Binary protobuf for pages of rows, from each row's own bytes.

A repeated message field is, on the wire, each element's bytes behind its
tag and length, and protobuf writes fields in number order. So a
GetNotificationsResponse is its rows' encodings (``row_bytes``), each framed
as field ``notifications``, followed by the response without them: the same
bytes as ``SerializeToString(deterministic=True)`` of the whole message, while every row's bytes
can come from ``RowBytes`` instead of a fresh ``Notification`` message with
a Struct for its ``data``.
"""

from __future__ import annotations

from collections.abc import Sequence

from elloloop.notify.v1 import notify_pb2 as pb
from google.protobuf.descriptor import FieldDescriptor

from notify.core.model import Counts, Notification
from notify.wire.convert import counts_to_pb, notification_to_pb


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_tag(message: type[pb.GetNotificationsResponse], name: str) -> bytes:
    """The key of a length-delimited field (number << 3 | 2)."""
    field = message.DESCRIPTOR.fields_by_name[name]
    assert field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_STRING)
    return varint(field.number << 3 | 2)


_ROWS_TAG = field_tag(pb.GetNotificationsResponse, "notifications")
# The lengths of most rows, precomputed: one dict lookup instead of a loop.
_LENGTHS = [varint(n) for n in range(1 << 14)]


def row_bytes(row: Notification) -> bytes:
    """One row as a serialised ``Notification`` message, deterministically.

    ``data`` is a Struct, a map: protobuf writes map entries in whatever
    order its hash table holds them, so two equal messages may serialise
    differently. Deterministic serialisation sorts them, which makes a row's
    bytes a function of its value, as kept bytes should be.
    """
    return notification_to_pb(row).SerializeToString(deterministic=True)


def framed(encoded: Sequence[bytes], tag: bytes) -> list[bytes]:
    """Each element behind ``tag`` and its length: a repeated message field's bytes."""
    lengths = _LENGTHS
    parts: list[bytes] = []
    append = parts.append
    for item in encoded:
        size = len(item)
        append(tag)
        append(lengths[size] if size < 16384 else varint(size))
        append(item)
    return parts


def page_from_rows(encoded: Sequence[bytes], next_cursor: str, counts: Counts) -> bytes:
    """A serialised GetNotificationsResponse from its rows' bytes (``row_bytes``), in order."""
    rest = pb.GetNotificationsResponse(
        next_cursor=next_cursor, unread_count=counts.unread, counts=counts_to_pb(counts)
    ).SerializeToString()
    parts = framed(encoded, _ROWS_TAG)
    parts.append(rest)
    return b"".join(parts)
