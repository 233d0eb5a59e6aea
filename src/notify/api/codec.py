"""Request codecs that behave the way Connect clients expect.

connect-python 0.9.0 decodes with protobuf's strict JSON parser: an unknown
field (which newer clients legitimately send) fails the call as a 500
``unknown``, and malformed JSON or protobuf does too. Connect servers ignore
unknown fields and answer bad input with ``invalid_argument``. connect-python
keeps its codecs in a module-level registry with no public hook, so
``install`` replaces those entries with these; the pinned version in
pyproject.toml is the one this was written against.
"""

from __future__ import annotations

from typing import Any

import connectrpc._codec as connect_codec
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.protobuf.message import DecodeError, Message

from notify.api import fastjson


class JSONCodec:
    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        # Zero values are written out, as the reference does: the Quick Start's
        # Notify answer is {"delivered": 0, "pending": 1, "failed": 0}.
        return fastjson.to_json(message)

    def decode(self, data: bytes | bytearray, message: Any) -> Any:
        try:
            fastjson.parse_into(bytes(data), message)
        except ValueError as exc:
            raise ConnectError(
                Code.INVALID_ARGUMENT, f"request body is not valid JSON for {_name(message)}: {exc}"
            ) from None
        return message


class BinaryCodec:
    def name(self) -> str:
        return "proto"

    def encode(self, message: Message) -> bytes:
        return message.SerializeToString()

    def decode(self, data: bytes | bytearray, message: Any) -> Any:
        try:
            message.ParseFromString(bytes(data))
        except (DecodeError, ValueError):
            raise ConnectError(
                Code.INVALID_ARGUMENT, f"request body is not a valid {_name(message)}"
            ) from None
        return message


def _name(message: Any) -> str:
    return str(message.DESCRIPTOR.full_name)


def install() -> None:
    json_codec = JSONCodec()
    binary_codec = BinaryCodec()
    registry: dict[str, Any] = connect_codec._codecs
    registry[connect_codec.CODEC_NAME_JSON] = json_codec
    registry[connect_codec.CODEC_NAME_JSON_CHARSET_UTF8] = json_codec
    registry[connect_codec.CODEC_NAME_PROTO] = binary_codec
