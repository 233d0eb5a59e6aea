"""One place that turns failures into Connect/gRPC errors.

connect-python reports any exception that is not a ConnectError as
``unknown`` with the exception's text, which leaks internals. The error
interceptor (``notify.api.interceptors``) runs every handler through
``to_connect_error``, so the caller sees a proper code and a safe message,
and the full traceback goes only to the server log.
"""

from __future__ import annotations

import logging

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from notify.core import errors

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
    if isinstance(exc, errors.NotifyError):
        return ConnectError(code_of(exc), exc.message)
    if isinstance(exc, TimeoutError):
        return ConnectError(Code.DEADLINE_EXCEEDED, "the request deadline was exceeded")
    logger.error("unhandled error in handler", exc_info=exc)
    return ConnectError(Code.INTERNAL, "internal error")
