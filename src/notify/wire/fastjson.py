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
know must not quietly go elsewhere), and two inputs json_format takes by
accident are refused: ``true`` for a float (it reads 1.0) and a numeric string
beyond float32 range (it reads infinity). tests/unit/test_fastjson.py checks
both directions against json_format on randomised messages.

Well-known types get hand-written converters: Struct, Value and ListValue
(see ``_struct`` for why they read the wire bytes rather than the message
objects), Timestamp, Duration, FieldMask, the wrappers and Empty; float and
double fields follow json_format's rules ("NaN"/"Infinity" strings, float32
printed as the shortest decimal that survives the round trip through four
bytes). Only ``google.protobuf.Any`` and proto2 groups still use json_format.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
import struct
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal.type_checkers import ToShortestFloat
from google.protobuf.message import Message

from notify.core.codegen import define

_F = FieldDescriptor
# protobuf's Python and upb descriptor classes differ in type but not in the
# attributes used here; the stubs cannot express that, so they are Any.
Descriptor = Any
Field = Any
_INT64 = {_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64, _F.TYPE_UINT64, _F.TYPE_FIXED64}
_INT32 = {_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32, _F.TYPE_UINT32, _F.TYPE_FIXED32}
_UNSIGNED = {_F.TYPE_UINT32, _F.TYPE_FIXED32, _F.TYPE_UINT64, _F.TYPE_FIXED64}
_FLOATING = {_F.TYPE_FLOAT, _F.TYPE_DOUBLE}

_STRUCT = "google.protobuf.Struct"
_VALUE = "google.protobuf.Value"
_LIST_VALUE = "google.protobuf.ListValue"
_TIMESTAMP = "google.protobuf.Timestamp"
_DURATION = "google.protobuf.Duration"
_FIELD_MASK = "google.protobuf.FieldMask"
_NULL_VALUE = "google.protobuf.NullValue"
_ANY = "google.protobuf.Any"
_WRAPPERS_FILE = "google/protobuf/wrappers.proto"

# The ranges json_format (and the ProtoJSON spec) allow.
_TIMESTAMP_MIN = -62135596800  # 0001-01-01T00:00:00Z
_TIMESTAMP_MAX = 253402300799  # 9999-12-31T23:59:59Z
_DURATION_MAX = 315576000000  # 10,000 years of seconds
_NANOS = 1_000_000_000
# Doubles below this round to a finite float32. json_format refuses anything
# above the largest float32 itself, which its own output for that value is
# (3.4028235e+38), so it cannot read back what it writes; this is the real limit.
_FLOAT32_LIMIT = float.fromhex("0x1.ffffffp+127")


class JSONDecodeError(ValueError):
    """The JSON does not fit the message; the text says which field and why."""


def _is_wrapper(descriptor: Descriptor) -> bool:
    return bool(descriptor.file.name == _WRAPPERS_FILE)


def _supported(descriptor: Descriptor, seen: set[str] | None = None) -> bool:
    """Whether every type reachable from ``descriptor`` has a compiled converter."""
    seen = set() if seen is None else seen
    if descriptor.full_name in seen:
        return True
    seen.add(descriptor.full_name)
    if descriptor.full_name == _ANY:
        return False  # its JSON depends on a type registry; json_format has one
    for field in descriptor.fields:
        if field.type == _F.TYPE_GROUP:
            return False
        if field.message_type is not None and not _supported(field.message_type, seen):
            return False
    return True


# ---------------------------------------------------------------- encoding: scalars


