"""One place that turns failures into Connect/gRPC errors.

connect-python reports any exception that is not a ConnectError as
``unknown`` with the exception's text, which leaks internals. The error
interceptor (``notify.api.interceptors``) runs every handler through
``to_connect_error``, so the caller sees a proper code and a safe message,
and the full traceback goes only to the server log.
"""

from __future__ import annotations

import logging
import math

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo

from notify.core import errors
from notify.core.ratelimit import RateLimited

logger = logging.getLogger("notify.api")

_CODES: dict[type[errors.NotifyError], Code] = {
    errors.InvalidArgument: Code.INVALID_ARGUMENT,
    errors.NotFound: Code.NOT_FOUND,
    errors.Unauthenticated: Code.UNAUTHENTICATED,
    errors.Unavailable: Code.UNAVAILABLE,
    errors.ResourceExhausted: Code.RESOURCE_EXHAUSTED,
    errors.Unimplemented: Code.UNIMPLEMENTED,
    errors.OutOfRange: Code.OUT_OF_RANGE,
}


def code_of(error: errors.NotifyError) -> Code:
    """The code of the nearest mapped class in the error's MRO: subclasses map too."""
    for cls in type(error).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return Code.INTERNAL


def to_connect_error(exc: BaseException) -> ConnectError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, RateLimited):
        # The standard retry hint: google.rpc.RetryInfo in the error details
        # (Connect JSON "details", gRPC grpc-status-details-bin).
        delay = Duration()
        delay.FromNanoseconds(max(1, math.ceil(exc.retry_after * 1e9)))
        return ConnectError(code_of(exc), exc.message, details=[RetryInfo(retry_delay=delay)])
    if isinstance(exc, errors.NotifyError):
        return ConnectError(code_of(exc), exc.message)
    if isinstance(exc, TimeoutError):
        return ConnectError(Code.DEADLINE_EXCEEDED, "the request deadline was exceeded")
    logger.error("unhandled error in handler", exc_info=exc)
    return ConnectError(Code.INTERNAL, "internal error")


def retry_after_header(exc: BaseException) -> str | None:
    """The HTTP ``Retry-After`` value (whole seconds, rounded up) for a rate-limited call."""
    if isinstance(exc, RateLimited):
        return str(max(1, math.ceil(exc.retry_after)))
    return None
