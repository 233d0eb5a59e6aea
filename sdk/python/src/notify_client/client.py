"""The synchronous producer client: Notify, PublishDataChange and SetTenantPreferences, retried.

For code that runs in a request handler or a database transaction: each call
returns or raises within its deadline (``RetryPolicy.deadline`` unless the
call passes its own), retries the transient failures inside it with the same
idempotency key, and never leaves anything running behind the caller's back.
Producers that must not wait at all use ``BackgroundSender``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar, Unpack

from connectrpc.client import ConnectClientSync, ResponseMetadata
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

__all__ = ["NotifyClient"]

REQ = TypeVar("REQ", bound=Message)
RES = TypeVar("RES", bound=Message)


class NotifyClient:
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
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        # Requests are small: gzip would cost more than it saves.
        self._conn = ConnectClientSync(address.rstrip("/"), send_compression=None)
        self._headers = internal_headers(token)
        self._policy = retry or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()

    def notify(
        self, *, deadline: float | None = None, **fields: Unpack[NotifyFields]
    ) -> NotifyResult:
        """Stores and pushes one notification to ``user_ids``; fields as in ``NotifyFields``.

        ``notification_id`` is the idempotency key: give your own (e.g. the
        event's id) to make your own retries harmless too; otherwise one is
        made, reused by every retry of this call, and returned in the result.
        """
        request = notify_request(**fields, now=self._wall_clock)
        return self.send(request, deadline=deadline)

    def send(self, request: pb.NotifyRequest, *, deadline: float | None = None) -> NotifyResult:
        """Sends a prepared NotifyRequest (it must have its notification_id)."""
        return NotifyResult.of(request, self._call(proto.NOTIFY, request, deadline))

    def publish_data_change(
        self, *, deadline: float | None = None, **fields: Unpack[DataChangeFields]
    ) -> DataChangeResult:
        """Tells every live session of ``user_ids`` that ``subject_ref`` changed."""
        request = data_change_request(**fields)
        response = self._call(proto.PUBLISH_DATA_CHANGE, request, deadline)
        return DataChangeResult(request.idempotency_key, response.sessions)

    def set_tenant_preferences(
        self,
        tenant_id: str,
        *,
        defaults: list[pb.PreferenceRule],
        required_categories: list[str],
        deadline: float | None = None,
    ) -> None:
        """Replaces a tenant's default rules and the categories its users cannot opt out of.

        Retried like Notify: setting the same values twice is harmless.
        """
        request = pb.SetTenantPreferencesRequest(
            tenant_id=tenant_id, defaults=defaults, required_categories=required_categories
        )
        self._call(proto.SET_TENANT_PREFERENCES, request, deadline)

    def _call(self, method: MethodInfo[REQ, RES], request: REQ, deadline: float | None) -> RES:
        attempts = Attempts(self._policy, self._clock, self._rng, deadline)
        while True:
            with ResponseMetadata() as meta:
                try:
                    return self._conn.execute_unary(
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
            self._sleep(wait)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
