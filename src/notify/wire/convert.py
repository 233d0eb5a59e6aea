"""Domain values <-> protobuf messages. Enum numbers are shared, so no tables.

``notification_to_pb`` is generated from the fields ``Notification`` and the
wire message share (by name), so a field added to both needs no edit here;
only fields whose shape differs (actions, the JSON ``data``) have converters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from elloloop.notify.v1 import notify_pb2 as pb
from google.protobuf.struct_pb2 import Struct

from notify.core.codegen import define
from notify.core.errors import InvalidArgument
from notify.core.model import NOTIFICATION_FIELDS, Action, Counts, Notification
from notify.core.preferences import PreferenceRule, Preferences
from notify.wire import fastjson

_STRUCTS: OrderedDict[str, Struct] = OrderedDict()
_MAX_STRUCTS = 1024  # a fan-out of one payload converts it once


def data_to_struct(text: str) -> Struct | None:
    """The stored JSON object as a Struct (cached: many rows share one payload)."""
    if not text:
        return None
    found = _STRUCTS.get(text)
    if found is None:
        found = Struct()
        found.update(orjson.loads(text))
        _STRUCTS[text] = found
        if len(_STRUCTS) > _MAX_STRUCTS:
            _STRUCTS.popitem(last=False)
    else:
        _STRUCTS.move_to_end(text)
    return found


def struct_to_data(struct: Struct, present: bool) -> str:
    """A request's Struct as compact JSON text; "" when the field was not given."""
    if not present:
        return ""
    try:
        return fastjson.to_json(struct).decode()
    except ValueError:
        raise InvalidArgument("data holds a value JSON cannot carry (NaN or Infinity)") from None


def actions_to_pb(actions: Sequence[Action]) -> list[pb.Action]:
    return [pb.Action(id=a.id, label=a.label, url=a.url, primary=a.primary) for a in actions]


def actions_from_pb(actions: Sequence[pb.Action]) -> tuple[Action, ...]:
    return tuple(Action(a.id, a.label, a.url, a.primary) for a in actions)


def counts_to_pb(counts: Counts) -> pb.Counts:
    return pb.Counts(unread=counts.unread, unseen=counts.unseen, total=counts.total)


_SPECIAL = {"actions": "actions_to_pb(row.actions)", "data": "data_to_struct(row.data)"}


def _compile() -> Callable[[Notification], pb.Notification]:
    wire = pb.Notification.DESCRIPTOR.fields_by_name
    shared = [name for name in NOTIFICATION_FIELDS if name in wire]
    args = ", ".join(f"{name}={_SPECIAL.get(name, f'row.{name}')}" for name in shared)
    namespace: dict[str, Any] = {
        "Message": pb.Notification,
        "actions_to_pb": actions_to_pb,
        "data_to_struct": data_to_struct,
    }
    define(f"def to_pb(row):\n    return Message({args})", namespace)  # field names only
    to_pb: Callable[[Notification], pb.Notification] = namespace["to_pb"]
    return to_pb


notification_to_pb = _compile()


def rules_from_pb(rules: Sequence[pb.PreferenceRule]) -> list[tuple[str, int, bool]]:
    """Wire rules as plain triples, for ``notify.core.commands.build_preference_rules``."""
    return [(r.category, r.channel, r.enabled) for r in rules]


def rules_to_pb(rules: Sequence[PreferenceRule]) -> list[pb.PreferenceRule]:
    return [
        pb.PreferenceRule(category=r.category, channel=int(r.channel), enabled=r.enabled)  # type: ignore[arg-type]
        for r in rules
    ]


def preferences_to_pb(preferences: Preferences) -> pb.Preferences:
    return pb.Preferences(
        rules=rules_to_pb(preferences.rules),
        tenant_defaults=rules_to_pb(preferences.tenant.defaults),
        required_categories=preferences.tenant.required_categories,
    )
