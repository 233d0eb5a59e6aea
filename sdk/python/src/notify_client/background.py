"""Fire-and-forget sending for producers that must not wait at all.

``send_nowait`` builds the request (so its idempotency key is fixed at once
and returned), puts it on a bounded in-memory queue and returns: it never
blocks and never raises a network error. Worker threads (or tasks) send the
queue with the client's retries and deadline. A full queue raises
``QueueFull`` at once rather than growing without bound or blocking the
caller; a send that still fails after its retries goes to ``on_error``
(default: a warning in the ``notify_client`` log). The queue lives in this
process only: what is queued when the process dies is lost, so work that must
survive a crash belongs in the producer's own outbox table.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Unpack

from notify_client.aio import AsyncNotifyClient
from notify_client.client import NotifyClient
from notify_client.errors import NotifyError
from notify_client.payload import NotifyFields, notify_request
from notify_client.proto import pb

__all__ = ["AsyncBackgroundSender", "BackgroundSender", "ErrorHandler", "QueueFull"]

log = logging.getLogger("notify_client")

ErrorHandler = Callable[[pb.NotifyRequest, NotifyError], None]


class QueueFull(Exception):
    """The background queue is at ``max_queue``: the notification was not queued."""


def _log_error(request: pb.NotifyRequest, error: NotifyError) -> None:
    log.warning(
        "notify %s for tenant %s failed after %d attempts: %s",
        request.notification_id,
        request.tenant_id,
        error.attempts,
        error,
    )


class BackgroundSender:
    """Sends queued notifications from ``workers`` daemon threads through ``client``."""

    def __init__(
        self,
        client: NotifyClient,
        *,
        max_queue: int = 10_000,
        workers: int = 2,
        on_error: ErrorHandler = _log_error,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self._client = client
        self._queue: queue.Queue[pb.NotifyRequest | None] = queue.Queue(max_queue)
        self._on_error = on_error
        self._wall_clock = wall_clock or time.time
        self._idle = threading.Condition()
        self._pending = 0
        self.sent = 0
        self.failed = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"notify-sender-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def send_nowait(self, **fields: Unpack[NotifyFields]) -> str:
        """Queues one Notify and returns its notification_id; ``QueueFull`` if there is no room."""
        request = notify_request(**fields, now=self._wall_clock)
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._done()
            raise QueueFull(f"{self._queue.maxsize} notifications already queued") from None
        return request.notification_id

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far was sent or failed; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flushes (up to ``timeout``), then stops the workers; True if nothing was left."""
        flushed = self.flush(timeout)
        for _ in self._threads:
            # Blocks only while the queue is full, which a timed-out flush allows.
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        return flushed

    def _work(self) -> None:
        while (request := self._queue.get()) is not None:
            try:
                self._client.send(request)
                self.sent += 1
            except NotifyError as error:
                self.failed += 1
                self._report(request, error)
            finally:
                self._done()

    def _report(self, request: pb.NotifyRequest, error: NotifyError) -> None:
        try:
            self._on_error(request, error)
        except Exception:
            log.exception("on_error raised for notify %s", request.notification_id)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()


class AsyncBackgroundSender:
    """The asyncio twin: ``concurrency`` tasks on the running loop send the queue.

    Use it as ``async with AsyncBackgroundSender(client) as sender:``; leaving
    the block flushes what is queued, then stops the tasks.
    """

    def __init__(
        self,
        client: AsyncNotifyClient,
        *,
        max_queue: int = 10_000,
        concurrency: int = 8,
        on_error: ErrorHandler = _log_error,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self._client = client
        self._queue: asyncio.Queue[pb.NotifyRequest] = asyncio.Queue(max_queue)
        self._concurrency = concurrency
        self._on_error = on_error
        self._wall_clock = wall_clock or time.time
        self._tasks: list[asyncio.Task[None]] = []
        self.sent = 0
        self.failed = 0

    async def __aenter__(self) -> AsyncBackgroundSender:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(), name=f"notify-sender-{i}")
                for i in range(self._concurrency)
            ]

    def send_nowait(self, **fields: Unpack[NotifyFields]) -> str:
        """Queues one Notify and returns its notification_id; ``QueueFull`` if there is no room."""
        request = notify_request(**fields, now=self._wall_clock)
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            raise QueueFull(f"{self._queue.maxsize} notifications already queued") from None
        return request.notification_id

    async def flush(self) -> None:
        """Waits until everything queued so far was sent or failed."""
        await self._queue.join()

    async def aclose(self) -> None:
        """Sends what is queued (starting the tasks if need be), then stops them."""
        self.start()
        await self.flush()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            request = await self._queue.get()
            try:
                await self._client.send(request)
                self.sent += 1
            except NotifyError as error:
                self.failed += 1
                try:
                    self._on_error(request, error)
                except Exception:
                    log.exception("on_error raised for notify %s", request.notification_id)
            finally:
                self._queue.task_done()
