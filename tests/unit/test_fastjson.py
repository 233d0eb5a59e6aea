"""fastjson must agree with protobuf's json_format on every message of the contract."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import FieldDescriptor as F
from google.protobuf.message import Message

from notify.wire import fastjson

MESSAGES = [
    pb.DESCRIPTOR.message_types_by_name[name] for name in pb.DESCRIPTOR.message_types_by_name
]
TEXT = ["", "a", "ünï 日本 🎉", 'q"uote\\', "line\nbreak", "\u2028", "x" * 300]


def random_value(rng: random.Random, field: Any) -> Any:
    kind = field.type
    if kind == F.TYPE_STRING:
        return rng.choice(TEXT)
    if kind == F.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == F.TYPE_ENUM:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return 0  # written as null whatever the number, so only 0 survives the trip
        numbers = [v.number for v in field.enum_type.values]
        return rng.choice([*numbers, 99])  # 99: a value this build does not know
    if kind in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return rng.choice([0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63)])
    if kind in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return rng.choice([0, 7, -7, 2**31 - 1, -(2**31)])
    if kind in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return rng.choice([0, 1, 2**53 + 1, 2**64 - 1])
    if kind in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return rng.choice([0, 7, 2**32 - 1])
    if kind == F.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 12))
    if kind == F.TYPE_DOUBLE:
        return random_double(rng)
    if kind == F.TYPE_FLOAT:
        return random_float32(rng)
    raise AssertionError(f"the contract has a field type this test does not fill: {kind}")


SPECIAL_DOUBLES = [
    0.0,
    -0.0,
    1.0,
    -2.5,
    0.1,
    1e300,
    -1e300,
    5e-324,
    2.0**53 + 2,
    1.7976931348623157e308,
]


def random_double(rng: random.Random) -> float:
    choice = rng.random()
    if choice < 0.1:
        return rng.choice([math.nan, math.inf, -math.inf])
    if choice < 0.5:
        return rng.choice(SPECIAL_DOUBLES)
    return rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300)


def to_float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def random_float32(rng: random.Random) -> float:
    choice = rng.random()
    if choice < 0.1:
        return rng.choice([math.nan, math.inf, -math.inf])
    if choice < 0.5:
        specials = [
            0.0,
            -0.0,
            0.1,
            0.9,
            1.5,
            3.4028234663852886e38,
            1e-45,
            1.17549435e-38,
            16777217.0,
        ]
        return to_float32(rng.choice(specials))
    return to_float32(rng.uniform(-1, 1) * 10.0 ** rng.randint(-38, 38))


KEYS = [*TEXT, "k", "ключ", "鍵", "🔑", "a.b", "with space"]


def random_tree(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value as a Struct holds it: depth <= 4, numbers that are doubles."""
    choice = rng.random()
    if depth < 4 and choice < 0.25:
        return {
            rng.choice(KEYS) + str(i): random_tree(rng, depth + 1) for i in range(rng.randint(0, 4))
        }
    if depth < 4 and choice < 0.4:
        return [random_tree(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(
        [
            None,
            True,
            False,
            rng.choice(TEXT),
            rng.randint(-(2**53), 2**53),
            rng.choice([0.0, -0.0, 1e300, -1e300, 5e-324, 0.5, 1.0, 3.0, -7.25]),
            float(2**53 + 2 * rng.randint(1, 10**6)),  # beyond 2**53: only a double
            float(rng.choice([2**60, 2**64, 10**20])),
            rng.uniform(-1e6, 1e6),
        ]
    )


def set_value(target: Any, tree: Any) -> None:
    """Stores a random_tree in a google.protobuf.Value (always with a kind set)."""
    if isinstance(tree, dict):
        target.struct_value.SetInParent()
        for key, item in tree.items():
            set_value(target.struct_value.fields[key], item)
    elif isinstance(tree, list):
        target.list_value.SetInParent()
        for item in tree:
            set_value(target.list_value.values.add(), item)
    elif tree is None:
        target.null_value = 0
    elif isinstance(tree, bool):
        target.bool_value = tree
    elif isinstance(tree, str):
        target.string_value = tree
    else:
        target.number_value = tree


def random_nanos(rng: random.Random, limit: int = 999_999_999) -> int:
    """Nanoseconds that need 0, 3, 6 or 9 fractional digits."""
    return rng.choice(
        [0, rng.randint(0, 999) * 1_000_000, rng.randint(0, 999_999) * 1000, rng.randint(0, limit)]
    )


def fill_well_known(rng: random.Random, message: Message) -> bool:
    """Fills a well-known type with a random value; False when the type is not one."""
    descriptor = message.DESCRIPTOR
    name = descriptor.full_name
    if name == "google.protobuf.Struct":
        tree = random_tree(rng)
        holder = message.__class__()
        for key, item in (tree if isinstance(tree, dict) else {"only": tree}).items():
            set_value(holder.fields[key], item)  # type: ignore[attr-defined]
        message.CopyFrom(holder)
    elif name == "google.protobuf.Value":
        set_value(message, random_tree(rng))
    elif name == "google.protobuf.ListValue":
        for _ in range(rng.randint(0, 4)):
            set_value(message.values.add(), random_tree(rng, 1))  # type: ignore[attr-defined]
    elif name == "google.protobuf.Timestamp":
        seconds = rng.choice(
            [MIN_SECONDS, MAX_SECONDS, 0, -1, rng.randint(MIN_SECONDS, MAX_SECONDS)]
        )
        message.seconds, message.nanos = seconds, random_nanos(rng)  # type: ignore[attr-defined]
    elif name == "google.protobuf.Duration":
        seconds = rng.choice(
            [0, 1, -1, DURATION_MAX, -DURATION_MAX, rng.randint(-DURATION_MAX, DURATION_MAX)]
        )
        nanos = random_nanos(rng)
        if seconds < 0 or (seconds == 0 and rng.random() < 0.5):
            nanos = -nanos
        message.seconds, message.nanos = seconds, nanos  # type: ignore[attr-defined]
    elif name == "google.protobuf.FieldMask":
        paths = ["a", "foo_bar", "x.y_z", "nested.deep_field_name", "a1.b2"]
        message.paths.extend(rng.sample(paths, rng.randint(0, 3)))  # type: ignore[attr-defined]
    elif name == "google.protobuf.Empty":
        pass
    elif descriptor.file.name == "google/protobuf/wrappers.proto":
        message.value = random_value(rng, descriptor.fields_by_name["value"])  # type: ignore[attr-defined]
    else:
        return False
    return True


MIN_SECONDS, MAX_SECONDS = -62135596800, 253402300799  # 0001-01-01 .. 9999-12-31
DURATION_MAX = 315576000000


def fill(rng: random.Random, message: Message, depth: int = 0) -> Message:
    if fill_well_known(rng, message):
        return message
    descriptor = message.DESCRIPTOR
    chosen_oneofs = {o.name: rng.choice(o.fields).name for o in descriptor.oneofs}
    for field in descriptor.fields:
        if (
            field.containing_oneof is not None
            and chosen_oneofs[field.containing_oneof.name] != field.name
        ):
            continue
        if rng.random() < 0.2:
            continue  # left at its default
        if field.message_type is not None and depth >= 3:
            continue  # keeps self-referring types finite
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for _ in range(rng.randint(0, 3)):
                key = rng.choice(TEXT)
                if value_field.message_type is not None:
                    fill(rng, target[key], depth + 1)
                else:
                    target[key] = random_value(rng, value_field)
        elif field.is_repeated:
            for _ in range(rng.randint(0, 3)):
                if field.message_type is not None:
                    fill(rng, target.add(), depth + 1)
                else:
                    target.append(random_value(rng, field))
        elif field.message_type is not None:
            fill(rng, target, depth + 1)
            target.SetInParent()
        else:
            setattr(message, field.name, random_value(rng, field))
    return message


def reference_json(message: Message) -> Any:
    return json.loads(json_format.MessageToJson(message, always_print_fields_with_no_presence=True))


@pytest.mark.parametrize("descriptor", MESSAGES, ids=lambda d: d.name)
def test_encode_and_decode_agree_with_json_format(descriptor: Any) -> None:
    rng = random.Random(descriptor.full_name)
    cls = type(pb.DESCRIPTOR.message_types_by_name[descriptor.name]._concrete_class())
    for _ in range(200):
        message = fill(rng, cls())
        assert json.loads(fastjson.to_json(message)) == reference_json(message)
        for text in (
            json_format.MessageToJson(message),
            json_format.MessageToJson(message, preserving_proto_field_name=True),
            fastjson.to_json(message),
        ):
            parsed = cls()
            fastjson.parse_into(text.encode() if isinstance(text, str) else text, parsed)
            assert parsed == message


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[]", "expected a JSON object"),
        (b"{", "not valid JSON"),
        (b'{"tenantId": 5}', "expected a string"),
        (b'{"userIds": "u"}', "expected a list"),
        (b'{"userIds": [null]}', "null"),
        (b'{"channels": ["DELIVERY_CHANNEL_CARRIER_PIGEON"]}', "unknown DeliveryChannel"),
        (b'{"channels": [true]}', "boolean"),
        (b'{"channels": [4294967296]}', "out of range"),
        (b'{"addresses": []}', "expected an object"),
        (b'{"addresses": {"u": {"byChannel": {"email": 1}}}}', "expected a string"),
        (b'{"tenantId": "a", "tenant_id": "b"}', "given twice"),
    ],
)
def test_bad_input_names_the_problem(body: bytes, why: str) -> None:
    with pytest.raises(fastjson.JSONDecodeError, match=why):
        fastjson.parse_into(body, pb.NotifyRequest())