def _non_finite(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _double(value: float) -> float | str:
    """A double field: orjson would write NaN and Infinity as null; ProtoJSON wants strings."""
    if value - value == 0:  # false for NaN and both infinities
        return value
    return _non_finite(value)


def _float(value: float) -> float | str:
    """A float field: json_format prints the shortest decimal that is the same float32."""
    if value - value == 0:
        return ToShortestFloat(value)
    return _non_finite(value)


# ---------------------------------------------------------------- encoding: well-known types

_EPOCH = datetime.datetime(1970, 1, 1)
_timedelta = datetime.timedelta


def _fraction(nanos: int) -> str:
    """0, 3, 6 or 9 fractional digits: the fewest that are exact, as json_format writes."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1000 == 0:
        return f".{nanos // 1000:06d}"
    return f".{nanos:09d}"


def _timestamp(message: Any) -> str:
    seconds, nanos = message.seconds, message.nanos
    if not _TIMESTAMP_MIN <= seconds <= _TIMESTAMP_MAX or not 0 <= nanos < _NANOS:
        raise ValueError(f"Timestamp out of range: seconds {seconds}, nanos {nanos}")
    return (_EPOCH + _timedelta(seconds=seconds)).isoformat() + _fraction(nanos) + "Z"


def _duration(message: Any) -> str:
    seconds, nanos = message.seconds, message.nanos
    if (
        not -_DURATION_MAX <= seconds <= _DURATION_MAX
        or not -_NANOS < nanos < _NANOS
        or (seconds < 0 < nanos)
        or (nanos < 0 < seconds)
    ):
        raise ValueError(f"Duration out of range: seconds {seconds}, nanos {nanos}")
    sign = "-" if seconds < 0 or nanos < 0 else ""
    return f"{sign}{abs(seconds)}{_fraction(abs(nanos))}s"


def _field_mask(message: Any) -> str:
    # The message's own conversion (camelCase paths joined by ","), which also
    # refuses paths that would not survive the trip back, as json_format does.
    text: str = message.ToJsonString()
    return text


# Struct, Value and ListValue. Reading a Struct through its message objects
# costs about 0.8 us per value in upb (every map entry and list element becomes
# a Python wrapper, and each Value needs WhichOneof and a getattr); its wire
# bytes come out of C in about 2 ns a byte, and walking those bytes here is
# about twice as fast. The layout read is the one upb writes: a Struct is map
# entries (field 1, key 1 then value 2), a ListValue repeated Values (field 1),
# a Value one member of its oneof. Anything else (unknown fields kept from a
# newer peer) makes the walk give up and read the objects instead.


class _Unexpected(Exception):
    """The bytes are not laid out as the wire walk expects."""


_unpack_double = struct.Struct("<d").unpack_from


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    number = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            return number, pos
        shift += 7


def _wire_value(buf: bytes, pos: int, end: int) -> Any:
    """The JSON value of the Value whose body is ``buf[pos:end]``."""
    if pos == end:
        return None  # no kind set: json_format writes null
    tag = buf[pos]
    if tag == 0x11:  # number_value, 8 bytes
        number: float = _unpack_double(buf, pos + 1)[0]
        if number - number != 0:
            raise ValueError(f"{number} cannot be a google.protobuf.Value number in JSON")
        return number
    if tag == 0x20:  # bool_value
        return buf[pos + 1] != 0
    if tag == 0x08:  # null_value
        return None
    length = buf[pos + 1]
    start = pos + 2
    if length >= 0x80:
        length, start = _varint(buf, pos + 1)
    if tag == 0x1A:  # string_value
        return buf[start : start + length].decode()
    if tag == 0x2A:  # struct_value
        return _wire_struct(buf, start, start + length)
    if tag == 0x32:  # list_value
        return _wire_list(buf, start, start + length)
    raise _Unexpected


def _wire_struct(buf: bytes, pos: int, end: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    while pos < end:
        if buf[pos] != 0x0A:
            raise _Unexpected
        length = buf[pos + 1]
        pos += 2
        if length >= 0x80:
            length, pos = _varint(buf, pos - 1)
        stop = pos + length
        key = ""
        if pos < stop and buf[pos] == 0x0A:
            length = buf[pos + 1]
            pos += 2
            if length >= 0x80:
                length, pos = _varint(buf, pos - 1)
            key = buf[pos : pos + length].decode()
            pos += length
        if pos == stop:
            out[key] = None
            continue
        if buf[pos] != 0x12:
            raise _Unexpected
        length = buf[pos + 1]
        pos += 2
        if length >= 0x80:
            length, pos = _varint(buf, pos - 1)
        if pos + length != stop:
            raise _Unexpected
        out[key] = _wire_value(buf, pos, stop)
        pos = stop
    return out


def _wire_list(buf: bytes, pos: int, end: int) -> list[Any]:
    out: list[Any] = []
    append = out.append
    while pos < end:
        if buf[pos] != 0x0A:
            raise _Unexpected
        length = buf[pos + 1]
        pos += 2
        if length >= 0x80:
            length, pos = _varint(buf, pos - 1)
        append(_wire_value(buf, pos, pos + length))
        pos += length
    return out


def _object_value(message: Any) -> Any:
    """The same JSON value as ``_wire_value``, read through the message objects."""
    kind = message.WhichOneof("kind")
    if kind == "string_value":
        return message.string_value
    if kind == "number_value":
        number = message.number_value
        if number - number != 0:
            raise ValueError(f"{number} cannot be a google.protobuf.Value number in JSON")
        return number
    if kind == "struct_value":
        return _object_struct(message.struct_value)
    if kind == "list_value":
        return [_object_value(item) for item in message.list_value.values]
    if kind == "bool_value":
        return message.bool_value
    return None


def _object_struct(message: Any) -> dict[str, Any]:
    return {key: _object_value(value) for key, value in message.fields.items()}


# A notification fanned out to many users, or a page fetched again, carries
# the same Struct many times: the JSON text of recent ones is kept by their
# wire bytes (the walk is a function of those bytes only) and handed to orjson
# as a Fragment, which it copies into its output without looking inside.
_STRUCT_CACHE_ENTRIES = 1024
_STRUCT_CACHE_MAX_BYTES = 64 * 1024
_struct_cache: dict[bytes, bytes] = {}


def _struct(message: Any) -> orjson.Fragment:
    buf: bytes = message.SerializeToString()
    text = _struct_cache.get(buf)
    if text is None:
        try:
            tree = _wire_struct(buf, 0, len(buf))
        except _Unexpected:
            tree = _object_struct(message)
        text = orjson.dumps(tree)
        if len(buf) <= _STRUCT_CACHE_MAX_BYTES:
            if len(_struct_cache) >= _STRUCT_CACHE_ENTRIES:
                del _struct_cache[next(iter(_struct_cache))]  # the oldest entry
            _struct_cache[buf] = text
    return orjson.Fragment(text)


def _list_value(message: Any) -> list[Any]:
    buf: bytes = message.SerializeToString()
    try:
        return _wire_list(buf, 0, len(buf))
    except _Unexpected:
        return [_object_value(item) for item in message.values]


def _value(message: Any) -> Any:
    buf: bytes = message.SerializeToString()
    try:
        return _wire_value(buf, 0, len(buf))
    except _Unexpected:
        return _object_value(message)


_WELL_KNOWN_ENCODERS: dict[str, Callable[[Any], Any]] = {
    _STRUCT: _struct,
    _VALUE: _value,
    _LIST_VALUE: _list_value,
    _TIMESTAMP: _timestamp,
    _DURATION: _duration,
    _FIELD_MASK: _field_mask,
}


# ---------------------------------------------------------------- encoding: compiled messages

# Each message type gets a function generated as straight-line Python source,
# e.g. ``def encode(m): out = {"id": m.id, "createdAtMs": str(m.created_at_ms)}``:
# no per-field loop or tuple unpacking, which halves the cost again. Caches are
# keyed by descriptor object: two pools may hold different types of one name.
_encoders: dict[Any, Callable[[Any], Any]] = {}


def _encoder(descriptor: Descriptor) -> Callable[[Any], Any]:
    encoder = _encoders.get(descriptor)
    if encoder is None:
        encoder = _WELL_KNOWN_ENCODERS.get(descriptor.full_name)
        if encoder is None:
            encoder = _compile_encoder(descriptor)
        _encoders[descriptor] = encoder
    return encoder


def _compile_encoder(descriptor: Descriptor) -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {"b64": base64.b64encode, "f32": _float, "f64": _double}

    def value_expr(field: Field, var: str) -> str:
        if field.type in _INT64:
            return f"str({var})"
        if field.type == _F.TYPE_BYTES:
            return f"b64({var}).decode('ascii')"
        if field.type == _F.TYPE_FLOAT:
            return f"f32({var})"
        if field.type == _F.TYPE_DOUBLE:
            return f"f64({var})"
        if field.type == _F.TYPE_ENUM:
            if field.enum_type.full_name == _NULL_VALUE:
                return "None"
            table = f"enum_{field.enum_type.full_name.replace('.', '_')}"
            namespace[table] = {v.number: v.name for v in field.enum_type.values}
            return f"{table}.get({var}, {var})"
        if field.type == _F.TYPE_MESSAGE:
            nested = f"msg_{field.message_type.full_name.replace('.', '_')}"
            if field.message_type.full_name in _WELL_KNOWN_ENCODERS or _is_wrapper(
                field.message_type
            ):
                namespace[nested] = _encoder(field.message_type)  # no recursion possible
            else:
                namespace[nested] = _LazyEncoder(field.message_type)
            return f"{nested}({var})"
        return var

    if _is_wrapper(descriptor):
        # Int32Value, StringValue, ...: the JSON is the bare value of field 1.
        lines = ["def encode(m):", f"    return {value_expr(descriptor.fields[0], 'm.value')}"]
        define("\n".join(lines), namespace)  # source built above from the descriptor only
        wrapper: Callable[[Any], Any] = namespace["encode"]
        return wrapper

    lines = ["def encode(m):", "    out = {}"]
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
    define("\n".join(lines), namespace)  # source built above from the descriptor only
    encoder: Callable[[Any], Any] = namespace["encode"]
    return encoder


class _LazyEncoder:
    """Resolves a nested message's encoder on first use (types may refer to each other)."""

    __slots__ = ("_descriptor", "_encode")

    def __init__(self, descriptor: Descriptor) -> None:
        self._descriptor = descriptor
        self._encode: Callable[[Any], Any] | None = None

    def __call__(self, message: Any) -> Any:
        if self._encode is None:
            self._encode = _encoder(self._descriptor)
        return self._encode(message)


# ---------------------------------------------------------------- decoding: scalars

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


_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _floating(single: bool) -> Decoder:
    """A float or double: a number, a numeric string, or "NaN", "Infinity", "-Infinity"."""

    def decode(value: Any, where: str) -> float:
        if isinstance(value, bool):
            raise JSONDecodeError(f"{where}: expected a number, got a boolean")
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            special = _SPECIAL_FLOATS.get(value)
            if special is not None:
                return special
            try:
                number = float(value)
            except ValueError:
                raise JSONDecodeError(f"{where}: {value!r} is not a number") from None
        else:
            raise JSONDecodeError(f"{where}: expected a number")
        if number - number != 0:
            raise JSONDecodeError(f'{where}: write {value!r} as "NaN", "Infinity" or "-Infinity"')
        if single and not -_FLOAT32_LIMIT < number < _FLOAT32_LIMIT:
            raise JSONDecodeError(f"{where}: {value!r} is out of range for a float")
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
    null_is_zero = field.enum_type.full_name == _NULL_VALUE

    def decode(value: Any, where: str) -> int:
        if isinstance(value, str):
            number = numbers.get(value)
            if number is None:
                raise JSONDecodeError(f"{where}: unknown {field.enum_type.name} value {value!r}")
            return number
        if value is None and null_is_zero:
            return 0  # NullValue is written as null
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
    if kind in _FLOATING:
        return _floating(kind == _F.TYPE_FLOAT)
    if kind == _F.TYPE_MESSAGE:
        return _LazyDecoder(field.message_type)
    raise TypeError(f"unsupported field type {kind}")  # excluded by _supported()


def _message_class(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


# ---------------------------------------------------------------- decoding: well-known types


def _fill_value(target: Any, value: Any) -> None:
    """Sets a Value from parsed JSON, as json_format does (orjson gives exact types)."""
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is float or kind is int:
        target.number_value = value
    elif kind is dict:
        nested = target.struct_value
        nested.SetInParent()
        fields = nested.fields
        for key, item in value.items():
            _fill_value(fields[key], item)
    elif kind is list:
        items = target.list_value
        items.SetInParent()
        add = items.values.add
        for item in value:
            _fill_value(add(), item)
    elif kind is bool:
        target.bool_value = value
    elif value is None:
        target.null_value = 0
    else:
        raise TypeError(f"not a JSON value: {value!r}")


def _struct_decoder(descriptor: Descriptor) -> Decoder:
    cls = _message_class(descriptor)

    def decode(value: Any, where: str) -> Message:
        if not isinstance(value, dict):
            raise JSONDecodeError(f"{where or 'Struct'}: expected a JSON object")
        message = cls()
        fields = message.fields  # type: ignore[attr-defined]
        for key, item in value.items():
            _fill_value(fields[key], item)
        return message

    return decode


def _list_value_decoder(descriptor: Descriptor) -> Decoder:
    cls = _message_class(descriptor)

    def decode(value: Any, where: str) -> Message:
        if not isinstance(value, list):
            raise JSONDecodeError(f"{where or 'ListValue'}: expected a list")
        message = cls()
        add = message.values.add  # type: ignore[attr-defined]
        for item in value:
            _fill_value(add(), item)
        return message

    return decode


def _value_decoder(descriptor: Descriptor) -> Decoder:
    cls = _message_class(descriptor)

    def decode(value: Any, where: str) -> Message:
        message = cls()
        _fill_value(message, value)
        return message

    return decode


# The shape json_format's own output and most clients use; anything else
# (other spellings json_format also takes) goes to the message's own parser.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)


def _timestamp_decoder(descriptor: Descriptor) -> Decoder:
    cls = _message_class(descriptor)

    def decode(value: Any, where: str) -> Message:
        if not isinstance(value, str):
            raise JSONDecodeError(f"{where or 'Timestamp'}: expected an RFC 3339 string")
        match = _RFC3339.fullmatch(value)
        if match is None:
            return _from_json_string(cls, value, where)
        year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
        try:
            moment = datetime.datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second)
            )
        except ValueError as exc:
            raise JSONDecodeError(f"{where or 'Timestamp'}: {value!r}: {exc}") from None
        delta = moment - _EPOCH
        seconds = delta.days * 86400 + delta.seconds
        if sign is not None:
            offset = (int(off_h) * 60 + int(off_m)) * 60
            seconds += -offset if sign == "+" else offset
        # json_format's arithmetic, so both agree to the nanosecond.
        nanos = round(float("0." + fraction) * 1e9) if fraction else 0
        if not _TIMESTAMP_MIN <= seconds <= _TIMESTAMP_MAX:
            raise JSONDecodeError(f"{where or 'Timestamp'}: {value!r} is out of range")
        return cls(seconds=seconds, nanos=nanos)

    return decode


