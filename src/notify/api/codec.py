"""Request codecs that behave the way Connect clients expect.

Unknown JSON fields are ignored and malformed JSON or protobuf is
``invalid_argument``, as Connect servers answer; JSON text comes from the
compiled encoder in ``notify.wire.fastjson``. ``notify.http.patches`` puts
these into connect-python's codec registry.
"""

from __future__ import annotations

from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.protobuf.message import DecodeError, Message

from notify.wire import fastjson, prepared


class JSONCodec:
    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        # A handler may have left this very answer to be written from its rows.
        ready = prepared.take(message, "json")
        if ready is not None:
            return ready
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
        ready = prepared.take(message, "proto")
        if ready is not None:
            return ready
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
