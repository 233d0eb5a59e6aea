"""One Notify to one user with many open streams: when does the last frame arrive?

Each stream is a Connect JSON StreamEvents call on its own HTTP/1.1
connection (a browser tab each), all for the same user. With 1,000 of them,
the client's own work per frame would show up in the figure, so the reader
is as thin as it gets: an ``asyncio.Protocol`` per connection on uvloop that
takes ``time.perf_counter()`` in ``data_received`` and only looks for the
quoted notificationId in the bytes; no HTTP or JSON parsing beyond the
status line and the handshake. The Notify goes out on a kept-alive HTTP/1.1
connection from the same process; the figure is from just before it is
written to the last stream's bytes arriving.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import cast

import uvloop

from bench import h1
from bench.server import CpuReading, Notifyd, cpu_meter
from bench.streams import STREAM_PATH, TENANT
from bench.wrk import NOTIFY_PATH

USER = "fan-out-user"
OPEN_TIMEOUT = 60.0
ROUND_TIMEOUT = 10.0


class _Round:
    """One Notify: the needle to look for, and when each stream first saw it."""

    def __init__(self, needle: bytes, streams: int) -> None:
        self.needle = needle
        self.arrivals: list[float] = []  # one per stream that has seen it
        self._streams = streams
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def arrived(self, at: float) -> None:
        self.arrivals.append(at)
        if len(self.arrivals) == self._streams and not self.done.done():
            self.done.set_result(None)


class _StreamReader(asyncio.Protocol):
    def __init__(self, request: bytes, owner: SameUserStreams) -> None:
        self._request = request
        self._owner = owner
        self._head = b""
        self._tail = b""
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.hits = 0  # notification frames seen in the current round

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.open.done():
            # Until the handshake: the status line, then the first (heartbeat) event.
            self._head += data
            if not self._head.startswith(b"HTTP/1.1 200"):
                if len(self._head) >= 12:
                    self.open.set_exception(RuntimeError(f"stream answered {self._head[:60]!r}"))
            elif b'"heartbeat"' in self._head:
                self.open.set_result(None)
            return
        current = self._owner.current
        if current is None:
            return
        needle = current.needle
        window = self._tail + data
        self._tail = window[-(len(needle) - 1) :]
        count = window.count(needle)
        if count:
            if not self.hits:
                current.arrived(now)
            self.hits += count

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(RuntimeError(f"stream connection lost: {exc}"))
        self._owner.lost += 1


class SameUserStreams:
    def __init__(self, port: int, streams: int) -> None:
        self._port = port
        self._streams = streams
        self._readers: list[_StreamReader] = []
        self.current: _Round | None = None
        self.lost = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        authority = f"127.0.0.1:{self._port}"
        request = h1.stream_request(
            authority, STREAM_PATH, {}, {"Authorization": f"Bearer dev:{USER}:{TENANT}"}
        )
        gate = asyncio.Semaphore(100)  # don't stampede the accept queue

        async def one() -> None:
            async with gate:
                _, reader = await loop.create_connection(
                    lambda: _StreamReader(request, self), "127.0.0.1", self._port
                )
                self._readers.append(reader)
                await reader.open

        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(self._streams))), OPEN_TIMEOUT)

    def start_round(self, notification_id: str) -> _Round:
        for reader in self._readers:
            reader.hits = 0
        self.current = _Round(json.dumps(notification_id).encode(), self._streams)
        return self.current

    def duplicates(self) -> int:
        """Streams that got the current round's notification more than once."""
        return sum(reader.hits > 1 for reader in self._readers)

    def close(self) -> None:
        for reader in self._readers:
            if reader.transport is not None:
                reader.transport.close()


@dataclass(slots=True)
class FanoutResult:
    streams: int
    open_s: float = 0.0
    streams_open_metric: float = 0.0
    last_ms: list[float] = field(default_factory=list)  # Notify sent -> last frame, per round
    first_ms: list[float] = field(default_factory=list)  # Notify sent -> first frame
    answer_ms: list[float] = field(default_factory=list)  # Notify sent -> its response
    delivered: list[int] = field(default_factory=list)  # NotifyResponse.delivered
    incomplete: int = 0  # rounds where not every stream got the frame in time
    duplicates: int = 0  # streams that got a round's frame more than once
    lost_connections: int = 0
    server_cpu: CpuReading = field(default_factory=CpuReading)
    client_cpu_s: float = 0.0


async def _measure(server: Notifyd, streams: int, rounds: int, tag: str) -> FanoutResult:
    result = FanoutResult(streams)
    client = SameUserStreams(server.ports.client, streams)
    sender = await h1.Connection("127.0.0.1", server.ports.internal).connect()
    try:
        started = time.perf_counter()
        await client.open()
        result.open_s = time.perf_counter() - started
        result.streams_open_metric = await asyncio.to_thread(
            server.metric_sum, "notify_streams_open"
        )
        await _round(client, sender, f"{tag}-warm", FanoutResult(streams))  # first-use costs
        cpu_before = time.process_time()
        with cpu_meter(server.pid) as server_cpu:
            for number in range(rounds):
                await _round(client, sender, f"{tag}-{number}", result)
        result.server_cpu = server_cpu
        result.client_cpu_s = time.process_time() - cpu_before
        result.lost_connections = client.lost
    finally:
        client.close()
        await sender.close()
    return result


async def _round(
    client: SameUserStreams, sender: h1.Connection, notification_id: str, result: FanoutResult
) -> None:
    payload = {
        "tenantId": TENANT,
        "notificationId": notification_id,
        "userIds": [USER],
        "channels": ["DELIVERY_CHANNEL_IN_APP"],
        "title": "Build finished",
        "body": "ok",
    }
    current = client.start_round(notification_id)
    sent = time.perf_counter()
    response = await sender.post_json(NOTIFY_PATH, payload, {})
    answered = time.perf_counter()
    if response.status != 200:
        raise RuntimeError(f"Notify answered HTTP {response.status}: {response.body[:200]!r}")
    try:
        await asyncio.wait_for(asyncio.shield(current.done), ROUND_TIMEOUT)
    except TimeoutError:
        result.incomplete += 1
        return
    finally:
        await asyncio.sleep(0.2)  # a duplicate would come now; the next round starts clean
        result.duplicates += client.duplicates()
        client.current = None
    result.last_ms.append((max(current.arrivals) - sent) * 1000)
    result.first_ms.append((min(current.arrivals) - sent) * 1000)
    result.answer_ms.append((answered - sent) * 1000)
    result.delivered.append(int(response.json().get("delivered", 0)))


def run(server: Notifyd, *, streams: int, rounds: int, tag: str) -> FanoutResult:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_measure(server, streams, rounds, tag))