def test_lenient_where_json_format_is() -> None:
    request = pb.GetNotificationsRequest()
    fastjson.parse_into(b'{"limit": "7", "unreadOnly": true, "unknownField": {"x": [1]}}', request)
    assert (request.limit, request.unread_only) == (7, True)
    fastjson.parse_into(b"", request)  # an empty body is the empty message
    assert request == pb.GetNotificationsRequest()
    response = pb.NotifyResponse()
    fastjson.parse_into(b'{"delivered": 2.0, "pending": null}', response)
    assert response.delivered == 2


# ---------------------------------------------------------------- well-known types and floats
#
# The contract has no such fields yet, so the test builds its own types: a file
# that imports the well-known types, in a pool of its own, with a singular, a
# repeated and a map field of each, float and double fields, a nested message
# that refers to itself, an optional field and a oneof.

WELL_KNOWN_FILES = [
    struct_pb2,
    timestamp_pb2,
    duration_pb2,
    wrappers_pb2,
    field_mask_pb2,
    empty_pb2,
]
WELL_KNOWN_TYPES = [
    "Struct",
    "Value",
    "ListValue",
    "Timestamp",
    "Duration",
    "FieldMask",
    "Empty",
    "DoubleValue",
    "FloatValue",
    "Int64Value",
    "UInt64Value",
    "Int32Value",
    "UInt32Value",
    "BoolValue",
    "StringValue",
    "BytesValue",
]
FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "ratio": FDP.TYPE_DOUBLE,
    "weight": FDP.TYPE_FLOAT,
    "count": FDP.TYPE_UINT64,
    "blob": FDP.TYPE_BYTES,
    "label": FDP.TYPE_STRING,
}


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for module in WELL_KNOWN_FILES:
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name="fastjson_test/wkt.proto",
        package="fastjson_test",
        syntax="proto3",
        dependency=[module.DESCRIPTOR.name for module in WELL_KNOWN_FILES],
    )
    everything = file.message_type.add(name="Everything")
    number = iter(range(1, 1000))

    def add(message: Any, name: str, kind: int, type_name: str = "", repeated: bool = False) -> Any:
        label = FDP.LABEL_REPEATED if repeated else FDP.LABEL_OPTIONAL
        field = message.field.add(name=name, number=next(number), type=kind, label=label)
        if type_name:
            field.type_name = type_name
        return field

    def add_map(message: Any, name: str, kind: int, type_name: str = "") -> None:
        entry_name = "".join(part.capitalize() for part in name.split("_")) + "Entry"
        entry = message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=FDP.TYPE_STRING, label=FDP.LABEL_OPTIONAL)
        value = entry.field.add(name="value", number=2, type=kind, label=FDP.LABEL_OPTIONAL)
        if type_name:
            value.type_name = type_name
        add(message, name, FDP.TYPE_MESSAGE, f".fastjson_test.{message.name}.{entry_name}", True)

    for wkt in WELL_KNOWN_TYPES:
        type_name, name = f".google.protobuf.{wkt}", snake(wkt)
        add(everything, name, FDP.TYPE_MESSAGE, type_name)
        add(everything, f"{name}_list", FDP.TYPE_MESSAGE, type_name, repeated=True)
        add_map(everything, f"{name}_map", FDP.TYPE_MESSAGE, type_name)
    for name, kind in SCALARS.items():
        add(everything, name, kind)
        add(everything, f"{name}_list", kind, repeated=True)
        add_map(everything, f"{name}_map", kind)
    add(everything, "nothing", FDP.TYPE_ENUM, ".google.protobuf.NullValue")
    add(everything, "inner", FDP.TYPE_MESSAGE, ".fastjson_test.Inner")
    add(everything, "inners", FDP.TYPE_MESSAGE, ".fastjson_test.Inner", repeated=True)
    # proto3 `optional double maybe`: a synthetic oneof of one field
    everything.oneof_decl.add(name="choice")  # synthetic oneofs come last
    for name, kind, type_name in [
        ("chosen_struct", FDP.TYPE_MESSAGE, ".google.protobuf.Struct"),
        ("chosen_time", FDP.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
        ("chosen_int", FDP.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
        ("chosen_value", FDP.TYPE_MESSAGE, ".google.protobuf.Value"),
        ("chosen_inner", FDP.TYPE_MESSAGE, ".fastjson_test.Inner"),
        ("chosen_double", FDP.TYPE_DOUBLE, ""),
        ("chosen_text", FDP.TYPE_STRING, ""),
    ]:
        add(everything, name, kind, type_name).oneof_index = 0
    everything.oneof_decl.add(name="_maybe")
    maybe = add(everything, "maybe", FDP.TYPE_DOUBLE)
    maybe.proto3_optional, maybe.oneof_index = True, 1

    inner = file.message_type.add(name="Inner")
    add(inner, "name", FDP.TYPE_STRING)
    add(inner, "data", FDP.TYPE_MESSAGE, ".google.protobuf.Struct")
    add(inner, "at", FDP.TYPE_MESSAGE, ".google.protobuf.Timestamp")
    add(inner, "score", FDP.TYPE_FLOAT)
    add(inner, "children", FDP.TYPE_MESSAGE, ".fastjson_test.Inner", repeated=True)
    pool.Add(file)
    return pool


POOL = build_pool()
TEST_MESSAGES = [POOL.FindMessageTypeByName(f"fastjson_test.{n}") for n in ("Everything", "Inner")]
TEST_MESSAGES += [POOL.FindMessageTypeByName(f"google.protobuf.{n}") for n in WELL_KNOWN_TYPES]


def same(a: Message, b: Message) -> bool:
    """Equal, to the bit: NaN equals itself and -0.0 differs from 0.0."""
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


class NoFallback:
    """Stands in for json_format inside fastjson: any use of the slow path fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"fastjson fell back to json_format.{name}")


@pytest.fixture
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastjson, "json_format", NoFallback())


@pytest.mark.parametrize("descriptor", TEST_MESSAGES, ids=lambda d: d.name)
def test_well_known_types_agree_with_json_format(descriptor: Any, no_fallback: None) -> None:
    rng = random.Random(descriptor.full_name)
    cls = message_factory.GetMessageClass(descriptor)
    for _ in range(300):
        message = fill(rng, cls())
        assert json.loads(fastjson.to_json(message)) == reference_json(message)
        for text in (
            json_format.MessageToJson(message),
            json_format.MessageToJson(message, preserving_proto_field_name=True),
            fastjson.to_json(message),
        ):
            parsed = cls()
            fastjson.parse_into(text.encode() if isinstance(text, str) else text, parsed)
            assert same(parsed, message), text
        assert same(json_format_parse(fastjson.to_json(message), cls()), message)


def json_format_parse(text: bytes, message: Message) -> Message:
    """json_format.Parse, except that it refuses the largest float32 as it writes it."""
    try:
        return json_format.Parse(text, message)
    except json_format.ParseError as exc:
        if "Float value too large" not in str(exc) or b"3.4028235e+38" not in text:
            raise
        parsed = message.__class__()
        fastjson.parse_into(text, parsed)
        return parsed


def reachable(descriptors: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    todo = list(descriptors)
    while todo:
        descriptor = todo.pop()
        if descriptor.full_name not in found:
            found[descriptor.full_name] = descriptor
            todo.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
    return found


def test_every_reachable_type_is_compiled() -> None:
    types = reachable(MESSAGES) | reachable(TEST_MESSAGES)
    assert {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Empty"} <= set(
        types
    )
    assert [name for name, d in types.items() if not fastjson._supported(d)] == []


EVERYTHING = message_factory.GetMessageClass(TEST_MESSAGES[0])
STRUCT = message_factory.GetMessageClass(POOL.FindMessageTypeByName("google.protobuf.Struct"))
VALUE = message_factory.GetMessageClass(POOL.FindMessageTypeByName("google.protobuf.Value"))


def unencodable() -> list[Message]:
    """Messages json_format refuses to write."""
    out = []
    for number in (math.inf, -math.inf, math.nan):
        nested = EVERYTHING()
        nested.struct.fields["deep"].list_value.values.add().number_value = number
        out += [EVERYTHING(value=VALUE(number_value=number)), nested]
    for seconds, nanos in [(MAX_SECONDS + 1, 0), (MIN_SECONDS - 1, 0), (0, -1), (0, 10**9)]:
        out.append(EVERYTHING(timestamp={"seconds": seconds, "nanos": nanos}))
    for seconds, nanos in [(DURATION_MAX + 1, 0), (1, -1), (-1, 1), (0, 10**9)]:
        out.append(EVERYTHING(duration={"seconds": seconds, "nanos": nanos}))
    out += [EVERYTHING(field_mask={"paths": [path]}) for path in ("fooBar", "foo_", "a__b")]
    return out


@pytest.mark.parametrize("message", unencodable(), ids=str)
def test_what_json_format_cannot_write_raises(message: Message, no_fallback: None) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - json_format's own error type
        json_format.MessageToJson(message)
    with pytest.raises(ValueError):  # noqa: PT011 - which text is fastjson's business
        fastjson.to_json(message)


def test_a_value_without_kind_is_null(no_fallback: None) -> None:
    message = EVERYTHING(value=VALUE(), value_list=[VALUE()], value_map={"k": VALUE()})
    assert json.loads(fastjson.to_json(message)) == reference_json(message)
    assert json.loads(fastjson.to_json(message))["value"] is None
    assert fastjson.to_json(VALUE()) == b"null"


def test_null_sets_a_value_and_unsets_the_rest(no_fallback: None) -> None:
    body = b'{"value": null, "valueList": [null], "nothing": null, "struct": null, "ratio": null}'
    parsed = EVERYTHING()
    fastjson.parse_into(body, parsed)
    assert same(parsed, json_format.Parse(body, EVERYTHING()))
    assert parsed.value.WhichOneof("kind") == "null_value"
    assert not parsed.HasField("struct")


def test_struct_with_fields_the_wire_walk_does_not_know(no_fallback: None) -> None:
    known = STRUCT()
    known.update({"a": [1, "x", {"b": True}], "c": None})
    # field 15 (varint 1) of Struct: unknown, kept by upb and written back out
    message = STRUCT.FromString(known.SerializeToString() + b"\x78\x01")
    assert message.SerializeToString().endswith(b"\x78\x01")
    assert json.loads(fastjson.to_json(message)) == reference_json(message)
    value = VALUE.FromString(b"\x78\x01" + VALUE(string_value="s").SerializeToString())
    assert json.loads(fastjson.to_json(value)) == "s"


def test_struct_cache_is_bounded_and_follows_the_content(
    monkeypatch: pytest.MonkeyPatch, no_fallback: None
) -> None:
    monkeypatch.setattr(fastjson, "_STRUCT_CACHE_ENTRIES", 3)
    monkeypatch.setattr(fastjson, "_struct_cache", {})
    message = STRUCT()
    for i in range(10):
        message["n"] = i
        assert json.loads(fastjson.to_json(message)) == {"n": i}
        assert json.loads(fastjson.to_json(message)) == {"n": i}  # the cached answer
        assert len(fastjson._struct_cache) <= 3
    assert [json.loads(text) for text in fastjson._struct_cache.values()] == [
        {"n": 7},
        {"n": 8},
        {"n": 9},
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'{"chosenText": "a", "chosenDouble": 1}',
        b'{"chosenStruct": {}, "chosenTime": "2020-01-01T00:00:00Z"}',
        b'{"chosen_int": "5", "chosenValue": 3}',
    ],
)
def test_two_members_of_a_oneof_are_refused(body: bytes, no_fallback: None) -> None:
    with pytest.raises(json_format.ParseError):
        json_format.Parse(body, EVERYTHING())
    with pytest.raises(fastjson.JSONDecodeError, match="oneof choice"):
        fastjson.parse_into(body, EVERYTHING())


def test_one_member_of_a_oneof_is_set_even_at_its_default(no_fallback: None) -> None:
    for body in (b'{"chosenText": ""}', b'{"chosenDouble": 0}', b'{"chosenStruct": {}}'):
        parsed = EVERYTHING()
        fastjson.parse_into(body, parsed)
        assert same(parsed, json_format.Parse(body, EVERYTHING()))
        assert parsed.WhichOneof("choice") is not None


TIMESTAMPS = [
    "1972-01-01T10:00:20.021Z",
    "1972-01-01T10:00:20.021-05:00",
    "1972-01-01T10:00:20+01:30",
    "2020-02-29T23:59:59.5Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999Z",
    "2020-1-5T1:2:3Z",  # unpadded: json_format takes it too
    "2020-01-01T00:00:00.123456789+00:00",
    # refused by both
    "2020-02-30T00:00:00Z",
    "2020-01-01T24:00:00Z",
    "2020-01-01T00:00:60Z",
    "2020-01-01T00:00:00",
    "2020-01-01t00:00:00Z",
    "2020-01-01T00:00:00.1234567890Z",
    "2020-01-01T00:00:00Zjunk",
    "0000-12-31T23:59:59Z",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-00:01",
    "10000-01-01T00:00:00Z",
    "yesterday",
    "",
]
DURATIONS = ["1s", "-1.5s", "0.000000001s", "-0.5s", "315576000000s", "1.1s", "+2s"]
DURATIONS += ["1", "1.5", "s", "315576000001s", "1.0000000001s", "", "x s"]
FLOATS = ['"NaN"', '"Infinity"', '"-Infinity"', '"1.5"', "1e38", "-0.0", '"1e-3"', "3"]
FLOATS += ['"nan"', '"abc"', "1e39", "null"]


def decoded_like_json_format(body: bytes) -> None:
    try:
        expected = json_format.Parse(body, EVERYTHING())
    except json_format.ParseError:
        with pytest.raises(fastjson.JSONDecodeError):
            fastjson.parse_into(body, EVERYTHING())
        return
    parsed = EVERYTHING()
    fastjson.parse_into(body, parsed)
    assert same(parsed, expected)


@pytest.mark.parametrize("text", TIMESTAMPS)
def test_timestamps_parse_as_json_format_does(text: str, no_fallback: None) -> None:
    decoded_like_json_format(json.dumps({"timestamp": text, "timestampList": [text]}).encode())


@pytest.mark.parametrize("text", DURATIONS)
def test_durations_parse_as_json_format_does(text: str, no_fallback: None) -> None:
    decoded_like_json_format(json.dumps({"duration": text}).encode())


@pytest.mark.parametrize("text", FLOATS)
def test_floats_parse_as_json_format_does(text: str, no_fallback: None) -> None:
    decoded_like_json_format(
        f'{{"ratio": {text}, "weight": {text}, "floatValue": {text}}}'.encode()
    )


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"ratio": true}', "boolean"),  # json_format reads true as 1.0
        (b'{"weight": "1e39"}', "out of range"),  # json_format: infinity
        (b'{"timestamp": 5}', "RFC 3339"),
        (b'{"timestamp": "2020-02-30T00:00:00Z"}', "timestamp: .*day is out of range"),
        (b'{"inner": {"at": "soon"}}', "inner.at"),
        (b'{"inner": {"children": [{"score": "x"}]}}', r"inner.children\[0\].score"),
        (b'{"struct": []}', "struct: expected a JSON object"),
        (b'{"listValue": {}}', "listValue|list_value: expected a list"),
        (b'{"int64Value": "x"}', "not an integer"),
        (b'{"fieldMask": "a_b"}', "field_mask"),
    ],
)
def test_bad_well_known_input_names_the_field(body: bytes, why: str, no_fallback: None) -> None:
    with pytest.raises(fastjson.JSONDecodeError, match=why):
        fastjson.parse_into(body, EVERYTHING())
