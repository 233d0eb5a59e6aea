"""Bus events as NOTIFY payloads: a registry of codecs, a compact header, and chunks.

Every event type of ``notify.core.events`` is encoded generically from its
dataclass fields (positionally, nested dataclasses, tuples and enums
included), so a new event type needs one entry in ``REGISTRY`` and nothing
else. ``NotificationsCreated`` is the exception: full rows would not fit in
NOTIFY's 8,000 bytes, so it travels as (tenant, user, id) references and the
receiving replica fetches only the rows it has sessions for (``Announced``).

A payload is ``sender:seq:part:count:to:`` followed by a slice of the JSON
text. An event too big for one payload is cut into several, sent in one
statement (so they arrive together and in order) and joined again by the
``Reassembler``. ``to`` names the replica a reply is addressed to, so every
other replica drops it without parsing JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from notify.core import events
from notify.core.events import BusEvent, NotificationsCreated, Reply

# NOTIFY refuses payloads of 8,000 bytes or more; keep clear of it.
MAX_PAYLOAD_BYTES = 7_900


@dataclass(frozen=True, slots=True)
class RowRef:
    tenant_id: str
    user_id: str
    row_id: str


@dataclass(frozen=True, slots=True)
class Announced:
    """A remote NotificationsCreated before its rows are fetched from the store."""

    origin: str
    ticket: int
    refs: tuple[RowRef, ...]
    # time.time_ns() when the rows were stored, on the origin's clock.
    stored_at_wall_ns: int

    def with_rows(self, rows: tuple[Any, ...]) -> NotificationsCreated:
        """The event as the origin published it, holding only the rows given.

        stored_at_ns is carried over on the wall clock, so the delivery-latency
        histogram includes the trip across replicas (within clock skew).
        """
        elapsed = max(0, time.time_ns() - self.stored_at_wall_ns)
        stored_at_ns = time.perf_counter_ns() - elapsed
        return NotificationsCreated(self.origin, self.ticket, rows, stored_at_ns)


Decoded = BusEvent | Announced


def _encode_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [_encode_value(getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, tuple | list):
        return [_encode_value(v) for v in value]
    return value


def _decoder(hint: Any) -> Callable[[Any], Any]:
    """A function that rebuilds a value of type ``hint`` from its JSON form."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda v: tuple(item(x) for x in v)
        items = [_decoder(a) for a in args]
        return lambda v: tuple(d(x) for d, x in zip(items, v, strict=True))
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"bus events cannot hold union fields ({hint})")
        inner = _decoder(options[0])  # X | None: null, or an X
        return lambda v: None if v is None else inner(v)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    if hint in (str, int, float, bool):
        return lambda v: v
    raise TypeError(f"bus events cannot hold a {hint!r} field")


def _dataclass_decoder(cls: type[Any]) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls)]

    def decode(value: Any) -> Any:
        return cls(**{name: d(v) for (name, d), v in zip(fields, value, strict=True)})

    return decode


class Registry:
    """Event type name -> (encode, decode); generic unless told otherwise."""

    def __init__(self) -> None:
        self._encoders: dict[type[Any], tuple[str, Callable[[Any], Any]]] = {}
        self._decoders: dict[str, Callable[[Any], Decoded]] = {}

    def add(
        self,
        cls: type[Any],
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Decoded] | None = None,
    ) -> None:
        name = cls.__name__
        self._encoders[cls] = (name, encode or _encode_value)
        self._decoders[name] = decode or _dataclass_decoder(cls)

    def __contains__(self, cls: type[Any]) -> bool:
        return cls in self._encoders

    def encode(self, event: BusEvent) -> str:
        name, encode = self._encoders[type(event)]
        return json.dumps([name, encode(event)], separators=(",", ":"), ensure_ascii=True)

    def decode(self, text: str) -> Decoded:
        name, body = json.loads(text)
        return self._decoders[name](body)


def _encode_created(event: NotificationsCreated) -> Any:
    wall = time.time_ns() - max(0, time.perf_counter_ns() - event.stored_at_ns)
    by_tenant: dict[str, list[list[str]]] = {}
    for row in event.rows:
        by_tenant.setdefault(row.tenant_id, []).append([row.user_id, row.id])
    return [event.origin, event.ticket, wall, by_tenant]


def _decode_created(body: Any) -> Announced:
    origin, ticket, wall, by_tenant = body
    refs = tuple(
        RowRef(tenant, user, row_id)
        for tenant, pairs in by_tenant.items()
        for user, row_id in pairs
    )
    return Announced(origin, ticket, refs, wall)


REGISTRY = Registry()
REGISTRY.add(NotificationsCreated, _encode_created, _decode_created)
REGISTRY.add(events.NotificationsTaken)
REGISTRY.add(events.DataChangePublished)
REGISTRY.add(events.DataChangeReached)
REGISTRY.add(events.DataChangeAcked)
REGISTRY.add(events.InboxChanged)


def addressee(event: BusEvent) -> str:
    """The replica a reply is for; "" for an event every replica wants."""
    return event.origin if isinstance(event, Reply) else ""


@dataclass(frozen=True, slots=True)
class Header:
    sender: str
    seq: int
    part: int
    count: int
    to: str


def payloads(text: str, *, sender: str, seq: int, to: str) -> list[str]:
    """The NOTIFY payloads carrying ``text`` (ASCII), each under MAX_PAYLOAD_BYTES."""
    room = MAX_PAYLOAD_BYTES - len(f"{sender}:{seq}:000000:000000:{to}:")
    chunks = [text[i : i + room] for i in range(0, len(text), room)] or [""]
    return [f"{sender}:{seq}:{i}:{len(chunks)}:{to}:{c}" for i, c in enumerate(chunks)]


def parse_header(payload: str) -> tuple[Header, str]:
    sender, seq, part, count, to, body = payload.split(":", 5)
    return Header(sender, int(seq), int(part), int(count), to), body


class Reassembler:
    """Joins the parts of each (sender, seq); one sender's parts arrive in order."""

    def __init__(self) -> None:
        self._partial: dict[tuple[str, int], list[str]] = {}

    def add(self, header: Header, body: str) -> str | None:
        if header.count == 1:
            return body
        key = (header.sender, header.seq)
        parts = self._partial.setdefault(key, [])
        if header.part != len(parts):  # a part went missing (a reconnect): give up on it
            del self._partial[key]
            return None
        parts.append(body)
        if len(parts) < header.count:
            return None
        del self._partial[key]
        return "".join(parts)

    def clear(self) -> None:
        self._partial.clear()

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self._partial)
