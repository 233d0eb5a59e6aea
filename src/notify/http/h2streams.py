"""A malformed HTTP/2 request fails its own stream, not the whole connection.

Two faults of hypercorn (0.18.0) over h2 (4.4.1), both asserted below:

1. h2 validates inbound headers itself and raises ProtocolError for, say, an
   upper-case name, a ``connection`` header or a value with a leading space;
   hypercorn answers any ProtocolError with GOAWAY PROTOCOL_ERROR, failing every
   call multiplexed on that connection. RFC 9113 section 8.1.1 makes a malformed
   request a *stream* error. So h2's validation is switched off and the same rules
   (RFC 9113 sections 8.2 and 8.3.1) are checked here per request: a malformed one
   gets RST_STREAM PROTOCOL_ERROR and never reaches the app.
2. DATA or END_STREAM arriving for a stream hypercorn already closed (the app
   answered before reading the whole body, e.g. a call to an unknown service)
   raises KeyError out of the connection task, which kills the connection and logs
   a traceback. Such frames are dropped (their flow-control credit returned).

``install`` is idempotent; ``notify.http.patches`` checks the versions
(hypercorn 0.18.0, h2 4.4.1) and calls it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
from hypercorn.protocol import h2 as hypercorn_h2

_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
_BAD_NAME_BYTES = (
    frozenset(range(0x00, 0x21)) | frozenset(range(0x41, 0x5B)) | frozenset(range(0x7F, 0x100))
)
_BAD_VALUE_BYTES = frozenset(b"\x00\r\n")
_installed = False


def malformed(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a request's header list is malformed (RFC 9113), or None if it is not."""
    pseudo: dict[bytes, bytes] = {}
    regular_seen = False
    for name, value in headers:
        if not name:
            return "empty header name"
        if name[0] == 0x3A:  # ':'
            if regular_seen:
                return "pseudo-header after a regular header"
            if name not in _REQUEST_PSEUDO or name in pseudo:
                return "unknown or repeated pseudo-header"
            pseudo[name] = value
        else:
            regular_seen = True
            if name in _CONNECTION_SPECIFIC:
                return "connection-specific header"
            if name == b"te" and value != b"trailers":
                return "te other than trailers"
        if any(byte in _BAD_NAME_BYTES for byte in name.lstrip(b":")) or b":" in name[1:]:
            return "invalid character in a header name"
        if value and (value[0] in b" \t" or value[-1] in b" \t"):
            return "header value with leading or trailing whitespace"
        if any(byte in _BAD_VALUE_BYTES for byte in value):
            return "invalid character in a header value"
    method = pseudo.get(b":method")
    if not method:
        return "missing :method"
    if method == b"CONNECT" and b":protocol" not in pseudo:
        return None if b":authority" in pseudo else "CONNECT without :authority"
    if not pseudo.get(b":path") or b":scheme" not in pseudo:
        return "missing :scheme or :path"
    return None


def install() -> None:
    global _installed
    if _installed:
        return
    original_init = hypercorn_h2.H2Protocol.__init__
    original_handle_events = hypercorn_h2.H2Protocol._handle_events

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.connection.config.validate_inbound_headers = False

    async def _handle_events(self: Any, events: list[h2.events.Event]) -> None:
        kept: list[h2.events.Event] = []
        opened: set[int] = set()  # requests of this batch, not yet in self.streams
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                if malformed(event.headers or []):
                    with contextlib.suppress(h2.exceptions.ProtocolError):
                        self.connection.reset_stream(
                            event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR
                        )
                    continue
                opened.add(event.stream_id)
            elif isinstance(event, (h2.events.DataReceived, h2.events.StreamEnded)) and (
                event.stream_id not in self.streams and event.stream_id not in opened
            ):
                if isinstance(event, h2.events.DataReceived):
                    with contextlib.suppress(h2.exceptions.ProtocolError):
                        self.connection.acknowledge_received_data(
                            event.flow_controlled_length or 0, event.stream_id
                        )
                continue
            kept.append(event)
        await original_handle_events(self, kept)

    hypercorn_h2.H2Protocol.__init__ = __init__  # type: ignore[method-assign]
    hypercorn_h2.H2Protocol._handle_events = _handle_events  # type: ignore[method-assign]
    _installed = True
