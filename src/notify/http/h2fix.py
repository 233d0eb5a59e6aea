"""A fix for hypercorn's HTTP/2 send buffer, which ignores back-pressure.

hypercorn (0.18.0) lets a stream's writer go on once the send loop pops less
than the low-water mark, measuring what it *popped*. When the client's flow
control window is empty the loop pops zero bytes, and every new message wakes
it again: the writer is never held back and the buffer grows without bound.
A client that stops reading would make the server buffer everything sent to
it (and a stream's slow-consumer limit would never trigger). Measuring what
is *left* in the buffer restores the intended back-pressure. ``install`` is
idempotent; tests/e2e/test_live_events.py has the stalled-client test.
"""

from __future__ import annotations

from hypercorn.protocol import h2 as hypercorn_h2

_LOW_WATER = hypercorn_h2.BUFFER_LOW_WATER


async def _pop(self: hypercorn_h2.StreamBuffer, max_length: int) -> bytes:
    length = min(len(self.buffer), max_length)
    data = bytes(self.buffer[:length])
    del self.buffer[:length]
    if len(self.buffer) < _LOW_WATER:
        await self._paused.set()
    if len(self.buffer) == 0:
        await self._is_empty.set()
    return data


def install() -> None:
    hypercorn_h2.StreamBuffer.pop = _pop  # type: ignore[method-assign]
