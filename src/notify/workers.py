"""``NOTIFY_WORKERS`` > 1: a supervisor and N serving processes on the same ports.

One event loop uses one core, so a machine with more cores runs several
workers, each a whole notifyd (its own loop, pool, bus listener and
dispatcher) that the PostgreSQL bus joins like any other replica. This
module is the parent; it serves nothing itself but the operations port.

The API ports: the supervisor binds each one (it never listens on it) with
SO_REUSEPORT, which resolves port 0 once and keeps the port for the service's
life, and every worker binds the same address again with SO_REUSEPORT and
listens. The kernel then spreads new connections over the listening sockets,
each worker accepting from its own queue; a dead worker's socket just leaves
the group while the others keep serving. (One inherited listening socket
would instead leave the balance to whichever worker wakes first.) A
connection stays on the worker that accepted it, so a stream's whole life is
in one worker.

The operations port is the supervisor's: ``/healthz`` is its own,
``/readyz`` is ready only while every worker is (each worker's reason is
passed on), and ``/metrics`` merges every worker's (notify.workermetrics),
which each serves on a private loopback port that the supervisor also
reserves.

Lifecycle: a worker that dies is started again after a backoff, unless it
crash-loops (RestartPolicy), which ends the service with exit 1. SIGTERM or
SIGINT is passed to every worker as SIGTERM; each drains within
NOTIFY_SHUTDOWN_TIMEOUT; the supervisor exits 0 when all of them stopped
cleanly, 1 when one failed or had to be killed. Workers run in their own
process group (a terminal's Ctrl-C reaches the supervisor only, which passes
it on once) and die with the supervisor (PR_SET_PDEATHSIG: they get SIGTERM
and drain). Their stderr comes through the supervisor in whole lines, so the
log stays one JSON object per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.metrics_core import Metric

from notify import __version__, logs
from notify.config import Config
from notify.http import patches
from notify.http.listener import ConnectionLimits, Listener
from notify.workermetrics import MetricsMerger, exposition, parse

# A worker's operations port: private, the supervisor's only.
WORKER_METRICS_HOST = "127.0.0.1"
# The hidden notifyd command a worker runs: ``notifyd worker INDEX PARENT_PID``.
WORKER_COMMAND = "worker"
# Beyond NOTIFY_SHUTDOWN_TIMEOUT, before a worker that has not stopped is killed.
STOP_GRACE = 5.0
# How long a starting worker may take beyond NOTIFY_POSTGRES_CONNECT_TIMEOUT.
START_GRACE = 30.0
READY_POLL = 0.05
SCRAPE_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1

logger = logging.getLogger("notify.workers")
lifecycle = logging.getLogger("notify.lifecycle")


class RestartPolicy:
    """Backoff between restarts of one worker slot, and the crash-loop bound.

    The n-th restart within ``window`` seconds waits first_delay * 2**n (at
    most max_delay); a slot that would restart more than ``max_restarts`` times
    within the window is crash-looping, and restarting it again would only hide that.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        window: float = 60.0,
        max_restarts: int = 5,
        first_delay: float = 0.5,
        max_delay: float = 10.0,
    ) -> None:
        self._clock = clock
        self._window = window
        self._max_restarts = max_restarts
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._recent: deque[float] = deque()

    def next_delay(self) -> float | None:
        """Seconds to wait before restarting, or None: give up."""
        now = self._clock()
        while self._recent and self._recent[0] <= now - self._window:
            self._recent.popleft()
        if len(self._recent) >= self._max_restarts:
            return None
        delay = min(self._max_delay, self._first_delay * float(2 ** len(self._recent)))
        self._recent.append(now)
        return delay


@dataclass(slots=True)
class WorkerSlot:
    index: int
    metrics_port: int  # private, on loopback
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    process: asyncio.subprocess.Process | None = None
    forwarder: asyncio.Task[None] | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


def supervise(config: Config) -> int:
    """``notifyd serve`` with NOTIFY_WORKERS > 1: runs until SIGTERM or SIGINT."""
    return asyncio.run(Supervisor(config).run())


