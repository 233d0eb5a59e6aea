"""uvicorn's httptools protocol with a deadline and a size cap on each request head.

uvicorn (0.54.0) has a keep-alive timeout, armed only between requests and
cancelled by any byte received: a client that sends its headers at one byte a
second (slowloris) holds the connection, and its header buffer, for ever.
Here each request head must be complete within ``header_timeout`` (from the
connection's start, or the request's first byte on a kept-alive connection)
and within ``max_header_bytes``; otherwise the connection gets a 408 or 431 and
is closed. The body's own deadline is the limits middleware's (it applies to
HTTP/2 as well).

Each request's scope also carries a ``BodyWriter`` under the ASGI extension
``notify.body_writer``: a way for a stream to write a chunk of its response
body straight to the connection, from whatever task has the bytes (a
fan-out), instead of waking the response's own task to pass it down the ASGI
chain. It writes only while nothing else of the response is in flight.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

HEADER_TIMEOUT = "header_timeout"
# The scope extension a BodyWriter is under (notify.api.context reads it).
BODY_WRITER = "notify.body_writer"
HEADERS_TOO_LARGE = "headers_too_large"

_408 = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"connection: close\r\ncontent-length: 0\r\n\r\n"
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        *args: Any,
        header_timeout: float,
        max_header_bytes: int,
        on_lost: Callable[[], None],
        on_cut: Callable[[str], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._max_header_bytes = max_header_bytes
        self._on_lost = on_lost
        self._on_cut = on_cut
        self._in_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self._max_header_bytes:
            self._cut(_431, HEADERS_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # not an upgrade
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[BODY_WRITER] = BodyWriter(self, cycle)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
        self._on_lost()

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self._header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._cut(_408, HEADER_TIMEOUT)

    def _cut(self, response: bytes, reason: str) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        self._on_cut(reason)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(response)  # nothing else is being answered on it
        self.transport.close()


class BodyWriter:
    """Writes chunks of one chunked response body straight to its connection.

    ``ready`` says whether a chunk may go now: the response has started,
    chunked, and is not complete; the client is there; the connection is not
    applying back-pressure (then the caller queues instead, and the stream's
    own task writes when it drains, as it does without this). The caller
    must also know that nothing of its own is in flight on the ASGI path
    (the stream's task is idle), or chunks could overtake each other.
    """

    __slots__ = ("_cycle", "_protocol")

    def __init__(self, protocol: HttpToolsProtocol, cycle: RequestResponseCycle) -> None:
        # Weak: the writer sits in the cycle's scope, and a strong reference
        # back would make every request a reference cycle, left for the
        # collector instead of freed when the request ends.
        self._protocol = weakref.ref(protocol)
        self._cycle = weakref.ref(cycle)

    def ready(self) -> bool:
        cycle, protocol = self._cycle(), self._protocol()
        return (
            cycle is not None
            and protocol is not None
            and cycle.response_started
            and cycle.chunked_encoding is True
            and not cycle.response_complete
            and not cycle.disconnected
            and not protocol.flow.write_paused
            and not protocol.transport.is_closing()
        )

    def write(self, data: bytes) -> None:
        """One chunk; call only when ``ready`` said so in the same step."""
        protocol = self._protocol()
        if protocol is not None:
            protocol.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
