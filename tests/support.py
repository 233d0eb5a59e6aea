"""Test helpers: an in-process server on free ports, and small wire clients.

The server runs in its own thread and event loop, so tests can drive it with
ordinary blocking clients (httpx, grpcio) over real sockets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import struct
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import httpx
import jwt
import uvloop

from notify.config import Config
from notify.core.clock import Clock
from notify.core.ratelimit import Rate
from notify.server import NotifyServer, Ports
from notify.store import Store
from notify.store.factory import open_store
from tests.pg import PostgresCluster

T = TypeVar("T")

CLIENT_SVC = "/elloloop.notify.v1.NotificationClientService"
INTERNAL_SVC = "/elloloop.notify.v1.NotificationInternalService"
JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long!"
INTERNAL_TOKEN = "internal-token-for-tests"

TEST_CONFIG = Config(
    client_port=0,
    internal_port=0,
    metrics_port=0,
    host="127.0.0.1",
    dev_mode=True,
    shutdown_timeout=10.0,
    # Tests call far faster than any real user; the rate-limit tests set their own.
    rate_limit_producer=Rate(0, 1.0),
    rate_limit_client=Rate(0, 1.0),
    rate_limit_recipients=Rate(0, 1.0),
)


class ServerThread:
    """A NotifyServer in a background thread; ``stop`` drains it like SIGTERM."""

    def __init__(
        self, config: Config, store: Store | None = None, clock: Clock | None = None
    ) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.server: NotifyServer | None = None
        self._thread = threading.Thread(target=self._run, name="notify-test-server", daemon=True)

    @property
    def ports(self) -> Ports:
        assert self.server is not None
        return self.server.ports

    def client_url(self, method: str) -> str:
        return f"http://127.0.0.1:{self.ports.client}{CLIENT_SVC}/{method}"

    def internal_url(self, method: str = "Notify") -> str:
        return f"http://127.0.0.1:{self.ports.internal}{INTERNAL_SVC}/{method}"

    def metrics_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports.metrics}{path}"

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("server did not start in 30 s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = uvloop.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            store = self._store or await open_store(self.config)
            self.server = NotifyServer(self.config, store, clock=self._clock)
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.shutdown()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the server's loop (to inspect its state)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def begin_shutdown(self) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)

    def join(self, timeout: float = 30) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("server did not stop in time")

    def stop(self) -> None:
        if self._thread.is_alive() and self._loop is not None:
            self.begin_shutdown()
            self.join()


@contextmanager
def running_server(
    store: Store | None = None, clock: Clock | None = None, **overrides: Any
) -> Iterator[ServerThread]:
    server = ServerThread(dataclasses.replace(TEST_CONFIG, **overrides), store, clock).start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def running_server_off_loop(
    store: Store | None = None, clock: Clock | None = None, **overrides: Any
) -> AsyncIterator[ServerThread]:
    """``running_server`` for an async test: started and stopped in a worker thread, so that
    stand-ins on the test's own loop (SMTP, push and provider servers) keep answering."""
    cm = running_server(store, clock, **overrides)
    server = await asyncio.to_thread(cm.__enter__)
    try:
        yield server
    finally:
        await asyncio.to_thread(cm.__exit__, None, None, None)


def postgres_replica(cluster: PostgresCluster, name: str, **overrides: Any) -> ServerThread:
    """A started replica on database ``name`` of ``cluster`` (stop it when done)."""
    config = dataclasses.replace(
        TEST_CONFIG, store_driver="postgres", postgres_dsn=cluster.dsn(name), **overrides
    )
    return ServerThread(config).start()


def dev_auth(user: str = "user-alice", tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer dev:{user}:{tenant}"}


def make_jwt(
    *,
    sub: str = "user-alice",
    tenant: str = "acme",
    secret: str = JWT_SECRET,
    expires_in: float = 300,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    payload: dict[str, Any] = {"sub": sub, "tenant": tenant, "exp": int(time.time() + expires_in)}
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm=algorithm)


def notify_body(
    notification_id: str, *users: str, tenant: str = "acme", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantId": tenant,
        "notificationId": notification_id,
        "userIds": list(users) or ["user-alice"],
        "channels": ["DELIVERY_CHANNEL_IN_APP"],
        "subjectRef": "task:42",
        "subjectType": "task",
        "title": f"title {notification_id}",
        "body": f"body {notification_id}",
    }
    body.update(extra)
    return body


def envelope(payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


def read_envelopes(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Splits a Connect/gRPC-Web streaming body into (flags, payload) frames."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 5:
            flags, length = struct.unpack(">BI", buffer[:5])
            if len(buffer) < 5 + length:
                break
            yield flags, buffer[5 : 5 + length]
            buffer = buffer[5 + length :]


# The inbox's sync events (counts after the handshake and after every change,
# state updates): tests about other events read past them.
INBOX_SYNC = ("counts", "update")


class ConnectStream:
    """A Connect JSON server-stream over HTTP/1.1, read frame by frame.

    ``next`` skips the kinds in ``skip`` (by default the inbox's sync events).
    """

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        headers: dict[str, str],
        request: dict[str, Any],
        skip: tuple[str, ...] = INBOX_SYNC,
    ):
        self._skip = skip
        self._cm = client.stream(
            "POST",
            url,
            headers={**headers, "Content-Type": "application/connect+json"},
            content=envelope(json.dumps(request).encode()),
        )
        self.response = self._cm.__enter__()
        self._frames = read_envelopes(self.response.iter_raw())
        self.end: dict[str, Any] | None = None

    def next(self) -> dict[str, Any]:
        """The next message; raises EndOfStream (with the end frame) when the stream ends."""
        for flags, payload in self._frames:
            if flags & 0x02:
                self.end = json.loads(payload)
                raise EndOfStream(self.end)
            message = dict(json.loads(payload))
            if any(kind in message for kind in self._skip):
                continue
            return message
        raise EndOfStream(self.end or {})

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


class EndOfStream(Exception):
    def __init__(self, end: dict[str, Any]) -> None:
        super().__init__(end)
        self.end = end

    @property
    def code(self) -> str:
        error = self.end.get("error") or {}
        return str(error.get("code", "ok"))


def eventually(check: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Waits until ``check()`` is true: for effects another thread or process makes."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@contextmanager
def serving(app: Any, limits: Any = None) -> Iterator[int]:
    """Serves any ASGI app on a free loopback port with the service's own listener."""
    from notify.http.listener import Listener

    loop = uvloop.new_event_loop()
    listener = Listener(app, "127.0.0.1", 0, name="test", limits=limits)
    loop.run_until_complete(listener.start())
    thread = threading.Thread(target=loop.run_forever, name="notify-test-app", daemon=True)
    thread.start()
    try:
        yield listener.port
    finally:

        async def stop() -> None:
            listener.stop_accepting()
            await listener.shutdown_connections()
            await listener.abort()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def next_past_sync(stream: Iterator[Any]) -> Any:
    """The next pb.StreamEvent of a stream iterator that is not an inbox sync event."""
    while True:
        event = next(stream)
        if event.WhichOneof("event") not in INBOX_SYNC:
            return event