class Supervisor:
    def __init__(self, config: Config, command: Sequence[str] | None = None) -> None:
        self.config = config
        self._command = tuple(command or (sys.executable, "-m", "notify"))
        self._reserved: list[socket.socket] = []
        self._slots: list[WorkerSlot] = []
        self._ports = (0, 0)
        self._serving = False  # every worker was ready once
        self._stopping = False
        self._failed = False
        self._restarts = 0
        self._spawning: set[asyncio.Task[None]] = set()
        self._merger = MetricsMerger()
        self._stop: asyncio.Event | None = None
        self._http: httpx.AsyncClient | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            return await self._run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            for sock in self._reserved:
                sock.close()
            logs.flush()

    async def _run(self) -> int:
        assert self._stop is not None
        config = self.config
        self._ports = (
            self._reserve(config.host, config.client_port),
            self._reserve(config.host, config.internal_port),
        )
        self._slots = [
            WorkerSlot(index, self._reserve(WORKER_METRICS_HOST, 0))
            for index in range(config.workers)
        ]
        patches.apply()
        # The scrapes and readiness checks of the workers are not worth a line each.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        listener = Listener(
            SupervisorHealthApp(self),
            config.host,
            config.metrics_port,
            name="metrics",
            limits=ConnectionLimits(
                idle_timeout=config.http_idle_timeout,
                header_timeout=config.http_header_timeout,
                max_header_bytes=config.max_header_bytes,
            ),
        )
        await listener.start()
        # trust_env=False: the workers are on loopback, never behind a proxy.
        self._http = httpx.AsyncClient(timeout=SCRAPE_TIMEOUT, trust_env=False)
        keepers: list[asyncio.Task[None]] = []
        try:
            if not await self._start_all():
                clean = await self._stop_all(keepers)
                # Stopped while starting: a clean stop; otherwise a worker failed to start.
                return 0 if clean and self._stop.is_set() else 1
            self._log(
                "notify started",
                version=__version__,
                client_port=self._ports[0],
                internal_port=self._ports[1],
                metrics_port=listener.port,
                host=config.host,
                workers=config.workers,
                pids=[slot.process.pid for slot in self._slots if slot.process],
            )
            self._serving = True
            keepers = [asyncio.create_task(self._keep(slot)) for slot in self._slots]
            await self._stop.wait()
            self._log("notify shutting down", workers=config.workers)
            clean = await self._stop_all(keepers)
        finally:
            listener.stop_accepting()
            await listener.shutdown_connections()
            await listener.abort()
            await self._http.aclose()
        self._log("notify stopped", clean=clean and not self._failed)
        return 0 if clean and not self._failed else 1

    # ------------------------------------------------------------ workers

    def _reserve(self, host: str, port: int) -> int:
        """Binds (host, port) with SO_REUSEPORT, without listening: the workers' port."""
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            # Worded like asyncio's bind error, which notifyd turns into its one line.
            raise OSError(
                exc.errno, f"error while attempting to bind on address ({host!r}, {port})"
            ) from None
        self._reserved.append(sock)
        return int(sock.getsockname()[1])

    async def _spawn(self, slot: WorkerSlot) -> None:
        client, internal = self._ports
        env = dict(os.environ)
        env.update(
            NOTIFY_CLIENT_PORT=str(client),
            NOTIFY_INTERNAL_PORT=str(internal),
            NOTIFY_METRICS_PORT=str(slot.metrics_port),
            NOTIFY_WORKERS=str(self.config.workers),
        )
        slot.process = await asyncio.create_subprocess_exec(
            *self._command,
            WORKER_COMMAND,
            str(slot.index),
            str(os.getpid()),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            process_group=0,
        )
        assert slot.process.stderr is not None
        slot.forwarder = asyncio.create_task(_forward_lines(slot.process.stderr))

    async def _start_all(self) -> bool:
        for slot in self._slots:
            await self._spawn(slot)
        ready = await asyncio.gather(*(self._until_ready(slot) for slot in self._slots))
        return all(ready)

    async def _until_ready(self, slot: WorkerSlot) -> bool:
        """Polls the worker's /readyz until 200; False if it exits or takes too long."""
        assert self._http is not None
        deadline = time.monotonic() + self.config.postgres_connect_timeout + START_GRACE
        assert self._stop is not None
        while slot.running() and time.monotonic() < deadline and not self._stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                response = await self._http.get(self._worker_url(slot, "/readyz"))
                if response.status_code == 200:
                    return True
            await asyncio.sleep(READY_POLL)
        if self._stop.is_set():
            return False
        if slot.running():
            logger.error("worker did not become ready in time", extra={"worker": slot.index})
        else:
            assert slot.process is not None
            logger.error(
                "worker exited while starting",
                extra={"worker": slot.index, "code": slot.process.returncode},
            )
        return False

    async def _keep(self, slot: WorkerSlot) -> None:
        """Restarts the slot's worker whenever it dies, until the service stops."""
        assert self._stop is not None
        while True:
            assert slot.process is not None
            code = await slot.process.wait()
            self._merger.retire(slot.process.pid)
            if self._stopping:
                return
            logger.error(
                "worker exited",
                extra={"worker": slot.index, "pid": slot.process.pid, "code": code},
            )
            delay = slot.policy.next_delay()
            if delay is None:
                logger.error("worker crash loop: giving up", extra={"worker": slot.index})
                self._failed = True
                self._stop.set()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
                return  # stopping: no restart
            # Shielded: a spawn under way completes even if this task is cancelled,
            # so that _stop_all sees (and stops) every worker that was started.
            spawn = asyncio.create_task(self._spawn(slot))
            self._spawning.add(spawn)
            spawn.add_done_callback(self._spawning.discard)
            await asyncio.shield(spawn)
            self._restarts += 1
            if await self._until_ready(slot):
                assert slot.process is not None
                logger.warning(
                    "worker restarted", extra={"worker": slot.index, "pid": slot.process.pid}
                )

    async def _stop_all(self, keepers: list[asyncio.Task[None]]) -> bool:
        """SIGTERM to every worker; True when all of them drained and exited 0."""
        self._stopping = True
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        if self._spawning:
            await asyncio.wait(set(self._spawning))
        live = [slot for slot in self._slots if slot.running()]
        waits: dict[asyncio.Task[int], WorkerSlot] = {}
        for slot in live:
            assert slot.process is not None
            with contextlib.suppress(ProcessLookupError):
                slot.process.send_signal(signal.SIGTERM)
            waits[asyncio.create_task(slot.process.wait())] = slot
        clean = True
        if waits:
            done, pending = await asyncio.wait(
                waits, timeout=self.config.shutdown_timeout + STOP_GRACE
            )
            for task in pending:
                slot = waits[task]
                logger.error("worker did not stop in time; killed", extra={"worker": slot.index})
                assert slot.process is not None
                with contextlib.suppress(ProcessLookupError):
                    slot.process.kill()
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE)
            clean = not pending and all(task.result() == 0 for task in done)
            for task in done:
                if task.result() != 0:
                    slot = waits[task]
                    logger.error(
                        "worker stopped with an error",
                        extra={"worker": slot.index, "code": task.result()},
                    )
        forwarders = [slot.forwarder for slot in self._slots if slot.forwarder is not None]
        if forwarders:
            await asyncio.wait(forwarders, timeout=STOP_GRACE)
        return clean

    def _worker_url(self, slot: WorkerSlot, path: str) -> str:
        return f"http://{WORKER_METRICS_HOST}:{slot.metrics_port}{path}"

    def _log(self, message: str, **fields: Any) -> None:
        lifecycle.info(message, extra=fields)
        logs.flush()

    # ------------------------------------------------------------ the operations port

    async def readiness(self) -> str | None:
        """None when every worker is ready, else the first reason found."""
        if self._stopping or (self._stop is not None and self._stop.is_set()):
            return "shutting down"
        if not self._serving:
            return "starting: the workers are not up yet"
        for slot in self._slots:
            if not slot.running():
                return f"worker {slot.index} is restarting"
        answers = await asyncio.gather(*(self._worker_ready(slot) for slot in self._slots))
        return next((reason for reason in answers if reason is not None), None)

    async def _worker_ready(self, slot: WorkerSlot) -> str | None:
        assert self._http is not None
        try:
            response = await self._http.get(self._worker_url(slot, "/readyz"))
        except httpx.HTTPError:
            return f"worker {slot.index} does not answer"
        if response.status_code == 200:
            return None
        try:
            reason = str(response.json().get("reason", response.status_code))
        except (ValueError, AttributeError):
            reason = str(response.status_code)
        return f"worker {slot.index}: {reason}"

    async def metrics(self) -> bytes:
        """Every worker's /metrics merged, plus the supervisor's own families."""
        scrapes = await asyncio.gather(*(self._scrape(slot) for slot in self._slots))
        return exposition(self._merger.merged([s for s in scrapes if s], self._own_metrics()))

    async def _scrape(self, slot: WorkerSlot) -> list[Metric] | None:
        assert self._http is not None
        process = slot.process
        if process is None or process.returncode is not None:
            return None  # exited: what it counted is in the merger's retired totals
        try:
            response = await self._http.get(self._worker_url(slot, "/metrics"))
            response.raise_for_status()
        except httpx.HTTPError:
            # Alive but not answering (starting, or busy): its last scrape stands in.
            return self._merger.last(process.pid)
        families = parse(response.text)
        self._merger.observed(process.pid, families)
        return families

    def _own_metrics(self) -> list[Metric]:
        workers = Metric("notify_workers", "Worker processes configured (NOTIFY_WORKERS).", "gauge")
        workers.add_sample("notify_workers", {}, float(self.config.workers))
        running = Metric("notify_workers_running", "Worker processes running now.", "gauge")
        running.add_sample(
            "notify_workers_running", {}, float(sum(s.running() for s in self._slots))
        )
        restarts = Metric(
            "notify_worker_restarts", "Workers started again after one died.", "counter"
        )
        restarts.add_sample("notify_worker_restarts_total", {}, float(self._restarts))
        return [workers, running, restarts]


