"""What the sync and the async producer clients share: settings and results."""

from __future__ import annotations

import os
from dataclasses import dataclass

from connectrpc.errors import ConnectError
from connectrpc.request import Headers

from notify_client.errors import NotifyError, from_connect_error
from notify_client.proto import pb

__all__ = [
    "DEFAULT_INTERNAL_ADDRESS",
    "TOKEN_ENV",
    "DataChangeResult",
    "NotifyResult",
    "internal_headers",
    "to_error",
]

DEFAULT_INTERNAL_ADDRESS = "http://localhost:8081"
TOKEN_ENV = "NOTIFY_INTERNAL_TOKEN"
TOKEN_HEADER = "X-Notify-Internal-Token"


@dataclass(frozen=True)
class NotifyResult:
    """The answer to one Notify: the idempotency key used, and the copies by outcome."""

    notification_id: str
    delivered: int
    pending: int
    failed: int
    # Copies not created because the user's preferences turned the channel off.
    skipped: int = 0

    @classmethod
    def of(cls, request: pb.NotifyRequest, response: pb.NotifyResponse) -> NotifyResult:
        return cls(
            request.notification_id,
            response.delivered,
            response.pending,
            response.failed,
            response.skipped,
        )


@dataclass(frozen=True)
class DataChangeResult:
    """The answer to one PublishDataChange: its key and how many live sessions it reached."""

    idempotency_key: str
    sessions: int


def internal_headers(token: str | None) -> dict[str, str]:
    """The internal port's credential: the argument, else ``NOTIFY_INTERNAL_TOKEN``.

    Neither set is allowed (a dev-mode server skips the check); a server that
    wants one answers UNAUTHENTICATED.
    """
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    return {TOKEN_HEADER: token} if token else {}


def to_error(exc: ConnectError, headers: Headers, attempts: int) -> NotifyError:
    error = from_connect_error(
        exc, retry_after_header=headers.get("retry-after"), attempts=attempts
    )
    error.__cause__ = exc
    return error
