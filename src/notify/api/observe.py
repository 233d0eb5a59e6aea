"""ASGI middleware around each API app: outcome, latency and disconnects.

It reads the outcome of every call off the wire it sends, whatever produced
it (a handler, or connect-python rejecting malformed input), so the metrics
count protocol errors too:
- Connect unary: the HTTP status, and the ``code`` of the JSON error body;
- Connect streaming: the end-of-stream frame (flag 0x02) JSON;
- gRPC: the ``grpc-status`` trailer; gRPC-Web: the trailer frame (flag 0x80);
- Server-Sent Events (protocol ``sse``): the HTTP status, then the data of the
  stream's ``end`` event (Connect's end-of-stream JSON).
It also surfaces ``http.disconnect`` to the request's RequestInfo, so a stream
ends the moment its client goes away instead of at its next write.

Credentials never reach a log: the RPC line has the path without its query,
and an ``access_token`` query parameter (Server-Sent Events) is redacted in
the scope the HTTP servers keep, before any response starts, so their access
logs (when an operator turns them on) cannot write it either. The app below
still reads the real value from its own copy of the scope.

A large Connect unary answer also gets its ``content-length`` here.
connect-python (0.9.0) starts every unary response without one, so uvicorn
sends the body chunked, and chunking joins the size line, the body and the
terminator into a new buffer: one more copy of the whole answer (a page of
100 rich rows is about 200 KiB), which measured 6% of such a page's
throughput. The start of a unary answer waits for its body (connect-python
sends the two back to back), and a body of at least ``_SIZED_BODY`` bytes
that ends the response is announced by its length. Smaller answers stay
chunked: the copy is cheaper than the extra header.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
import zlib
from collections.abc import Iterable
from typing import Any

from notify.api.context import BODY_WRITER, RequestInfo, current_request
from notify.logs import log_fields
from notify.metrics import Metrics

ASGIApp = Any
Message = dict[str, Any]

# gRPC status numbers -> Connect code names.
_GRPC_CODES = (
    "ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
    "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
    "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss",
    "unauthenticated",
)  # fmt: skip

# What Connect clients infer from an HTTP status without an error body, except
# 405 and 415: the client asked for an HTTP method or a media type this server
# does not implement, so they count as ``unimplemented`` like a 404 (a client's
# mistake), not as ``unknown`` (a server fault that the error-ratio alert counts).
_HTTP_CODES = {
    400: "internal", 401: "unauthenticated", 403: "permission_denied", 404: "unimplemented",
    405: "unimplemented", 415: "unimplemented", 429: "unavailable", 502: "unavailable",
    503: "unavailable", 504: "unavailable",
}  # fmt: skip

# An end-of-stream frame bigger than this is not inflated to read its code.
_MAX_END_FRAME = 64 * 1024

_REQUEST_ID_HEADER = b"x-request-id"
_CONTENT_LENGTH = b"content-length"
# A unary answer from this size on is sent with a content-length (see above).
_SIZED_BODY = 16 * 1024
# Request media types of Connect unary calls, whose answer is one body.
_UNARY_TYPES = ("application/json", "application/proto")


class _RequestIds:
    """Random request ids, 8 bytes each, from one ``os.urandom`` call per 512 of them.

    As unpredictable as an ``os.urandom(8)`` per request (the same source),
    without a system call on every request's path.
    """

    __slots__ = ("_at", "_pool")

    _SIZE = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool = os.urandom(self._SIZE)
            at = 0
        self._at = at + 8
        return self._pool[at : at + 8].hex()

    def reset(self) -> None:
        """Drops what is left (a forked child must not repeat its parent's ids)."""
        self._pool = b""
        self._at = 0


_new_request_id = _RequestIds()
os.register_at_fork(after_in_child=_new_request_id.reset)

_SSE_END = b"event: end\ndata: "

rpc_log = logging.getLogger("notify.rpc")

_SECRET_PARAMETERS = frozenset({"access_token"})


def redact_query(query: bytes) -> bytes:
    """The query string with the value of every credential parameter replaced."""
    fields = query.split(b"&")
    redacted = False
    for index, field in enumerate(fields):
        name = field.partition(b"=")[0]
        if urllib.parse.unquote_plus(name.decode("latin-1")) in _SECRET_PARAMETERS:
            fields[index] = name + b"=REDACTED"
            redacted = True
    return b"&".join(fields) if redacted else query


def protocol_of(method: str, content_type: str) -> str:
    if content_type.startswith("application/grpc-web"):
        return "grpc_web"
    if content_type.startswith("application/grpc"):
        return "grpc"
    if method in ("POST", "GET"):
        return "connect"
    return "http"


class Outcome:
    """Follows the response messages and settles on one Connect code."""

    __slots__ = ("_enveloped", "_error_body", "_status", "code", "protocol")

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self._status = 0
        self._error_body = b""
        # Whether the body is a series of envelopes (streams, gRPC-Web); a unary
        # Connect body is the bare message, whose first byte is no flag.
        self._enveloped = protocol == "grpc_web"
        self.code = "unknown"

    def observe(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = message["status"]
            self.code = "ok" if self._status == 200 else _HTTP_CODES.get(self._status, "unknown")
            for name, value in message.get("headers", ()):
                lowered = name.lower()
                if lowered == b"grpc-status":  # gRPC trailers-only form
                    self.code = _grpc_code(value)
                elif lowered == b"content-type" and value.startswith(b"application/connect+"):
                    self._enveloped = True
        elif kind == "http.response.body":
            self._observe_body(message.get("body", b""), message.get("more_body", False))
        elif kind == "http.response.trailers":
            for name, value in message.get("headers", ()):
                if name.lower() == b"grpc-status":
                    self.code = _grpc_code(value)

    def _observe_body(self, body: bytes, more: bool) -> None:
        if self._status != 200:
            self._error_body += body
            if not more:
                self.code = _json_code(self._error_body) or self.code
            return
        if self.protocol == "sse":
            # The SSE transport writes its end event as the body's last chunk.
            if not more and body.startswith(_SSE_END):
                self.code = _end_code(body[len(_SSE_END) :])
            return
        if not self._enveloped:
            return
        flags = body[0] if body else 0
        if self.protocol == "grpc_web" and flags & 0x80:
            for line in _end_payload(body, flags).split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"grpc-status":
                    self.code = _grpc_code(value.strip())
        elif self.protocol == "connect" and flags & 0x02:
            # 0x03 is an end-stream frame compressed with the response encoding.
            self.code = _end_code(_end_payload(body, flags)) or self.code


def _end_code(payload: bytes) -> str:
    """The code of Connect's end-of-stream JSON: ``{}`` is ok; "" if it is not JSON."""
    try:
        end = json.loads(payload)
    except ValueError:
        return ""
    error = end.get("error") if isinstance(end, dict) else None
    return str(error.get("code", "unknown")) if isinstance(error, dict) else "ok"


def _end_payload(frame: bytes, flags: int) -> bytes:
    payload = frame[5:]
    if not flags & 0x01:
        return payload
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return inflater.decompress(payload, _MAX_END_FRAME)
    except zlib.error:
        return b""


def _grpc_code(value: bytes) -> str:
    try:
        return _GRPC_CODES[int(value)]
    except (ValueError, IndexError):
        return "unknown"


def _json_code(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


class ObservedApp:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        procedures: Iterable[str],
        *,
        event_streams: Iterable[str] = (),
    ) -> None:
        self._app = app
        self._event_streams = frozenset(event_streams)  # paths served as Server-Sent Events
        self._requests = metrics.rpc_requests
        self._duration = metrics.rpc_duration
        self._procedures = frozenset(procedures)
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        query = scope.get("query_string", b"")
        if query:
            redacted = redact_query(query)
            if redacted is not query:
                scope["query_string"] = redacted  # what the servers' access logs read
                scope = {**scope, "query_string": query}  # what the app reads
        procedure = path if path in self._procedures else "unknown"
        content_type = ""
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == _REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")[:128]
        info = RequestInfo(request_id or _new_request_id())
        extensions = scope.get("extensions")
        if extensions:
            info.body_writer = extensions.get(BODY_WRITER)
        rid = info.request_id.encode("latin-1")
        outcome = Outcome(
            "sse" if path in self._event_streams else protocol_of(scope["method"], content_type)
        )

        async def observed_receive() -> Message:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                info.mark_disconnected()
            return message

        unary = outcome.protocol == "connect" and content_type.startswith(_UNARY_TYPES)
        held: Message | None = None  # a unary answer's start, until its body

        async def observed_send(message: Message) -> None:
            nonlocal held
            outcome.observe(message)
            if message["type"] == "http.response.start":
                # Echo the request id so a caller can quote it when reporting a problem.
                message["headers"] = [*message.get("headers", ()), (_REQUEST_ID_HEADER, rid)]
                if unary:
                    held = message
                    return
            elif held is not None:
                start, held = held, None
                body = message.get("body", b"")
                if not message.get("more_body") and len(body) >= _SIZED_BODY:
                    headers = start["headers"]
                    if all(name.lower() != _CONTENT_LENGTH for name, _ in headers):
                        headers.append((_CONTENT_LENGTH, b"%d" % len(body)))
                await send(start)
            await send(message)

        token = current_request.set(info)
        try:
            await self._app(scope, observed_receive, observed_send)
            if held is not None:  # a start with no body after it: pass it on as it was
                start, held = held, None
                await send(start)
        finally:
            current_request.reset(token)
            elapsed = time.perf_counter() - started
            code = "canceled" if info.disconnected and outcome.code == "ok" else outcome.code
            labels = (procedure, outcome.protocol, code)
            children = self._children.get(labels)
            if children is None:  # bounded: known procedures x protocols x codes
                children = (self._requests.labels(*labels), self._duration.labels(*labels))
                self._children[labels] = children
            children[0].inc()
            children[1].observe(elapsed)
            # Never the headers: they carry the JWT and the internal token.
            log_fields(
                rpc_log,
                "rpc",
                {
                    "procedure": procedure if procedure != "unknown" else path[:200],
                    "protocol": outcome.protocol,
                    "code": code,
                    "latency_ms": round(elapsed * 1000, 3),
                    "tenant": info.tenant_id,
                    "user": info.user_id,
                    "request_id": info.request_id,
                },
            )
