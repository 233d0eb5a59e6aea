"""Many open StreamEvents streams: delivery latency and server memory per stream.

Two client flavours, picked by ``protocol``:
- ``grpc``: grpc.aio, ``per_connection`` streams multiplexed on each channel
  (every channel its own TCP connection);
- ``connect``: Connect streaming (JSON) over HTTP/1.1 with the tiny client in
  bench.h1, one TCP connection per stream as a browser would have.

Every stream belongs to a distinct user. Memory: the server's VmRSS before
any stream connection is opened, and again once all of them have had their
handshake (and the heap has settled); the difference over the stream count
is the cost of one open stream, its connection share included.
Latency: one user at a time, ``time.perf_counter()`` just before a Notify
for that user is written (Connect JSON over a kept-alive HTTP/1.1
connection, the lightest client) until that notification's frame is
decoded by the stream's reader in this same process.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from elloloop.notify.v1 import notify_pb2, notify_pb2_grpc

from bench import h1
from bench.server import CpuReading, Notifyd, cpu_meter, metric_sum
from bench.stats import percentile
from bench.wrk import NOTIFY_PATH

TENANT = "bench"
STREAM_PATH = "/elloloop.notify.v1.NotificationClientService/StreamEvents"
HANDSHAKE_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 5.0
_EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs

Arrival = Callable[[int, str], None]  # (user number, notificationId)


def user_name(number: int) -> str:
    return f"stream-user-{number}"


def bearer(number: int) -> str:
    return f"Bearer dev:{user_name(number)}:{TENANT}"


class StreamClient(Protocol):
    connections: int

    async def open(self, users: range) -> None: ...

    async def close(self) -> None: ...


# -- gRPC (grpc.aio) ----------------------------------------------------------


class GrpcStreams:
    def __init__(self, target: str, per_connection: int, on_arrival: Arrival) -> None:
        self._target = target
        self._per_connection = per_connection
        self._on_arrival = on_arrival
        self._channels: list[grpc.aio.Channel] = []
        self._calls: list[Any] = []
        self._readers: list[asyncio.Task[None]] = []
        self.connections = 0

    async def open(self, users: range) -> None:
        count = math.ceil(len(users) / self._per_connection)
        options = [("grpc.use_local_subchannel_pool", 1)]
        self._channels = [
            grpc.aio.insecure_channel(self._target, options=options) for _ in range(count)
        ]
        for channel in self._channels:
            await asyncio.wait_for(channel.channel_ready(), 20)
        self.connections = count
        stubs = [
            notify_pb2_grpc.NotificationClientServiceStub(c)  # type: ignore[no-untyped-call]
            for c in self._channels
        ]
        handshakes: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        for index, number in enumerate(users):
            stub = stubs[index // self._per_connection]
            call = stub.StreamEvents(
                notify_pb2.StreamEventsRequest(),
                metadata=(("authorization", bearer(number)),),
            )
            handshake: asyncio.Future[None] = loop.create_future()
            handshakes.append(handshake)
            self._calls.append(call)
            self._readers.append(asyncio.create_task(self._read(number, call, handshake)))
        await asyncio.wait_for(asyncio.gather(*handshakes), HANDSHAKE_TIMEOUT)

    async def _read(self, number: int, call: Any, handshake: asyncio.Future[None]) -> None:
        try:
            first = await call.read()
            if first is _EOF or not first.HasField("heartbeat"):
                raise RuntimeError(f"stream for user {number}: first event is not the handshake")
            handshake.set_result(None)
            while True:
                event = await call.read()
                if event is _EOF:
                    return
                if event.HasField("notification"):
                    self._on_arrival(number, event.notification.notification.notification_id)
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            if not handshake.done():
                handshake.set_exception(RuntimeError(f"stream for user {number} failed"))
        except Exception as exc:
            if not handshake.done():
                handshake.set_exception(exc)

    async def close(self) -> None:
        for call in self._calls:
            call.cancel()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for channel in self._channels:
            await channel.close(None)


# -- Connect over HTTP/1.1 ----------------------------------------------------


class ConnectStreams:
    def __init__(self, host: str, port: int, on_arrival: Arrival) -> None:
        self._host = host
        self._port = port
        self._on_arrival = on_arrival
        self._streams: list[h1.ConnectStream] = []
        self._readers: list[asyncio.Task[None]] = []
        self.connections = 0

    async def open(self, users: range) -> None:
        loop = asyncio.get_running_loop()
        handshakes: list[asyncio.Future[None]] = []
        gate = asyncio.Semaphore(100)  # don't stampede the accept queue
        for number in users:
            handshake: asyncio.Future[None] = loop.create_future()
            handshakes.append(handshake)
            self._readers.append(asyncio.create_task(self._read(number, gate, handshake)))
        await asyncio.wait_for(asyncio.gather(*handshakes), HANDSHAKE_TIMEOUT)
        self.connections = len(self._streams)

    async def _read(self, number: int, gate: asyncio.Semaphore, handshake: Any) -> None:
        stream = h1.ConnectStream(self._host, self._port)
        self._streams.append(stream)
        try:
            async with gate:
                await stream.open(STREAM_PATH, {}, {"Authorization": bearer(number)})
                first = await stream.next()
            if first is None or "heartbeat" not in first[1]:
                raise RuntimeError(f"stream for user {number}: first event is not the handshake")
            handshake.set_result(None)
            while (envelope := await stream.next()) is not None:
                flags, message = envelope
                if flags & h1.CONNECT_END_STREAM:
                    return
                notification = message.get("notification")
                if notification is not None:
                    self._on_arrival(number, notification["notification"]["notificationId"])
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            if not handshake.done():
                handshake.set_exception(exc)

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for stream in self._streams:
            await stream.close()


# -- the measurement ----------------------------------------------------------


@dataclass(slots=True)
class StreamsResult:
    protocol: str
    streams: int
    connections: int
    open_s: float
    rss_before_kib: int
    rss_after_kib: int
    streams_open_metric: float
    samples: int
    latencies_ms: list[float] = field(default_factory=list)
    notify_ms: list[float] = field(default_factory=list)
    delivered_reported: int = 0  # NotifyResponse.delivered == 1
    lost: int = 0  # frames that never arrived within DELIVERY_TIMEOUT
    server_delivery_mean_ms: float = 0.0  # the server's own histogram mean
    server_cpu: CpuReading = field(default_factory=CpuReading)  # while sampling latency
    client_cpu_cores: float = 0.0  # this process (the streams' client), while sampling

    @property
    def per_stream_kib(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.streams if self.streams else 0.0

    def latency(self, pct: float) -> float:
        return percentile(sorted(self.latencies_ms), pct)

    def notify_latency(self, pct: float) -> float:
        return percentile(sorted(self.notify_ms), pct)


async def _settled_rss(server: Notifyd, settle_s: float) -> int:
    """VmRSS once it stops moving (or after a few tries): the median of 3 reads."""
    await asyncio.sleep(settle_s)
    reads = []
    for _ in range(3):
        reads.append(server.rss_kib())
        await asyncio.sleep(0.1)
    return sorted(reads)[1]


async def measure(
    server: Notifyd,
    *,
    protocol: str,
    streams: int,
    samples: int,
    per_connection: int = 100,
    seed: int = 7,
) -> StreamsResult:
    pending: dict[int, tuple[str, asyncio.Future[float]]] = {}

    def on_arrival(number: int, notification_id: str) -> None:
        arrived = time.perf_counter()
        waiting = pending.get(number)
        if waiting is not None and waiting[0] == notification_id and not waiting[1].done():
            waiting[1].set_result(arrived)

    def client() -> StreamClient:
        if protocol == "grpc":
            return GrpcStreams(server.client_target, per_connection, on_arrival)
        if protocol == "connect":
            return ConnectStreams("127.0.0.1", server.ports.client, on_arrival)
        raise ValueError(f"unknown stream protocol {protocol!r}")

    sender = await h1.Connection("127.0.0.1", server.ports.internal).connect()
    try:
        # Warm up every code path once (imports, first allocations) before the
        # baseline, with a stream of its own that is closed again.
        warm = client()
        await warm.open(range(streams, streams + 1))
        await _deliver(sender, pending, streams, "warmup-0")
        await warm.close()
        rss_before = await _settled_rss(server, 1.0)

        live = client()
        started = time.perf_counter()
        await live.open(range(streams))
        open_s = time.perf_counter() - started
        try:
            rss_after = await _settled_rss(server, 1.0)
            streams_open = await asyncio.to_thread(server.metric_sum, "notify_streams_open")
            result = StreamsResult(
                protocol=protocol,
                streams=streams,
                connections=live.connections,
                open_s=open_s,
                rss_before_kib=rss_before,
                rss_after_kib=rss_after,
                streams_open_metric=streams_open,
                samples=samples,
            )
            text_before = await asyncio.to_thread(server.metrics_text)
            rng = random.Random(seed)
            client_cpu_start = time.process_time()
            with cpu_meter(server.pid) as server_cpu:
                for sample in range(samples):
                    number = rng.randrange(streams)
                    outcome = await _deliver(sender, pending, number, f"{protocol}-{sample}")
                    if outcome is None:
                        result.lost += 1
                        continue
                    latency_s, notify_s, delivered = outcome
                    result.latencies_ms.append(latency_s * 1000)
                    result.notify_ms.append(notify_s * 1000)
                    result.delivered_reported += delivered == 1
            result.server_cpu = server_cpu
            if server_cpu.wall:
                result.client_cpu_cores = (time.process_time() - client_cpu_start) / server_cpu.wall
            text_after = await asyncio.to_thread(server.metrics_text)
            result.server_delivery_mean_ms = _histogram_mean_ms(
                text_before, text_after, "notify_delivery_latency_seconds"
            )
            return result
        finally:
            await live.close()
    finally:
        await sender.close()


async def _deliver(
    sender: h1.Connection,
    pending: dict[int, tuple[str, asyncio.Future[float]]],
    number: int,
    notification_id: str,
) -> tuple[float, float, int] | None:
    """Notify one user; (send->frame seconds, Notify round trip, delivered count)."""
    arrival: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    pending[number] = (notification_id, arrival)
    payload = {
        "tenantId": TENANT,
        "notificationId": notification_id,
        "userIds": [user_name(number)],
        "channels": ["DELIVERY_CHANNEL_IN_APP"],
        "title": "Build finished",
        "body": "ok",
    }
    try:
        sent = time.perf_counter()
        response = await sender.post_json(NOTIFY_PATH, payload, {})
        answered = time.perf_counter()
        if response.status != 200:
            raise RuntimeError(f"Notify answered HTTP {response.status}: {response.body!r}")
        try:
            arrived = await asyncio.wait_for(arrival, DELIVERY_TIMEOUT)
        except TimeoutError:
            return None
        return arrived - sent, answered - sent, int(response.json().get("delivered", 0))
    finally:
        pending.pop(number, None)


def _histogram_mean_ms(before: str, after: str, name: str) -> float:
    total = metric_sum(after, f"{name}_sum") - metric_sum(before, f"{name}_sum")
    count = metric_sum(after, f"{name}_count") - metric_sum(before, f"{name}_count")
    return total / count * 1000 if count else 0.0


def run(
    server: Notifyd,
    *,
    protocol: str,
    streams: int,
    samples: int,
    per_connection: int = 100,
) -> StreamsResult:
    return asyncio.run(
        measure(
            server,
            protocol=protocol,
            streams=streams,
            samples=samples,
            per_connection=per_connection,
        )
    )
