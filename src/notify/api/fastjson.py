"""Proto3 JSON for this service's messages, compiled per message type.

protobuf's ``json_format`` walks descriptors in pure Python for every field
of every message; a 20-row GetNotifications answer cost about 0.5 ms of CPU
that way. Here each message type is turned once into generated code that
builds a dict, and orjson does the text (a 20-row page: 9 us, against 80 us
for the standard library's C encoder). Output is
the same JSON value as ``json_format.MessageToJson(...,
always_print_fields_with_no_presence=True)`` (compact, fields in declaration
order, UTF-8 rather than escape sequences); input follows ``json_format.Parse(...,
ignore_unknown_fields=True)`` except that an unknown enum *name* is an error
rather than silently dropped (a Notify naming a channel this server does not
know must not quietly go elsewhere). tests/unit/test_fastjson.py checks both
against json_format on randomised messages. Message types this module does
not cover (floats, well-known types, oneofs in requests) use json_format.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_F = FieldDescriptor
# protobuf's Python and upb descriptor classes differ in type but not in the
# attributes used here; the stubs cannot express that, so they are Any.
Descriptor = Any
Field = Any
_INT64 = {_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64, _F.TYPE_UINT64, _F.TYPE_FIXED64}
_INT32 = {_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32, _F.TYPE_UINT32, _F.TYPE_FIXED32}
_UNSIGNED = {_F.TYPE_UINT32, _F.TYPE_FIXED32, _F.TYPE_UINT64, _F.TYPE_FIXED64}
_UNSUPPORTED = {_F.TYPE_FLOAT, _F.TYPE_DOUBLE, _F.TYPE_GROUP}


class JSONDecodeError(ValueError):
    """The JSON does not fit the message; the text says which field and why."""


def _supported(descriptor: Descriptor, seen: set[str] | None = None) -> bool:
    seen = set() if seen is None else seen
    if descriptor.full_name in seen:
        return True
    seen.add(descriptor.full_name)
    if descriptor.full_name.startswith("google.protobuf."):
        return False
    for field in descriptor.fields:
        if field.type in _UNSUPPORTED:
            return False
        if field.message_type is not None and not _supported(field.message_type, seen):
            return False
    return True


# ---------------------------------------------------------------- encoding

# Each message type gets a function generated as straight-line Python source,
# e.g. ``def encode(m): out = {"id": m.id, "createdAtMs": str(m.created_at_ms)}``:
# no per-field loop or tuple unpacking, which halves the cost again.
_encoders: dict[str, Callable[[Any], dict[str, Any]]] = {}


def _encoder(descriptor: Descriptor) -> Callable[[Any], dict[str, Any]]:
    encoder = _encoders.get(descriptor.full_name)
    if encoder is None:
        encoder = _compile_encoder(descriptor)
    return encoder


def _compile_encoder(descriptor: Descriptor) -> Callable[[Any], dict[str, Any]]:
    namespace: dict[str, Any] = {"b64": base64.b64encode}
    lines = ["def encode(m):", "    out = {}"]

    def value_expr(field: Field, var: str) -> str:
        if field.type in _INT64:
            return f"str({var})"
        if field.type == _F.TYPE_BYTES:
            return f"b64({var}).decode('ascii')"
        if field.type == _F.TYPE_ENUM:
            table = f"enum_{field.enum_type.full_name.replace('.', '_')}"
            namespace[table] = {v.number: v.name for v in field.enum_type.values}
            return f"{table}.get({var}, {var})"
        if field.type == _F.TYPE_MESSAGE:
            nested = f"msg_{field.message_type.full_name.replace('.', '_')}"
            namespace[nested] = _LazyEncoder(field.message_type)
            return f"{nested}({var})"
        return var

    for field in descriptor.fields:
        key = json.dumps(field.json_name)
        attr = f"m.{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            key_expr = "('true' if k else 'false')" if key_field.type == _F.TYPE_BOOL else "str(k)"
            lines.append(
                f"    out[{key}] = {{{key_expr}: {value_expr(value_field, 'v')} "
                f"for k, v in {attr}.items()}}"
            )
        elif field.is_repeated:
            lines.append(f"    out[{key}] = [{value_expr(field, 'v')} for v in {attr}]")
        elif field.has_presence:
            lines.append(f"    if m.HasField({field.name!r}):")
            lines.append(f"        out[{key}] = {value_expr(field, attr)}")
        else:
            lines.append(f"    out[{key}] = {value_expr(field, attr)}")
    lines.append("    return out")
    exec("\n".join(lines), namespace)  # source built above from the descriptor only
    encoder: Callable[[Any], dict[str, Any]] = namespace["encode"]
    _encoders[descriptor.full_name] = encoder
    return encoder


class _LazyEncoder:
    """Resolves a nested message's encoder on first use (types may refer to each other)."""

    __slots__ = ("_descriptor", "_encode")

    def __init__(self, descriptor: Descriptor) -> None:
        self._descriptor = descriptor
        self._encode: Callable[[Any], dict[str, Any]] | None = None

    def __call__(self, message: Any) -> dict[str, Any]:
        if self._encode is None:
            self._encode = _encoder(self._descriptor)
        return self._encode(message)


