"""Writes "an error in this request's protocol", for answers given before connect-python.

The limits middleware refuses some requests before the Connect app sees them
(too big, bad headers, no credentials, gRPC over HTTP/1.1). A client must
read such a refusal the way it reads any other error of its protocol, or it
reports a transport failure instead of a code:
- Connect unary: the HTTP status of the code and a JSON ``{"code", "message"}`` body;
- Connect streaming: HTTP 200 and an end-stream frame (flag 0x02) carrying the error;
- gRPC: HTTP 200 and ``grpc-status``/``grpc-message`` trailers; where the server
  has no trailers (HTTP/1.1), the status goes in the headers (trailers-only form);
- gRPC-Web: HTTP 200 and a trailer frame (flag 0x80).
Messages are fixed strings chosen by the caller, never exception text.
"""

from __future__ import annotations

import json
import struct
import urllib.parse
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from connectrpc.code import Code

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]

# The HTTP status of each code on Connect unary (the Connect protocol's table).
HTTP_STATUS = {
    Code.CANCELED: 499, Code.UNKNOWN: 500, Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504, Code.NOT_FOUND: 404, Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403, Code.RESOURCE_EXHAUSTED: 429, Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409, Code.OUT_OF_RANGE: 400, Code.UNIMPLEMENTED: 501, Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503, Code.DATA_LOSS: 500, Code.UNAUTHENTICATED: 401,
}  # fmt: skip

GRPC_STATUS = {
    Code.CANCELED: 1, Code.UNKNOWN: 2, Code.INVALID_ARGUMENT: 3, Code.DEADLINE_EXCEEDED: 4,
    Code.NOT_FOUND: 5, Code.ALREADY_EXISTS: 6, Code.PERMISSION_DENIED: 7,
    Code.RESOURCE_EXHAUSTED: 8, Code.FAILED_PRECONDITION: 9, Code.ABORTED: 10,
    Code.OUT_OF_RANGE: 11, Code.UNIMPLEMENTED: 12, Code.INTERNAL: 13, Code.UNAVAILABLE: 14,
    Code.DATA_LOSS: 15, Code.UNAUTHENTICATED: 16,
}  # fmt: skip


class Wire(Enum):
    """The RPC protocol of a request, from its content type."""

    CONNECT_UNARY = "connect"
    CONNECT_STREAM = "connect_stream"
    GRPC = "grpc"
    GRPC_WEB = "grpc_web"

    @property
    def enveloped(self) -> bool:
        """Whether the body is a sequence of 5-byte-prefixed messages."""
        return self is not Wire.CONNECT_UNARY


def wire_of(content_type: str) -> Wire:
    if content_type.startswith("application/grpc-web"):
        return Wire.GRPC_WEB
    if content_type.startswith("application/grpc"):
        return Wire.GRPC
    if content_type.startswith("application/connect+"):
        return Wire.CONNECT_STREAM
    return Wire.CONNECT_UNARY


async def send_error(
    send: Send,
    wire: Wire,
    code: Code,
    message: str,
    *,
    content_type: str = "",
    trailers: bool = False,
    close: bool = False,
    http_status: int | None = None,
) -> None:
    """Answers the whole request with ``code``.

    ``trailers``: the server supports the ASGI trailers extension (gRPC needs it
    unless the status is sent in the headers). ``close``: ask an HTTP/1.1 client to
    close the connection (the rest of its body will not be read). ``http_status``
    overrides the status where the protocol allows it (gRPC on HTTP/1.1: 415).
    """
    extra: list[tuple[bytes, bytes]] = [(b"connection", b"close")] if close else []
    if wire is Wire.CONNECT_UNARY:
        body = json.dumps({"code": code.value, "message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await _respond(send, http_status or HTTP_STATUS[code], headers, body)
    elif wire is Wire.CONNECT_STREAM:
        end = json.dumps({"error": {"code": code.value, "message": message}}).encode()
        stream_type = content_type if content_type.startswith("application/connect+") else ""
        headers = [
            (b"content-type", (stream_type or "application/connect+proto").encode()),
            *extra,
        ]
        await _respond(send, 200, headers, struct.pack(">BI", 0x02, len(end)) + end)
    elif wire is Wire.GRPC_WEB:
        status = _grpc_status_lines(code, message)
        headers = [
            (b"content-type", _grpc_content_type(content_type, "application/grpc-web+proto"))
        ]
        frame = struct.pack(">BI", 0x80, len(status)) + status
        await _respond(send, 200, [*headers, *extra], frame)
    else:
        grpc_type = _grpc_content_type(content_type, "application/grpc+proto")
        status_headers = [
            (b"grpc-status", str(GRPC_STATUS[code]).encode()),
            (b"grpc-message", _percent(message).encode()),
        ]
        if trailers and http_status is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", grpc_type)],
                    "trailers": True,
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            await send(
                {
                    "type": "http.response.trailers",
                    "headers": status_headers,
                    "more_trailers": False,
                }
            )
        else:
            headers = [(b"content-type", grpc_type), *status_headers, (b"content-length", b"0")]
            await _respond(send, http_status or 200, [*headers, *extra], b"")


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _grpc_content_type(requested: str, default: str) -> bytes:
    return (requested if requested.startswith(default.split("+")[0]) else default).encode()


def _percent(message: str) -> str:
    return urllib.parse.quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _grpc_status_lines(code: Code, message: str) -> bytes:
    return (f"grpc-status: {GRPC_STATUS[code]}\r\ngrpc-message: {_percent(message)}\r\n").encode()
