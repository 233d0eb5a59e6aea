"""A live stream's fan-out frames written straight to its HTTP/1.1 connection.

A Notify to a user with a thousand open streams offers one row to a thousand
sessions. Through the ASGI path each frame wakes its stream's task, which
passes it down the generator, connect-python's envelope writer, the
interceptors' stream wrapper and two middlewares to uvicorn. Here, while a
stream's task is idle (nothing of it in flight), the session hands the event
to ``ConnectFrameSink``, which writes the frame's envelope in the stream's
codec as one chunk through the server's ``BodyWriter``: the same bytes the
ASGI path would have written (tests/e2e/test_direct_frames.py compares them),
in the same order, without a task switch.

Only where that is exactly equivalent: Connect server streaming (JSON or
binary) over HTTP/1.1, with no response compression (a client that accepts
one gets every frame through connect-python, which compresses it), and
Server-Sent Events over HTTP/1.1 (``SseFrameSink``; ``sse_frame`` writes
the same event for its ASGI path, from the same kept row bytes). The
other events (heartbeats, updates, data changes) and everything while the
connection applies back-pressure take the usual path, so a slow reader's
queue fills and is cut exactly as before.
"""

from __future__ import annotations

import struct

from notify.api.context import BodyWriter
from notify.realtime.hub import CountsPush
from notify.service.live import LiveNotification, StreamItem
from notify.wire.streamevents import StreamEventWriter

_ENVELOPE = struct.Struct(">BI")  # flags (0: an uncompressed message), length

_CODECS = {"application/connect+json": "json", "application/connect+proto": "proto"}


def stream_codec(content_type: str, accept_encoding: str) -> str | None:
    """``json`` or ``proto`` for a Connect stream that can be written directly; else None."""
    codec = _CODECS.get(content_type.split(";", 1)[0].strip().lower())
    if codec is None:
        return None
    offered = {e.strip().lower() for e in accept_encoding.split(",") if e.strip()}
    if offered - {"identity"}:
        return None  # connect-python may compress this stream's messages
    return codec


class _FrameSink:
    """What both sinks hold: the connection's writer, the frames, the session."""

    __slots__ = ("_frames", "_session_id", "_writer")

    def __init__(self, writer: BodyWriter, frames: StreamEventWriter, session_id: str) -> None:
        self._writer = writer
        self._frames = frames
        self._session_id = session_id

    def ready(self) -> bool:
        return self._writer.ready()


class ConnectFrameSink(_FrameSink):
    """Writes a stream's notification and counts frames as enveloped chunks."""

    __slots__ = ("_codec",)

    def __init__(
        self, writer: BodyWriter, frames: StreamEventWriter, session_id: str, codec: str
    ) -> None:
        super().__init__(writer, frames, session_id)
        self._codec = codec

    def send(self, item: StreamItem) -> None:
        frames, session_id = self._frames, self._session_id
        json = self._codec == "json"
        if isinstance(item, LiveNotification):
            row, token = item.notification, item.resume_token
            if json:
                data = frames.notification_json(session_id, row, token)
            else:
                data = frames.notification_proto(session_id, row, token)
        elif isinstance(item, CountsPush):
            if json:
                data = frames.counts_json(session_id, item.counts)
            else:
                data = frames.counts_proto(session_id, item.counts)
        else:  # the live stream hands over only the two kinds above
            raise TypeError(f"no direct frame for {type(item).__name__}")
        self._writer.write(_ENVELOPE.pack(0, len(data)) + data)


def sse_frame(frames: StreamEventWriter, session_id: str, item: StreamItem) -> bytes | None:
    """A notification or counts item as its Server-Sent Event, from the kept row bytes.

    The ``data`` line is the Connect JSON of the StreamEvent (compact: no raw
    line break), the same JSON value ``notify.api.sse.event_bytes`` writes
    through protobuf (``tests/unit/test_streamevents.py``); None for the other
    kinds, which that function writes.
    """
    if isinstance(item, LiveNotification):
        token = item.resume_token
        data = frames.notification_json(session_id, item.notification, token)
        head = (
            b"id: " + token.encode() + b"\nevent: notification\ndata: "
            if token
            else (b"event: notification\ndata: ")
        )
        return head + data + b"\n\n"
    if isinstance(item, CountsPush):
        return b"event: counts\ndata: " + frames.counts_json(session_id, item.counts) + b"\n\n"
    return None


class SseFrameSink(_FrameSink):
    """Writes an SSE stream's notification and counts events as chunks."""

    __slots__ = ()

    def send(self, item: StreamItem) -> None:
        chunk = sse_frame(self._frames, self._session_id, item)
        if chunk is None:  # the live stream hands over only the two kinds it writes
            raise TypeError(f"no direct frame for {type(item).__name__}")
        self._writer.write(chunk)