# ---------------------------------------------------------------- decoding

Decoder = Callable[[Any, str], Any]

_INT32_RANGE = (-(2**31), 2**31 - 1)
_UINT32_RANGE = (0, 2**32 - 1)
_INT64_RANGE = (-(2**63), 2**63 - 1)
_UINT64_RANGE = (0, 2**64 - 1)


def _integer(low: int, high: int) -> Decoder:
    def decode(value: Any, where: str) -> int:
        if isinstance(value, bool):
            raise JSONDecodeError(f"{where}: expected an integer, got a boolean")
        if isinstance(value, int):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                raise JSONDecodeError(f"{where}: {value!r} is not an integer") from None
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise JSONDecodeError(f"{where}: expected an integer")
        if not low <= number <= high:
            raise JSONDecodeError(f"{where}: {number} is out of range")
        return number

    return decode


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise JSONDecodeError(f"{where}: expected a string")
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise JSONDecodeError(f"{where}: expected true or false")
    return value


def _bytes(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise JSONDecodeError(f"{where}: expected a base64 string")
    try:
        text = value.replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise JSONDecodeError(f"{where}: not valid base64") from None


def _enum(field: Field) -> Decoder:
    numbers: dict[str, int] = {v.name: v.number for v in field.enum_type.values}
    as_int = _integer(*_INT32_RANGE)

    def decode(value: Any, where: str) -> int:
        if isinstance(value, str):
            number = numbers.get(value)
            if number is None:
                raise JSONDecodeError(f"{where}: unknown {field.enum_type.name} value {value!r}")
            return number
        return int(as_int(value, where))

    return decode


def _scalar_decoder(field: Field) -> Decoder:
    kind = field.type
    if kind == _F.TYPE_STRING:
        return _string
    if kind == _F.TYPE_BOOL:
        return _boolean
    if kind == _F.TYPE_BYTES:
        return _bytes
    if kind == _F.TYPE_ENUM:
        return _enum(field)
    if kind in _INT64:
        return _integer(*(_UINT64_RANGE if kind in _UNSIGNED else _INT64_RANGE))
    if kind in _INT32:
        return _integer(*(_UINT32_RANGE if kind in _UNSIGNED else _INT32_RANGE))
    if kind == _F.TYPE_MESSAGE:
        message_class = _message_class(field.message_type)

        def decode_message(value: Any, where: str) -> Message:
            return _decode(_decode_plan(field.message_type), message_class, value, where)

        return decode_message
    raise TypeError(f"unsupported field type {kind}")  # excluded by _supported()


def _message_class(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


_DecodePlan = dict[str, tuple[str, int, Decoder | None, Decoder]]
_decode_plans: dict[str, _DecodePlan] = {}


def _decode_plan(descriptor: Descriptor) -> _DecodePlan:
    plan = _decode_plans.get(descriptor.full_name)
    if plan is not None:
        return plan
    plan = {}
    _decode_plans[descriptor.full_name] = plan
    for field in descriptor.fields:
        entry: tuple[str, int, Decoder | None, Decoder]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            key_decoder = _map_key_decoder(key_field)
            entry = (field.name, 2, key_decoder, _scalar_decoder(value_field))
        elif field.is_repeated:
            entry = (field.name, 1, None, _scalar_decoder(field))
        else:
            entry = (field.name, 0, None, _scalar_decoder(field))
        plan[field.json_name] = entry
        plan[field.name] = entry
    return plan


def _map_key_decoder(field: Field) -> Decoder:
    if field.type == _F.TYPE_STRING:
        return _string
    if field.type == _F.TYPE_BOOL:

        def decode_bool_key(value: Any, where: str) -> bool:
            if value not in ("true", "false"):
                raise JSONDecodeError(f"{where}: map key must be true or false")
            return bool(value == "true")

        return decode_bool_key
    scalar = _scalar_decoder(field)
    return lambda value, where: scalar(value, where)


def _decode(plan: _DecodePlan, message_class: type[Message], data: Any, where: str) -> Message:
    if not isinstance(data, dict):
        raise JSONDecodeError(f"{where or 'message'}: expected a JSON object")
    values: dict[str, Any] = {}
    for key, value in data.items():
        entry = plan.get(key)
        if entry is None or value is None:
            continue  # unknown fields are ignored, as Connect clients expect
        name, kind, key_decoder, decoder = entry
        if name in values:
            raise JSONDecodeError(f"{where}{name}: given twice")
        path = f"{where}{name}"
        if kind == 0:
            values[name] = decoder(value, path)
        elif kind == 1:
            if not isinstance(value, list):
                raise JSONDecodeError(f"{path}: expected a list")
            if any(item is None for item in value):
                raise JSONDecodeError(f"{path}: null is not a valid entry")
            values[name] = [decoder(item, f"{path}[{i}]") for i, item in enumerate(value)]
        else:
            assert key_decoder is not None
            if not isinstance(value, dict):
                raise JSONDecodeError(f"{path}: expected an object")
            values[name] = {
                key_decoder(k, f"{path} key"): decoder(v, f"{path}[{k!r}]")
                for k, v in value.items()
            }
    try:
        return message_class(**values)
    except (TypeError, ValueError) as exc:
        raise JSONDecodeError(f"{where or 'message'}: {exc}") from None


# ---------------------------------------------------------------- public API


def _fast(descriptor: Descriptor) -> bool:
    supported = _supported_cache.get(descriptor.full_name)
    if supported is None:
        supported = _supported_cache[descriptor.full_name] = _supported(descriptor)
    return supported


_supported_cache: dict[str, bool] = {}


def to_json(message: Message) -> bytes:
    descriptor = message.DESCRIPTOR
    if not _fast(descriptor):
        return json_format.MessageToJson(
            message, indent=None, always_print_fields_with_no_presence=True
        ).encode()
    return orjson.dumps(_encoder(descriptor)(message))


def parse_into(data: bytes, message: Message) -> None:
    """Fills ``message`` from JSON; raises JSONDecodeError (a ValueError) on bad input."""
    descriptor = message.DESCRIPTOR
    if not _fast(descriptor) or descriptor.oneofs:
        try:
            json_format.Parse(data or b"{}", message, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise JSONDecodeError(str(exc)) from None
        return
    try:
        obj = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError as exc:
        raise JSONDecodeError(f"not valid JSON: {exc}") from None
    parsed = _decode(_decode_plan(descriptor), type(message), obj, "")
    message.CopyFrom(parsed)