def _from_json_string(cls: type[Message], value: Any, where: str) -> Message:
    """Duration, FieldMask and unusual Timestamps: the type's own parser (as json_format uses)."""
    name = cls.DESCRIPTOR.name
    if not isinstance(value, str):
        raise JSONDecodeError(f"{where or name}: expected a string")
    message = cls()
    try:
        message.FromJsonString(value)  # type: ignore[attr-defined]
    except (ValueError, IndexError, TypeError) as exc:
        raise JSONDecodeError(f"{where or name}: {exc}") from None
    return message


def _string_form_decoder(descriptor: Descriptor) -> Decoder:
    cls = _message_class(descriptor)
    return lambda value, where: _from_json_string(cls, value, where)


def _wrapper_decoder(descriptor: Descriptor) -> Decoder:
    cls = _message_class(descriptor)
    scalar = _scalar_decoder(descriptor.fields_by_name["value"])
    return lambda value, where: cls(value=scalar(value, where))


_WELL_KNOWN_DECODERS: dict[str, Callable[[Descriptor], Decoder]] = {
    _STRUCT: _struct_decoder,
    _VALUE: _value_decoder,
    _LIST_VALUE: _list_value_decoder,
    _TIMESTAMP: _timestamp_decoder,
    _DURATION: _string_form_decoder,
    _FIELD_MASK: _string_form_decoder,
}


