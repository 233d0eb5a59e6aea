"""The notifications table's columns, derived from ``Notification``'s fields.

One list drives every statement that names the columns, the arrays a batch
insert sends through ``unnest`` and the record -> Notification conversion,
so a new field needs only a migration adding its column. The converters are
generated once as straight-line code (no per-field loop on the hot path).
"""

from __future__ import annotations

import dataclasses
import typing
import uuid
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any

import orjson

from notify.core.codegen import define
from notify.core.model import Action, Notification

_SQL_TYPES = {str: "text", int: "bigint", bool: "boolean"}


def _tags_to_db(tags: tuple[str, ...]) -> str:
    return orjson.dumps(tags).decode()


def _memoized(decode: Callable[[str], Any], size: int = 4096) -> Callable[[str], Any]:
    """``decode`` remembered per text: for values that are immutable once decoded.

    A page of rich rows decoded its actions (a frozen ``Action`` per button)
    afresh on every read; the same rows are read again and again (an inbox's
    first page) and a fan-out's rows share one text, so the decoded tuple is
    shared instead. Bounded: the memo starts over when full.
    """
    memo: dict[str, Any] = {}

    def memoized(text: str) -> Any:
        found = memo.get(text)
        if found is None:
            found = decode(text)
            if len(memo) >= size:
                memo.clear()
            memo[text] = found
        return found

    return memoized


def _decode_tags(text: str) -> tuple[str, ...]:
    return tuple(orjson.loads(text))


_tags_from_db = _memoized(_decode_tags)


def _actions_to_db(actions: tuple[Action, ...]) -> str:
    return orjson.dumps([[a.id, a.label, a.url, a.primary] for a in actions]).decode()


def _decode_actions(text: str) -> tuple[Action, ...]:
    return tuple(Action(*item) for item in orjson.loads(text))


_actions_from_db = _memoized(_decode_actions)


class _Members(dict[int, Any]):
    """An IntEnum's members by value: a dict lookup instead of the enum's call.

    A value that is no member goes to the enum itself, which raises as before.
    """

    def __init__(self, kind: type[IntEnum]) -> None:
        super().__init__((member.value, member) for member in kind)
        self._kind = kind

    def __missing__(self, value: int) -> Any:
        return self._kind(value)


# Composite values go in jsonb columns through these codecs, by field type.
_JSON_CODECS: dict[Any, tuple[Callable[[Any], str], Callable[[str], Any]]] = {
    tuple[str, ...]: (_tags_to_db, _tags_from_db),
    tuple[Action, ...]: (_actions_to_db, _actions_from_db),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql_type: str
    kind: Any  # str, int, bool, uuid.UUID, an IntEnum, or a type with a JSON codec


def _columns() -> tuple[Column, ...]:
    hints = typing.get_type_hints(Notification)
    columns = []
    for f in dataclasses.fields(Notification):
        kind = hints[f.name]
        if f.name == "id":
            columns.append(Column(f.name, "uuid", uuid.UUID))
        elif kind in _JSON_CODECS:
            columns.append(Column(f.name, "jsonb", kind))
        elif isinstance(kind, type) and issubclass(kind, IntEnum):
            columns.append(Column(f.name, "smallint", kind))
        elif kind in _SQL_TYPES:
            columns.append(Column(f.name, _SQL_TYPES[kind], kind))
        else:
            raise TypeError(f"Notification.{f.name}: no column type for {kind!r}")
    return tuple(columns)


COLUMNS: tuple[Column, ...] = _columns()
NAMES = ", ".join(c.name for c in COLUMNS)
# "$1::uuid[], $2::text[], ...": the arrays of a batch insert, in column order.
UNNEST_ARGS = ", ".join(f"${i}::{c.sql_type}[]" for i, c in enumerate(COLUMNS, 1))


def _compile() -> tuple[
    Callable[[Sequence[Notification]], list[list[Any]]], Callable[[Any], Notification]
]:
    namespace: dict[str, Any] = {"Notification": Notification, "UUID": uuid.UUID, "str": str}
    to_db, from_db = [], []
    for i, c in enumerate(COLUMNS):
        if c.kind in _JSON_CODECS:
            encode, decode = _JSON_CODECS[c.kind]
            namespace[f"enc{i}"], namespace[f"dec{i}"] = encode, decode
            to_db.append(f"enc{i}(r.{c.name})")
            from_db.append(f"dec{i}(rec[{i}])")
        elif c.kind is uuid.UUID:
            to_db.append(f"UUID(r.{c.name})")
            from_db.append(f"str(rec[{i}])")
        elif isinstance(c.kind, type) and issubclass(c.kind, IntEnum):
            namespace[f"members{i}"] = _Members(c.kind)
            to_db.append(f"int(r.{c.name})")
            from_db.append(f"members{i}[rec[{i}]]")
        else:
            to_db.append(f"r.{c.name}")
            from_db.append(f"rec[{i}]")
    n = len(COLUMNS)
    lists = ", ".join(f"c{i}" for i in range(n))
    lines = ["def to_arrays(rows):"]
    lines += [f"    c{i} = []" for i in range(n)]
    lines.append("    for r in rows:")
    lines += [f"        c{i}.append({expr})" for i, expr in enumerate(to_db)]
    lines.append(f"    return [{lists}]")
    lines.append("def to_row(rec):")
    lines.append(f"    return Notification({', '.join(from_db)})")
    define("\n".join(lines), namespace)  # built from the dataclass's own field list
    return namespace["to_arrays"], namespace["to_row"]


# rows -> one list per column (unnest's arrays); a record of NAMES -> Notification.
to_arrays, to_row = _compile()


_WIDTH = len(COLUMNS)
DEFAULT_MEMO_ROWS = 4096


class RowMemo:
    """``to_row`` per record, remembered per row id while the row's columns are the same.

    An inbox's first page is read again and again, and turning a record into
    a ``Notification`` (thirty fields) cost about 1 us a row: 20 us of a
    20-row GetNotifications, the largest part of a PostgreSQL read that is
    this service's own. A record whose columns equal
    the ones a row was made from gives that row again: the check is one
    comparison of the column values in C, and a hit is exactly what
    ``to_row`` would build, since ``to_row`` depends on nothing else. Rows
    are shared between readers, which the ``Store`` protocol allows (read
    rows are read-only). Columns after the table's (a page's counts) take no
    part. Bounded by rows held; starts over when full.
    """

    def __init__(self, max_rows: int = DEFAULT_MEMO_ROWS) -> None:
        self._max_rows = max_rows
        self._rows: dict[Any, tuple[tuple[Any, ...], Notification]] = {}

    def many(self, records: Sequence[Any]) -> list[Notification]:
        rows = self._rows
        out: list[Notification] = []
        for record in records:
            values = record[:_WIDTH]
            found = rows.get(values[0])
            if found is not None and found[0] == values:
                out.append(found[1])
                continue
            row = to_row(record)
            if len(rows) >= self._max_rows:
                rows.clear()
            rows[values[0]] = (values, row)
            out.append(row)
        return out

    def __len__(self) -> int:
        return len(self._rows)
