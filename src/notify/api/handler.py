"""Decorators every handler wears: safe errors and an enforced deadline.

connect-python parses ``connect-timeout-ms`` and ``grpc-timeout`` but does
not enforce them; ``unary`` does, answering DEADLINE_EXCEEDED. Handlers take
``(self, request, ctx)``, as the generated service protocols declare.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast

from connectrpc.request import RequestContext

from notify.api.errors import connect_errors, guard_stream

P = ParamSpec("P")
Res = TypeVar("Res")
Ctx = RequestContext[Any, Any]


def _context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Ctx:
    return cast(Ctx, kwargs["ctx"] if "ctx" in kwargs else args[-1])


def unary(
    method: Callable[P, Coroutine[Any, Any, Res]],
) -> Callable[P, Coroutine[Any, Any, Res]]:
    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Res:
        timeout_ms = _context(args, kwargs).timeout_ms()
        with connect_errors():
            if timeout_ms is None:
                return await method(*args, **kwargs)
            if timeout_ms <= 0:
                raise TimeoutError
            async with asyncio.timeout(timeout_ms / 1000):
                return await method(*args, **kwargs)

    return wrapper


def server_stream(
    method: Callable[P, AsyncIterator[Res]],
) -> Callable[P, AsyncIterator[Res]]:
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Res]:
        return cast(AsyncIterator[Res], guard_stream(method(*args, **kwargs)))

    return wrapper
