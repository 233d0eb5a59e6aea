"""One TCP port that serves an ASGI app over HTTP/1.1 and HTTP/2 (h2c).

No single Python server is both fast and complete here: uvicorn's httptools
protocol is the quickest HTTP/1.1 (Connect, gRPC-Web, health), but it has no
HTTP/2 and no response trailers, which gRPC needs; hypercorn speaks HTTP/2 with
the ASGI trailers extension. So each new connection is sniffed: a client that
opens with the HTTP/2 prior-knowledge preface (grpcio, Connect over h2c) is
handed to hypercorn's connection handler, anything else to uvicorn's
HTTP/1.1 protocol. Both run in this process's event loop, so every port
shares the service's in-memory state. Driving those internal classes ties
this module to the exact uvicorn and hypercorn releases that
``notify.http.patches`` checks at start-up.

The listener owns every connection, so it also enforces the connection limits
(docs/security.md): admission through a shared ConnectionGate (answered 503 or
GOAWAY), a deadline on the sniffing phase (a half HTTP/2 preface), on each
HTTP/1.1 request head (h1.py) and an idle timeout on both protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config as HypercornConfig
from uvicorn.server import ServerState

from notify.http.coalesce import DEFAULT_MAX_DELAY_S, CoalescingTransport, WriteBatch
from notify.http.gate import ConnectionGate, refusal
from notify.http.h1 import GuardedHttpToolsProtocol
from notify.http.lean import LeanEventWrapper, lean_stream_protocol

logger = logging.getLogger("notify.http")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Concurrent HTTP/2 streams per connection. hypercorn's priority tree holds
# at most 1,000 nodes including its root: a 1,000th stream makes it drop the
# whole connection (GOAWAY PROTOCOL_ERROR), so advertise one less.
H2_MAX_CONCURRENT_STREAMS = 999

SNIFF_TIMEOUT = "sniff_timeout"


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-connection deadlines and sizes; the defaults are NOTIFY_*'s."""

    idle_timeout: float = 75.0  # keep-alive: no request in flight
    header_timeout: float = 10.0  # first bytes (sniffing) and each HTTP/1.1 request head
    max_header_bytes: int = 16 * 1024  # an HTTP/1.1 request head; an HTTP/2 header list
    # HTTP/1.1 writes wait at most this to leave together (0: each at once).
    write_delay: float = DEFAULT_MAX_DELAY_S


