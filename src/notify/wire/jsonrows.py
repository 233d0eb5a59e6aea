"""Connect JSON for pages of rows, straight from the domain rows.

A JSON page built through protobuf converts every row's ``data`` (stored as
JSON text) into a ``Struct`` and back into JSON again, and builds a message
per action: for rich rows that cost more than the rest of the request. Here
the same proto3 JSON is produced from the ``Notification`` rows directly,
with the stored ``data`` text spliced in unparsed (``orjson.Fragment``).

``notify.wire.pages`` hands the bytes to the JSON codec (``prepared``) and
keeps each row's bytes (``rowbytes``), so a page is the rows' kept bytes
joined. The output is the JSON ``fastjson`` writes for
``notification_to_pb(row)`` (tests/unit/test_jsonrows.py holds the two to
each other on random rows), so a client cannot tell which path answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from elloloop.notify.v1 import notify_pb2 as pb
from google.protobuf.descriptor import FieldDescriptor

from notify.core.codegen import define
from notify.core.model import NOTIFICATION_FIELDS, Counts, Notification

_F = FieldDescriptor
_INT64 = {_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64, _F.TYPE_UINT64, _F.TYPE_FIXED64}


def _actions(actions: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"id": a.id, "label": a.label, "url": a.url, "primary": a.primary} for a in actions]


def _compile() -> Callable[[Notification], dict[str, Any]]:
    """``def row_json(row): return {"id": row.id, ...}`` in the wire's field order."""
    namespace: dict[str, Any] = {"actions": _actions, "Fragment": orjson.Fragment}
    items: list[str] = []
    tail: list[str] = []
    domain = set(NOTIFICATION_FIELDS)
    for field in pb.Notification.DESCRIPTOR.fields:
        if field.name not in domain:
            continue
        key = json.dumps(field.json_name)
        attr = f"row.{field.name}"
        if field.name == "actions":
            items.append(f"{key}: actions({attr})")
        elif field.name == "data":
            # A message field: present only when set, as proto3 JSON prints it.
            tail.append(f"    if {attr}:\n        out[{key}] = Fragment({attr})")
        elif field.is_repeated:
            items.append(f"{key}: list({attr})")
        elif field.type == _F.TYPE_ENUM:
            table = f"enum_{field.name}"
            enum = field.enum_type
            assert enum is not None
            namespace[table] = {v.number: v.name for v in enum.values}
            items.append(f"{key}: {table}.get(int({attr}), int({attr}))")
        elif field.type in _INT64:
            items.append(f"{key}: str({attr})")
        else:
            items.append(f"{key}: {attr}")
    source = "def row_json(row):\n    out = {" + ", ".join(items) + "}\n"
    source += "".join(line + "\n" for line in tail) + "    return out\n"
    define(source, namespace)  # built from the descriptor's field names only
    row_json: Callable[[Notification], dict[str, Any]] = namespace["row_json"]
    return row_json


row_json = _compile()
_DATA_KEY = pb.Notification.DESCRIPTOR.fields_by_name["data"].json_name


def row_bytes(row: Notification) -> bytes:
    """One row as proto3 JSON text."""
    return orjson.dumps(row_json(row))


_PAGE_HEAD = b'{"notifications":['


def page_from_rows(encoded: Sequence[bytes], next_cursor: str, counts: Counts) -> bytes:
    """A GetNotificationsResponse as JSON, from its rows' JSON (``row_bytes``), in order.

    The same bytes as orjson writes for the whole page as one value: the
    rows' text is joined, not parsed again.
    """
    tail = orjson.dumps(
        {
            "nextCursor": next_cursor,
            "unreadCount": counts.unread,
            "counts": {"unread": counts.unread, "unseen": counts.unseen, "total": counts.total},
        }
    )
    # One join, one copy of the rows' bytes (a rich page is ~200 KiB).
    parts: list[bytes | memoryview] = [_PAGE_HEAD]
    append = parts.append
    for row in encoded:
        append(row)
        append(b",")
    if encoded:
        parts.pop()
    append(b"],")
    append(memoryview(tail)[1:])
    return b"".join(parts)


def page_json(rows: Sequence[Notification], next_cursor: str, counts: Counts) -> bytes:
    """A GetNotificationsResponse as Connect JSON."""
    return page_from_rows([row_bytes(row) for row in rows], next_cursor, counts)


def wants_json(content_type: str) -> bool:
    """Whether the request's codec is JSON (Connect, gRPC or gRPC-Web +json)."""
    return "json" in content_type.lower()