# ---------------------------------------------------------------- decoding: messages

# JSON name (and proto name) -> (field name, 0 singular / 1 repeated / 2 map,
# map key decoder, value decoder, oneof name or None, whether null is a value).
_DecodePlan = dict[str, tuple[str, int, Decoder | None, Decoder, str | None, bool]]
_decode_plans: dict[Any, _DecodePlan] = {}
_message_decoders: dict[Any, Decoder] = {}


def _message_decoder(descriptor: Descriptor) -> Decoder:
    decoder = _message_decoders.get(descriptor)
    if decoder is None:
        well_known = _WELL_KNOWN_DECODERS.get(descriptor.full_name)
        if well_known is not None:
            decoder = well_known(descriptor)
        elif _is_wrapper(descriptor):
            decoder = _wrapper_decoder(descriptor)
        else:
            plan = _decode_plan(descriptor)
            cls = _message_class(descriptor)

            def decoder(value: Any, where: str) -> Message:
                return _decode(plan, cls, value, where)

        _message_decoders[descriptor] = decoder
    return decoder


class _LazyDecoder:
    """Resolves a nested message's decoder on first use (types may refer to each other)."""

    __slots__ = ("_decode", "_descriptor")

    def __init__(self, descriptor: Descriptor) -> None:
        self._descriptor = descriptor
        self._decode: Decoder | None = None

    def __call__(self, value: Any, where: str) -> Any:
        if self._decode is None:
            self._decode = _message_decoder(self._descriptor)
        return self._decode(value, where)


