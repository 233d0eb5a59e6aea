"""One place that turns failures into Connect/gRPC errors.

connect-python reports any exception that is not a ConnectError as
``unknown`` with the exception's text, which leaks internals. Every handler
runs inside ``connect_errors`` so the caller sees a proper code and a safe
message, and the full traceback goes only to the server log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from notify import errors

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


def to_connect_error(exc: BaseException) -> ConnectError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, errors.NotifyError):
        return ConnectError(_CODES.get(type(exc), Code.INTERNAL), exc.message)
    if isinstance(exc, TimeoutError):
        return ConnectError(Code.DEADLINE_EXCEEDED, "the request deadline was exceeded")
    logger.error("unhandled error in handler", exc_info=exc)
    return ConnectError(Code.INTERNAL, "internal error")


@contextmanager
def connect_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise to_connect_error(exc) from None


async def guard_stream(stream: AsyncIterator[object]) -> AsyncIterator[object]:
    # aclosing: when the client goes away the inner generator's cleanup (which
    # unregisters the live session) runs now, not whenever GC gets to it.
    async with aclosing(stream) as items:  # type: ignore[type-var]
        with connect_errors():
            async for item in items:
                yield item