class Listener:
    """Serves ``app`` on (host, port); port 0 binds a free port, read back from ``port``."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        name: str,
        limits: ConnectionLimits | None = None,
        gate: ConnectionGate | None = None,
        on_cut: Callable[[str], None] | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.name = name
        # SO_REUSEPORT: several worker processes bind the same port and the
        # kernel spreads new connections over them (notify/workers.py).
        self._reuse_port = reuse_port
        self.limits = limits or ConnectionLimits()
        self._gate = gate
        self._on_cut = on_cut or (lambda reason: None)
        self._host = host
        self._requested_port = port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._h1_config = uvicorn.Config(
            app,
            http="httptools",
            # Said, not sniffed: the outer middlewares return their app's
            # awaitable from a plain __call__, which uvicorn would take for ASGI2.
            interface="asgi3",
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            access_log=False,
            log_config=None,
            # Typed int, used only as a call_later delay: a fraction is fine.
            timeout_keep_alive=self.limits.idle_timeout,  # type: ignore[arg-type]
        )
        self._h1_config.load()
        self._h1_state = ServerState()
        self._h2_app = ASGIWrapper(app)
        self._h2_config = HypercornConfig()
        # Closes an HTTP/2 connection with no stream open for this long, which
        # also ends one that never completes a HEADERS frame (slowloris on h2).
        self._h2_config.keep_alive_timeout = self.limits.idle_timeout
        self._h2_config.h2_max_header_list_size = self.limits.max_header_bytes
        # hypercorn's default sends GOAWAY after 1,000 requests per connection,
        # failing calls in flight on it; a long-lived gRPC channel must not be cut.
        self._h2_config.keep_alive_max_requests = 2**62
        self._h2_config.h2_max_concurrent_streams = H2_MAX_CONCURRENT_STREAMS
        self._h2_config.read_timeout = None
        # Like the HTTP/1.1 side (server_header=False): no server banner.
        self._h2_config.include_server_header = False
        # hypercorn's default error log is its own plain-text stream handler;
        # route it through ours so stderr stays one JSON object per line.
        self._h2_config.errorlog = logging.getLogger("hypercorn.error")
        self._h2_context = WorkerContext(None)
        # hypercorn's seam for its events: one per connection and two per stream.
        self._h2_context.event_class = LeanEventWrapper
        self._h2_tasks: set[asyncio.Task[None]] = set()
        self._undecided: set[asyncio.Transport] = set()  # connected, protocol not known yet

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Sniffer(self),
            self._host,
            self._requested_port,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
            backlog=4096,
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def shutdown_connections(self) -> None:
        """Asks every connection to close once its in-flight requests are done."""
        for transport in list(self._undecided):
            transport.close()  # connected but silent: nothing is in flight on it
        for protocol in list(self._h1_state.connections):
            protocol.shutdown()
        await self._h2_context.terminated.set()

    def idle(self) -> bool:
        return not self._h1_state.connections and not self._h2_tasks and not self._undecided

    async def wait_idle(self) -> None:
        while not self.idle():
            if self._h2_tasks:
                await asyncio.wait(set(self._h2_tasks), timeout=0.05)
            else:
                await asyncio.sleep(0.01)

    async def abort(self) -> None:
        """Drops whatever is still open (past the shutdown timeout)."""
        for transport in list(self._undecided):
            transport.abort()
        for protocol in list(self._h1_state.connections):
            protocol.transport.abort()
        for task in list(self._h2_tasks):
            task.cancel()
        if self._h2_tasks:
            # Bounded: a connection task that swallows cancellation must not
            # keep the process from exiting.
            await asyncio.wait(set(self._h2_tasks), timeout=1.0)

    def _release(self, ip: str | None) -> Callable[[], None]:
        """The callback that gives a connection's place in the gate back, once."""
        released = False

        def release() -> None:
            nonlocal released
            if self._gate is not None and ip is not None and not released:
                released = True
                self._gate.release(ip)

        return release

    def _serve_h1(self, transport: asyncio.Transport, data: bytes, ip: str | None) -> None:
        protocol = GuardedHttpToolsProtocol(
            self._h1_config,
            self._h1_state,
            {},
            asyncio.get_running_loop(),
            header_timeout=self.limits.header_timeout,
            max_header_bytes=self.limits.max_header_bytes,
            on_lost=self._release(ip),
            on_cut=self._on_cut,
        )
        transport.set_protocol(protocol)
        if self.limits.write_delay > 0:
            batch = WriteBatch.of(asyncio.get_running_loop(), self.limits.write_delay)
            protocol.connection_made(cast(asyncio.Transport, CoalescingTransport(transport, batch)))
        else:
            protocol.connection_made(transport)
        protocol.data_received(data)

    def _serve_h2(self, transport: asyncio.Transport, data: bytes, ip: str | None) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16, loop=loop)
        protocol = lean_stream_protocol(reader, loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        reader.feed_data(data)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        server = TCPServer(
            self._h2_app, loop, self._h2_config, self._h2_context, {}, reader, writer
        )
        task = loop.create_task(server.run())
        self._h2_tasks.add(task)
        release = self._release(ip)

        def done(finished: asyncio.Task[None]) -> None:  # one callback: held per connection
            self._h2_tasks.discard(finished)
            release()

        task.add_done_callback(done)


class _Sniffer(asyncio.Protocol):
    """Reads just enough of a new connection to tell HTTP/2 from HTTP/1.1."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._ip: str | None = None
        self._refused = False  # over a connection cap: answered, then closed
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._listener._undecided.add(self._transport)
        gate = self._listener._gate
        if gate is not None:
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            if gate.admit(ip) is None:
                self._ip = ip
            else:
                self._refused = True
        self._timer = asyncio.get_running_loop().call_later(
            self._listener.limits.header_timeout, self._timed_out
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        head = self._buffer[: len(H2_PREFACE)]
        if H2_PREFACE.startswith(head) and len(head) < len(H2_PREFACE):
            return  # could still be HTTP/2: wait for the rest of the preface
        self._listener._undecided.discard(self._transport)
        self._cancel_timer()
        transport = self._transport
        if self._refused:
            transport.write(refusal(self._buffer, head == H2_PREFACE))
            transport.close()
        elif head == H2_PREFACE:
            self._listener._serve_h2(transport, self._buffer, self._ip)
        else:
            self._listener._serve_h1(transport, self._buffer, self._ip)
        self._ip = None  # the new protocol gives the gate its place back

    def _timed_out(self) -> None:
        self._timer = None
        if self._transport is not None:
            if not self._refused:
                self._listener._on_cut(SNIFF_TIMEOUT)
            self._transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._transport is not None:
            self._listener._undecided.discard(self._transport)
        self._transport = None
        if self._ip is not None and self._listener._gate is not None:
            self._listener._gate.release(self._ip)
            self._ip = None