def _null_is_a_value(field: Field) -> bool:
    """A JSON null sets a Value or NullValue field (json_format); elsewhere it means unset."""
    if field.message_type is not None:
        return bool(field.message_type.full_name == _VALUE)
    return field.enum_type is not None and field.enum_type.full_name == _NULL_VALUE


def _decode_plan(descriptor: Descriptor) -> _DecodePlan:
    plan = _decode_plans.get(descriptor)
    if plan is not None:
        return plan
    plan = {}
    _decode_plans[descriptor] = plan
    for field in descriptor.fields:
        entry: tuple[str, int, Decoder | None, Decoder, str | None, bool]
        oneof = field.containing_oneof.name if field.containing_oneof is not None else None
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            key_decoder = _map_key_decoder(key_field)
            entry = (field.name, 2, key_decoder, _scalar_decoder(value_field), None, False)
        elif field.is_repeated:
            entry = (field.name, 1, None, _scalar_decoder(field), None, _null_is_a_value(field))
        else:
            entry = (field.name, 0, None, _scalar_decoder(field), oneof, _null_is_a_value(field))
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
    oneofs: dict[str, str] = {}
    prefix = f"{where}." if where else ""
    for key, value in data.items():
        entry = plan.get(key)
        if entry is None:
            continue  # unknown fields are ignored, as Connect clients expect
        name, kind, key_decoder, decoder, oneof, nullable = entry
        if value is None and not nullable:
            continue
        path = prefix + name
        if name in values:
            raise JSONDecodeError(f"{path}: given twice")
        if oneof is not None:
            other = oneofs.get(oneof)
            if other is not None:
                raise JSONDecodeError(
                    f"{path}: {other} is already set and both are in oneof {oneof}"
                )
            oneofs[oneof] = name
        if kind == 0:
            values[name] = decoder(value, path)
        elif kind == 1:
            if not isinstance(value, list):
                raise JSONDecodeError(f"{path}: expected a list")
            if not nullable and any(item is None for item in value):
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
    supported = _supported_cache.get(descriptor)
    if supported is None:
        supported = _supported_cache[descriptor] = _supported(descriptor)
    return supported


_supported_cache: dict[Any, bool] = {}


def to_json(message: Message) -> bytes:
    """The message as compact JSON; raises ValueError where json_format raises."""
    descriptor = message.DESCRIPTOR
    if not _fast(descriptor):
        return json_format.MessageToJson(
            message, indent=None, always_print_fields_with_no_presence=True
        ).encode()
    return orjson.dumps(_encoder(descriptor)(message))


def parse_into(data: bytes, message: Message) -> None:
    """Fills ``message`` from JSON; raises JSONDecodeError (a ValueError) on bad input."""
    descriptor = message.DESCRIPTOR
    if not _fast(descriptor):
        try:
            json_format.Parse(data or b"{}", message, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise JSONDecodeError(str(exc)) from None
        return
    try:
        obj = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError as exc:
        raise JSONDecodeError(f"not valid JSON: {exc}") from None
    parsed = _message_decoder(descriptor)(obj, "")
    message.CopyFrom(parsed)
