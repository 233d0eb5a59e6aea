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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any, cast

import uvicorn
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config as HypercornConfig
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

logger = logging.getLogger("notify.http")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Concurrent HTTP/2 streams per connection. hypercorn's priority tree holds
# at most 1,000 nodes including its root: a 1,000th stream makes it drop the
# whole connection (GOAWAY PROTOCOL_ERROR), so advertise one less.
H2_MAX_CONCURRENT_STREAMS = 999


class Listener:
    """Serves ``app`` on (host, port); port 0 binds a free port, read back from ``port``."""

    def __init__(self, app: Any, host: str, port: int, *, name: str) -> None:
        self.name = name
        self._host = host
        self._requested_port = port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._h1_config = uvicorn.Config(
            app,
            http="httptools",
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            access_log=False,
            log_config=None,
            timeout_keep_alive=75,
        )
        self._h1_config.load()
        self._h1_state = ServerState()
        self._h2_app = ASGIWrapper(app)
        self._h2_config = HypercornConfig()
        self._h2_config.keep_alive_timeout = 75
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
        self._h2_tasks: set[asyncio.Task[None]] = set()
        self._undecided: set[asyncio.Transport] = set()  # connected, protocol not known yet

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Sniffer(self),
            self._host,
            self._requested_port,
            reuse_address=True,
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

    def _serve_h1(self, transport: asyncio.Transport, data: bytes) -> None:
        protocol = HttpToolsProtocol(
            self._h1_config, self._h1_state, {}, asyncio.get_running_loop()
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(data)

    def _serve_h2(self, transport: asyncio.Transport, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        reader.feed_data(data)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        server = TCPServer(
            self._h2_app, loop, self._h2_config, self._h2_context, {}, reader, writer
        )
        task = loop.create_task(server.run())
        self._h2_tasks.add(task)
        task.add_done_callback(self._h2_tasks.discard)


class _Sniffer(asyncio.Protocol):
    """Reads just enough of a new connection to tell HTTP/2 from HTTP/1.1."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._listener._undecided.add(self._transport)
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
        if head == H2_PREFACE:
            self._listener._serve_h2(self._transport, self._buffer)
        else:
            self._listener._serve_h1(self._transport, self._buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._listener._undecided.discard(self._transport)
        self._transport = None
