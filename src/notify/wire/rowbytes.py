"""Each row's wire bytes, made once per state of the row and reused.

A stored row's payload (title, body, ``data``, actions, tags, times it was
created for) never changes: the stores change only its state fields (status,
the read/seen/archived/snoozed/actioned marks, the delivery attempts), and a
collapse stores a new row under a new id. Encoding a rich row is costly
(a Struct for ``data`` and a message per action on the binary path, a dict per
action on the JSON path) and an inbox serves the same first pages again and
again, so the bytes of a row are kept under its id together with the state
values they were made from, and reused while those are unchanged. A changed
state encodes the row again, whole: the bytes are always exactly what the
encoder writes for the row as it is now.

One ``RowBytes`` per encoder and per server (``ClientService``): ids are
unique within one store, and a cache never outlives the store it saw. The
cache is bounded by the bytes it holds and starts over when full, which
keeps every hit a plain dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from elloloop.notify.v1 import notify_pb2 as pb

from notify.core.codegen import define
from notify.core.model import NOTIFICATION_FIELDS, Notification

# The wire fields no store writes after the row is stored. Every other wire
# field is state, so a field added later is checked by default.
PAYLOAD_FIELDS = frozenset(
    {
        "id",
        "notification_id",
        "subject_ref",
        "subject_type",
        "title",
        "body",
        "channel",
        "created_at_ms",
        "severity",
        "category",
        "actions",
        "data",
        "tags",
        "image_url",
        "expires_at_ms",
        "deliver_at_ms",
        "collapse_key",
    }
)
_WIRE = pb.Notification.DESCRIPTOR.fields_by_name
STATE_FIELDS: tuple[str, ...] = tuple(
    name for name in NOTIFICATION_FIELDS if name in _WIRE and name not in PAYLOAD_FIELDS
)
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


def _compile_state() -> Callable[[Notification], tuple[Any, ...]]:
    """``lambda row: (row.status, row.read_at_ms, ...)``, straight-line."""
    items = "".join(f"row.{name}, " for name in STATE_FIELDS)
    namespace: dict[str, Any] = {}
    define(f"def state(row):\n    return ({items})", namespace)  # field names only
    state: Callable[[Notification], tuple[Any, ...]] = namespace["state"]
    return state


state_of = _compile_state()


class RowBytes:
    """``encode(row)``, remembered per row id for as long as the row's state is the same."""

    def __init__(
        self, encode: Callable[[Notification], bytes], max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self._encode = encode
        self._max_bytes = max_bytes
        self._entries: dict[str, tuple[tuple[Any, ...], bytes]] = {}
        self._size = 0

    def __call__(self, row: Notification) -> bytes:
        state = state_of(row)
        entry = self._entries.get(row.id)
        if entry is not None and entry[0] == state:
            return entry[1]
        encoded = self._encode(row)
        if entry is not None:
            self._size -= len(entry[1])
        elif self._size + len(encoded) > self._max_bytes:
            self._entries.clear()
            self._size = 0
        self._entries[row.id] = (state, encoded)
        self._size += len(encoded)
        return encoded

    def many(self, rows: Sequence[Notification]) -> list[bytes]:
        """``[self(row) for row in rows]``, with the hit path inlined."""
        entries = self._entries
        out: list[bytes] = []
        for row in rows:
            entry = entries.get(row.id)
            if entry is not None and entry[0] == state_of(row):
                out.append(entry[1])
            else:
                out.append(self(row))
        return out

    @property
    def size(self) -> int:
        """Bytes held (for tests and the bound)."""
        return self._size

    def __len__(self) -> int:
        return len(self._entries)
