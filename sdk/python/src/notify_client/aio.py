"""The asyncio producer client: the same calls, rules and results as NotifyClient.

Each call returns or raises within its deadline, waiting with ``asyncio.sleep``
so the event loop keeps serving while a retry waits. Producers that must not
wait at all use ``AsyncBackgroundSender``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar, Unpack

from connectrpc.client import ConnectClient, ResponseMetadata
from connectrpc.errors import ConnectError
from connectrpc.method import MethodInfo
from google.protobuf.message import Message

from notify_client import proto
from notify_client._common import (
    DEFAULT_INTERNAL_ADDRESS,
    DataChangeResult,
    NotifyResult,
    internal_headers,
    to_error,
)
from notify_client.payload import (
    DataChangeFields,
    NotifyFields,
    data_change_request,
    notify_request,
)
from notify_client.proto import pb
from notify_client.retry import Attempts, RetryPolicy

__all__ = ["AsyncNotifyClient"]

REQ = TypeVar("REQ", bound=Message)
RES = TypeVar("RES", bound=Message)


class AsyncNotifyClient:
    """Calls the internal port (``http://host:8081``) of a notify server.

    ``token`` defaults to ``NOTIFY_INTERNAL_TOKEN``. ``clock``, ``sleep``,
    ``wall_clock`` and ``rng`` exist so tests can drive time; leave them be.
    """

    def __init__(
        self,
        address: str = DEFAULT_INTERNAL_ADDRESS,
        *,
        token: str | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        # Requests are small: gzip would cost more than it saves.
        self._conn = ConnectClient(address.rstrip("/"), send_compression=None)
        self._headers = internal_headers(token)
        self._policy = retry or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()

    async def notify(
        self, *, deadline: float | None = None, **fields: Unpack[NotifyFields]
    ) -> NotifyResult:
        """Stores and pushes one notification to ``user_ids``; fields as in ``NotifyFields``.

        ``notification_id`` is the idempotency key: give your own (e.g. the
        event's id) to make your own retries harmless too; otherwise one is
        made, reused by every retry of this call, and returned in the result.
        """
        request = notify_request(**fields, now=self._wall_clock)
        return await self.send(request, deadline=deadline)

    async def send(
        self, request: pb.NotifyRequest, *, deadline: float | None = None
    ) -> NotifyResult:
        """Sends a prepared NotifyRequest (it must have its notification_id)."""
        return NotifyResult.of(request, await self._call(proto.NOTIFY, request, deadline))

    async def publish_data_change(
        self, *, deadline: float | None = None, **fields: Unpack[DataChangeFields]
    ) -> DataChangeResult:
        """Tells every live session of ``user_ids`` that ``subject_ref`` changed."""
        request = data_change_request(**fields)
        response = await self._call(proto.PUBLISH_DATA_CHANGE, request, deadline)
        return DataChangeResult(request.idempotency_key, response.sessions)

    async def _call(
        self, method: MethodInfo[REQ, RES], request: REQ, deadline: float | None
    ) -> RES:
        attempts = Attempts(self._policy, self._clock, self._rng, deadline)
        while True:
            with ResponseMetadata() as meta:
                try:
                    return await self._conn.execute_unary(
                        request=request,
                        method=method,
                        headers=self._headers,
                        timeout_ms=attempts.timeout_ms(),
                    )
                except ConnectError as exc:
                    error = to_error(exc, meta.headers(), attempts.made)
            wait = attempts.wait_before_retry(error)
            if wait is None:
                raise error
            await self._sleep(wait)

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
