"""Typed exceptions for failed calls, each carrying the Connect code.

Producers catch the class they can act on (``Unavailable`` to queue for
later, ``InvalidArgument`` to fix the payload) instead of matching strings;
``NotifyError.code`` is the wire code for logs and metrics.
"""

from __future__ import annotations

import math

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.rpc.error_details_pb2 import RetryInfo

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Canceled",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "NotifyError",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "from_connect_error",
]


class NotifyError(Exception):
    """A call that failed, with its Connect ``code`` and the server's ``message``.

    ``retry_after`` is the server's retry hint in seconds (RetryInfo detail or
    ``Retry-After`` header), when it sent one; ``attempts`` is how many tries
    the SDK made before giving up.
    """

    code: Code = Code.UNKNOWN

    def __init__(
        self, message: str, *, retry_after: float | None = None, attempts: int = 1
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class Canceled(NotifyError):
    code = Code.CANCELED


class Unknown(NotifyError):
    code = Code.UNKNOWN


class InvalidArgument(NotifyError):
    code = Code.INVALID_ARGUMENT


class DeadlineExceeded(NotifyError):
    code = Code.DEADLINE_EXCEEDED


class NotFound(NotifyError):
    code = Code.NOT_FOUND


class AlreadyExists(NotifyError):
    code = Code.ALREADY_EXISTS


class PermissionDenied(NotifyError):
    code = Code.PERMISSION_DENIED


class ResourceExhausted(NotifyError):
    code = Code.RESOURCE_EXHAUSTED


class FailedPrecondition(NotifyError):
    code = Code.FAILED_PRECONDITION


class Aborted(NotifyError):
    code = Code.ABORTED


class OutOfRange(NotifyError):
    code = Code.OUT_OF_RANGE


class Unimplemented(NotifyError):
    code = Code.UNIMPLEMENTED


class Internal(NotifyError):
    code = Code.INTERNAL


class Unavailable(NotifyError):
    code = Code.UNAVAILABLE


class DataLoss(NotifyError):
    code = Code.DATA_LOSS


class Unauthenticated(NotifyError):
    code = Code.UNAUTHENTICATED


_BY_CODE: dict[Code, type[NotifyError]] = {
    cls.code: cls
    for cls in (
        Canceled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def retry_hint(exc: ConnectError, retry_after_header: str | None) -> float | None:
    """Seconds the server asked us to wait: RetryInfo first, else ``Retry-After``."""
    for detail in exc.details:
        info = RetryInfo()
        if detail.Is(RetryInfo.DESCRIPTOR) and detail.Unpack(info):
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    if retry_after_header is not None:
        try:
            seconds = float(retry_after_header)
        except ValueError:
            return None  # an HTTP date: not something this server sends
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def from_connect_error(
    exc: ConnectError, *, retry_after_header: str | None = None, attempts: int = 1
) -> NotifyError:
    """The typed exception for a ConnectError (and the response's headers)."""
    cls = _BY_CODE.get(exc.code, Unknown)
    return cls(
        exc.message,
        retry_after=retry_hint(exc, retry_after_header),
        attempts=attempts,
    )
