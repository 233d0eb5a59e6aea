"""ASGI middleware that applies the request limits before connect-python does any work.

connect-python reads a whole body, then decompresses it, then checks its size;
it decodes headers as UTF-8 and parses ``grpc-timeout`` with exceptions whose
text it sends as a 500 ``unknown``. In front of it, per request and in order:

1. headers: at most ``max_headers`` of at most ``max_header_bytes`` in all, every
   name, value and the query string valid UTF-8, ``grpc-timeout`` and
   ``connect-timeout-ms`` well formed: else INVALID_ARGUMENT (or RESOURCE_EXHAUSTED);
2. gRPC (not gRPC-Web) without the ASGI trailers extension, i.e. over HTTP/1.1:
   HTTP 415 with ``grpc-status`` 12 (UNIMPLEMENTED) in the headers;
3. ``precheck(headers)``, on the app's own procedures: a cheap look at the
   credentials' presence and shape, so an anonymous request is refused before
   its body is read or inflated;
4. a declared ``Content-Length`` over ``max_request_bytes``: RESOURCE_EXHAUSTED at once;
5. while the body streams in: bytes counted and cut at ``max_request_bytes``; for
   enveloped protocols each envelope's declared length checked from its 5-byte
   header, and a compressed flag without a request encoding refused; the body
   must arrive within ``body_timeout`` (slow uploads hold a connection and memory).
   Past a limit, ``receive`` raises a ConnectError, which connect-python answers
   in the request's own protocol (JSON body, end-stream frame or trailers).

Refusals of steps 1-4 are written by ``wire_errors``. Over HTTP/1.1, a refusal that
leaves body unread asks the client to close the connection (``Connection: close``),
so the server does not go on reading and discarding it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from notify.api.wire_errors import Wire, send_error, wire_of

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

# Returns None to let the request through, or why its credentials are missing.
Precheck = Callable[[Headers], str | None]

_GRPC_TIMEOUT = re.compile(rb"[0-9]{1,8}[HMSmun]")
_CONNECT_TIMEOUT = re.compile(rb"[0-9]{1,10}")


@dataclass(frozen=True, slots=True)
class RequestLimits:
    max_request_bytes: int = 4 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    body_timeout: float = 30.0


class _Refused(Exception):
    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LimitsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limits: RequestLimits,
        precheck: Precheck | None = None,
        *,
        procedures: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._limits = limits
        self._precheck = precheck
        # The precheck applies to these paths only: any other is answered
        # not found (unimplemented) by connect-python, whoever asks.
        self._procedures = frozenset(procedures)
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers: Headers = scope.get("headers", ())
        content_type = _header(headers, b"content-type")
        wire = wire_of(content_type.decode("latin-1"))
        trailers = "http.response.trailers" in scope.get("extensions", {})
        http1 = scope.get("http_version", "1.1") != "2"
        try:
            refusal = self._check_head(scope, headers, wire, trailers)
        except _Refused as exc:
            await send_error(
                send, wire, exc.code, exc.message,
                content_type=content_type.decode("latin-1"), trailers=trailers, close=http1,
            )  # fmt: skip
            return
        if refusal is not None:  # gRPC over HTTP/1.1
            await send_error(
                send, wire, Code.UNIMPLEMENTED, refusal, content_type=content_type.decode(),
                close=True, http_status=415,
            )  # fmt: skip
            return
        body = _BodyGuard(self._limits, wire, headers, self._clock)
        refused_body = False

        async def guarded_receive() -> Message:
            nonlocal refused_body
            try:
                return await body.receive(receive)
            except ConnectError:
                refused_body = True
                raise

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start" and refused_body:
                message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
            await send(message)

        try:
            # Only HTTP/1.1 closes the connection after a refused body: HTTP/2
            # gets ``send`` itself, one call and one closure fewer per message.
            await self._app(scope, guarded_receive, guarded_send if http1 else send)
        finally:
            body.disarm()

    def _check_head(self, scope: Scope, headers: Headers, wire: Wire, trailers: bool) -> str | None:
        limits = self._limits
        if len(headers) > limits.max_headers:
            raise _Refused(Code.RESOURCE_EXHAUSTED, f"more than {limits.max_headers} headers")
        size = 0
        for name, value in headers:
            size += len(name) + len(value)
            if not (_utf8(name) and _utf8(value)):
                raise _Refused(Code.INVALID_ARGUMENT, "a header is not valid UTF-8")
        if size > limits.max_header_bytes:
            raise _Refused(
                Code.RESOURCE_EXHAUSTED, f"headers are larger than {limits.max_header_bytes} bytes"
            )
        if not _utf8(scope.get("query_string", b"")):
            raise _Refused(Code.INVALID_ARGUMENT, "the query string is not valid UTF-8")
        if wire in (Wire.GRPC, Wire.GRPC_WEB):
            timeout = _header(headers, b"grpc-timeout")
            if timeout and not _GRPC_TIMEOUT.fullmatch(timeout):
                raise _Refused(
                    Code.INVALID_ARGUMENT,
                    "grpc-timeout must be 1 to 8 digits and a unit (H, M, S, m, u, n)",
                )
        else:
            timeout = _header(headers, b"connect-timeout-ms")
            if timeout and not _CONNECT_TIMEOUT.fullmatch(timeout):
                raise _Refused(Code.INVALID_ARGUMENT, "connect-timeout-ms must be 1 to 10 digits")
        if wire is Wire.GRPC and not trailers:
            return "gRPC needs HTTP/2; over HTTP/1.1 use gRPC-Web or Connect"
        if self._precheck is not None and scope["path"] in self._procedures:
            missing = self._precheck(headers)
            if missing is not None:
                raise _Refused(Code.UNAUTHENTICATED, missing)
        declared = _header(headers, b"content-length")
        if declared.isdigit() and int(declared) > limits.max_request_bytes:
            raise _Refused(Code.RESOURCE_EXHAUSTED, _too_large(limits.max_request_bytes))
        return None


_CLOSE = (b"connection", b"close")


class _BodyGuard:
    """Counts a request body as it streams and parses its envelope headers."""

    def __init__(
        self, limits: RequestLimits, wire: Wire, headers: Headers, clock: Callable[[], float]
    ) -> None:
        self._max = limits.max_request_bytes
        self._deadline = clock() + limits.body_timeout
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._expired = False
        self._received = 0
        self._done = False
        self._enveloped = wire.enveloped
        encoding_header = (
            b"grpc-encoding"
            if wire in (Wire.GRPC, Wire.GRPC_WEB)
            else (b"connect-content-encoding")
        )
        encoding = _header(headers, encoding_header)
        self._identity = encoding in (b"", b"identity")
        # Envelope parsing: bytes of the current header seen, and payload left to skip.
        self._head = bytearray()
        self._skip = 0

    async def receive(self, receive: Receive) -> Message:
        if self._done:
            return await receive()  # after the body: only http.disconnect comes
        if self._timer is None:
            # One timer per request, not one per receive: most bodies arrive with
            # their headers, and a timeout context per await cost more than the
            # rest of these checks together.
            loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            remaining = max(self._deadline - self._clock(), 0.0)
            self._timer = loop.call_at(loop.time() + remaining, self._expire)
        try:
            message = await receive()
        except asyncio.CancelledError:
            if self._expired and self._task is not None and self._task.uncancel() == 0:
                raise ConnectError(
                    Code.DEADLINE_EXCEEDED, "the request body did not arrive in time"
                ) from None
            raise
        if self._expired:
            self._expired = False
            if self._task is not None:
                self._task.uncancel()
            raise ConnectError(Code.DEADLINE_EXCEEDED, "the request body did not arrive in time")
        if message["type"] != "http.request":
            return message
        chunk: bytes = message.get("body", b"")
        self._received += len(chunk)
        if self._received > self._max:
            self.disarm()
            raise ConnectError(Code.RESOURCE_EXHAUSTED, _too_large(self._max))
        if self._enveloped:
            self._scan(chunk)
        if not message.get("more_body", False):
            self._done = True
            self.disarm()
        return message

    def disarm(self) -> None:
        """The body is in (or the request is over): the deadline no longer applies."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._task = None

    def _expire(self) -> None:
        self._timer = None
        if not self._done and self._task is not None:
            self._expired = True
            self._task.cancel()

    def _scan(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                view = view[step:]
                continue
            need = 5 - len(self._head)
            self._head += view[:need]
            view = view[need:]
            if len(self._head) < 5:
                return
            flags = self._head[0]
            length = int.from_bytes(self._head[1:5], "big")
            self._head.clear()
            if length > self._max:
                raise ConnectError(Code.RESOURCE_EXHAUSTED, _too_large(self._max))
            if flags & 0x01 and self._identity:
                raise ConnectError(
                    Code.INVALID_ARGUMENT, "a message is flagged compressed but no encoding is set"
                )
            self._skip = length


def _too_large(limit: int) -> str:
    return f"request is larger than the limit of {limit} bytes"


def _header(headers: Headers, name: bytes) -> bytes:
    for key, value in headers:
        if key == name:
            return value
    return b""


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def bearer_precheck(headers: Headers) -> str | None:
    """The client port: an ``Authorization: Bearer <token>`` must be there (not verified)."""
    value = _header(headers, b"authorization")
    if not value:
        return "missing Authorization header (Bearer token)"
    if len(value) > 8192:
        return "Authorization header is too long"
    if value[:7].lower() != b"bearer " or not value[7:].strip():
        return "Authorization header must be 'Bearer <token>'"
    return None


def internal_token_precheck(headers: Headers) -> str | None:
    """The internal port outside dev mode: the shared token header must be there."""
    if not _header(headers, b"x-notify-internal-token"):
        return "missing X-Notify-Internal-Token header"
    return None