class SupervisorHealthApp:
    """The operations port of a supervised service (ASGI)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b'{"error":"method not allowed"}')
        elif path == "/healthz":
            await _respond(send, 200, b'{"status":"ok"}')
        elif path == "/readyz":
            reason = await self._supervisor.readiness()
            if reason is None:
                await _respond(send, 200, b'{"status":"ready"}')
            else:
                body = json.dumps({"status": "not ready", "reason": reason}).encode()
                await _respond(send, 503, body)
        elif path == "/metrics":
            from notify.metrics import CONTENT_TYPE

            body = await self._supervisor.metrics()
            await _respond(send, 200, body, CONTENT_TYPE.encode())
        else:
            await _respond(send, 404, b'{"error":"not found"}')


async def _respond(
    send: Any, status: int, body: bytes, content_type: bytes = b"application/json"
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _forward_lines(stream: asyncio.StreamReader) -> None:
    """Copies a worker's stderr to ours, whole lines per write (no line is split)."""
    out = sys.stderr.buffer
    pending = b""
    while chunk := await stream.read(64 * 1024):
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            sys.stderr.flush()  # our own buffered lines first, whole
            out.write(data[:cut])
            out.flush()
        pending = data[cut:]
    if pending:
        out.write(pending + b"\n")
        out.flush()


# ---------------------------------------------------------------- the worker side


def become_worker(index: int, parent: int) -> None:
    """Called first in a worker: die with the supervisor, and say which worker logs."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        raise SystemExit(1)  # the supervisor is already gone
    tag = _WorkerTag(index)
    for handler in logging.getLogger().handlers:
        handler.addFilter(tag)


_RENAMED = {
    "notify started": "notify worker started",
    "notify shutting down": "notify worker shutting down",
    "notify stopped": "notify worker stopped",
}


class _WorkerTag(logging.Filter):
    """Adds ``worker`` to a worker's lines and renames its lifecycle lines.

    The supervisor alone says "notify started" (with the service's ports), so
    tools that read the ports from that line never get a worker's private one.
    """

    def __init__(self, index: int) -> None:
        super().__init__()
        self._index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self._index
        if record.name == "notify.lifecycle" and isinstance(record.msg, str):
            record.msg = _RENAMED.get(record.msg, record.msg)
            record.pid = os.getpid()
        return True
