"""fastjson must agree with protobuf's json_format on every message of the contract."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor as F
from google.protobuf.message import Message

from notify.api import fastjson

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
        numbers = [v.number for v in field.enum_type.values]
        return rng.choice([*numbers, 99])  # 99: a value this build does not know
    if kind in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return rng.choice([0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63)])
    if kind in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return rng.choice([0, 7, -7, 2**31 - 1, -(2**31)])
    raise AssertionError(f"the contract has a field type this test does not fill: {kind}")


def fill(rng: random.Random, message: Message, depth: int = 0) -> Message:
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
            if depth < 3:
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
