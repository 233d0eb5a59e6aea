"""HTTP/1.1 writes gathered over a step of the event loop and sent back to back.

uvicorn's HTTP/1.1 protocol writes a response's status line and headers on
``http.response.start`` and its body on ``http.response.body``, and each
connection's task writes whenever it gets there, between other tasks'
Python work. On loopback or a LAN most of those ``send`` calls find the
peer asleep and pay for waking it: about 20 µs against 1 µs back to back
(the bench measures both at start-up). Under load that is a fifth of a
unary call's cost.

``CoalescingTransport`` stands between the protocol and the real transport
and hands its writes to the loop's ``WriteBatch``. The batch sends what the
connections wrote when the loop step ends (one ``call_soon``), or as soon as
its oldest write has waited ``max_delay`` (checked on each write) or it
holds ``max_bytes``: each connection's writes joined into one ``send``, in
order. A unary answer is then one segment, and the answers of a busy step
leave together, so the peer is woken once for them. The parts go out with
``writelines`` (one writev under uvloop), never joined into a copy: a page
of rich rows is 200 KiB. The price is latency
bounded by ``max_delay`` (``NOTIFY_HTTP_WRITE_DELAY``, 1 ms by default; 0
turns gathering off): docs/benchmarks.md has both sides measured.

Closing a connection sends what it has waiting first; aborting drops it;
what waits counts in ``get_write_buffer_size``, so back-pressure sees it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

Chunk = bytes | bytearray | memoryview

DEFAULT_MAX_DELAY_S = 0.001
MAX_BYTES = 256 * 1024


class WriteBatch:
    """The writes waiting to be sent, for every HTTP/1.1 connection of one loop."""

    __slots__ = (
        "_bytes",
        "_clock",
        "_loop",
        "_max_bytes",
        "_max_delay",
        "_scheduled",
        "_since",
        "_writes",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._loop = loop
        self._max_delay = max_delay_s
        self._max_bytes = max_bytes
        self._clock = clock
        # Per connection, in the order they first wrote: their chunks, in order.
        self._writes: dict[CoalescingTransport, list[Chunk]] = {}
        self._bytes = 0
        self._since = 0.0  # when the oldest waiting write came
        self._scheduled = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, max_delay_s: float) -> WriteBatch:
        """The loop's batch for that delay, shared by its listeners: a Notify's answer
        on one port and the frames it pushes on another leave together."""
        batches = _BATCHES.get(loop)
        if batches is None:
            batches = _BATCHES[loop] = {}
        batch = batches.get(max_delay_s)
        if batch is None:
            batch = batches[max_delay_s] = cls(loop, max_delay_s)
        return batch

    def add(self, transport: CoalescingTransport, data: Chunk) -> None:
        writes = self._writes
        now = self._clock()  # once per write: this is every HTTP/1.1 write's path
        if not writes:
            self._since = now
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._end_of_step)
        parts = writes.get(transport)
        if parts is None:
            writes[transport] = [data]
        else:
            parts.append(data)
        self._bytes += len(data)
        if self._bytes >= self._max_bytes or now - self._since >= self._max_delay:
            self.flush()

    def _end_of_step(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Sends everything waiting now."""
        writes = self._writes
        if not writes:
            return
        self._writes = {}
        self._bytes = 0
        for transport, parts in writes.items():
            transport._send(parts)


_BATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, WriteBatch]] = (
    weakref.WeakKeyDictionary()
)


class CoalescingTransport:
    """Delegates to ``transport``; writes go out with the loop's ``WriteBatch``."""

    __slots__ = ("_batch", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, batch: WriteBatch) -> None:
        self._transport = transport
        self._batch = batch
        self._waiting = 0  # bytes handed to the batch and not sent yet

    def write(self, data: Chunk) -> None:
        if data:
            self._waiting += len(data)
            self._batch.add(self, data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _send(self, parts: Sequence[Chunk]) -> None:
        """Everything this connection had waiting, in order: one write, or one
        ``writelines`` (uvloop sends the parts in one writev, no joined copy)."""
        self._waiting = 0
        if self._transport.is_closing():  # aborted, or the peer left meanwhile
            return
        if len(parts) == 1:
            self._transport.write(parts[0])
        else:
            self._transport.writelines(parts)

    def close(self) -> None:
        if self._waiting:
            self._batch.flush()
        self._transport.close()

    def abort(self) -> None:
        self._waiting = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._waiting

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def __getattr__(self, name: str) -> Any:
        # Anything else a transport has (write_eof, can_write_eof, ...).
        return getattr(self._transport, name)
