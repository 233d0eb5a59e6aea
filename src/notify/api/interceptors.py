"""Cross-cutting concerns of every RPC, as connect-python interceptors.

Each API app is built with ``interceptors_for(authenticate)``, outermost first:

1. ``ErrorMapping``: any failure becomes a Connect error with a safe message
   (``notify.api.errors``), for unary calls and for every kind of stream.
2. ``Deadlines``: ``connect-timeout-ms`` / ``grpc-timeout`` are enforced
   (connect-python parses them but does not): a unary call is cancelled at its
   deadline, and a stream ends with DEADLINE_EXCEEDED when the deadline passes
   while it waits for its next message.
3. ``Authentication``: the service's credential check runs before the handler
   of *every* RPC the app serves, so a new RPC is authenticated by default.
   Handlers read the result with ``caller()``; they never parse credentials.
4. ``RateLimits``: a token bucket per caller (``notify.core.ratelimit``);
   over it, RESOURCE_EXHAUSTED with a ``Retry-After`` header and a
   ``google.rpc.RetryInfo`` detail.

The RPC log line, request ids and metrics are not here but at the ASGI edge
(``notify.api.observe``), because requests connect-python rejects before any
interceptor runs (an unsupported content type, a malformed envelope, an
unknown path) must be logged and counted too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any, TypeVar

from connectrpc.interceptor import Interceptor
from connectrpc.request import Headers, RequestContext

from notify.api.context import current_request
from notify.api.errors import retry_after_header, to_connect_error
from notify.auth import Principal
from notify.core.errors import Unauthenticated
from notify.core.ratelimit import RateLimiter

REQ = TypeVar("REQ")
RES = TypeVar("RES")
Ctx = RequestContext[Any, Any]
Authenticate = Callable[[Headers], Principal | None]
AuthenticateAsync = Callable[[Headers], Awaitable[Principal | None]]

_caller: ContextVar[Principal | None] = ContextVar("notify_caller", default=None)


def caller() -> Principal:
    """The authenticated caller of the RPC being handled.

    Fails closed: a handler served without the Authentication interceptor
    answers UNAUTHENTICATED instead of running for nobody.
    """
    principal = _caller.get()
    if principal is None:
        raise Unauthenticated("missing credentials")
    return principal


class _Interceptor:
    """Every kind of RPC through two hooks: one for calls, one for streams.

    connect-python applies an interceptor only to the kinds of method it
    implements; implementing all four here means no future RPC kind can slip
    past authentication. Client streams go through ``call``, bidirectional
    streams through ``stream``.
    """

    async def call(
        self, call_next: Callable[[Any, Ctx], Awaitable[RES]], request: Any, ctx: Ctx
    ) -> RES:
        return await call_next(request, ctx)

    def stream(
        self, call_next: Callable[[Any, Ctx], AsyncIterator[RES]], request: Any, ctx: Ctx
    ) -> AsyncIterator[RES]:
        return call_next(request, ctx)

    async def intercept_unary(
        self, call_next: Callable[[REQ, Ctx], Awaitable[RES]], request: REQ, ctx: Ctx
    ) -> RES:
        return await self.call(call_next, request, ctx)

    async def intercept_client_stream(
        self,
        call_next: Callable[[AsyncIterator[REQ], Ctx], Awaitable[RES]],
        request: AsyncIterator[REQ],
        ctx: Ctx,
    ) -> RES:
        return await self.call(call_next, request, ctx)

    def intercept_server_stream(
        self, call_next: Callable[[REQ, Ctx], AsyncIterator[RES]], request: REQ, ctx: Ctx
    ) -> AsyncIterator[RES]:
        return self.stream(call_next, request, ctx)

    def intercept_bidi_stream(
        self,
        call_next: Callable[[AsyncIterator[REQ], Ctx], AsyncIterator[RES]],
        request: AsyncIterator[REQ],
        ctx: Ctx,
    ) -> AsyncIterator[RES]:
        return self.stream(call_next, request, ctx)


class ErrorMapping(_Interceptor):
    async def call(
        self, call_next: Callable[[Any, Ctx], Awaitable[RES]], request: Any, ctx: Ctx
    ) -> RES:
        try:
            return await call_next(request, ctx)
        except Exception as exc:
            raise _translate(exc, ctx) from None

    def stream(
        self, call_next: Callable[[Any, Ctx], AsyncIterator[RES]], request: Any, ctx: Ctx
    ) -> AsyncIterator[RES]:
        return _mapped(call_next, request, ctx)


async def _mapped(
    call_next: Callable[[Any, Ctx], AsyncIterator[RES]], request: Any, ctx: Ctx
) -> AsyncIterator[RES]:
    try:
        # aclosing: when the client goes away the inner generator's cleanup
        # (which unregisters the live session) runs now, not at GC.
        async with aclosing(call_next(request, ctx)) as items:  # type: ignore[type-var]
            async for item in items:
                yield item
    except Exception as exc:
        raise _translate(exc, ctx) from None


def _translate(exc: Exception, ctx: Ctx) -> Exception:
    retry_after = retry_after_header(exc)
    if retry_after is not None:
        ctx.response_headers()["retry-after"] = retry_after
    return to_connect_error(exc)


class Deadlines(_Interceptor):
    async def call(
        self, call_next: Callable[[Any, Ctx], Awaitable[RES]], request: Any, ctx: Ctx
    ) -> RES:
        timeout_ms = ctx.timeout_ms()
        if timeout_ms is None:
            return await call_next(request, ctx)
        if timeout_ms <= 0:
            raise TimeoutError
        async with asyncio.timeout(timeout_ms / 1000):
            return await call_next(request, ctx)

    def stream(
        self, call_next: Callable[[Any, Ctx], AsyncIterator[RES]], request: Any, ctx: Ctx
    ) -> AsyncIterator[RES]:
        timeout_ms = ctx.timeout_ms()
        if timeout_ms is None:
            return call_next(request, ctx)  # no deadline: no extra layer per message
        return _bounded(call_next(request, ctx), timeout_ms)


async def _bounded(stream: AsyncIterator[RES], timeout_ms: float) -> AsyncIterator[RES]:
    """Yields from ``stream`` until it ends or the deadline passes (TimeoutError).

    The deadline bounds each wait for the next message, never a ``yield``: a
    cancellation must land inside the stream's own await, not in the
    server's write of the previous message.
    """
    deadline = asyncio.get_running_loop().time() + max(0.0, timeout_ms) / 1000
    async with aclosing(stream) as items:  # type: ignore[type-var]
        iterator = aiter(items)
        while True:
            async with asyncio.timeout_at(deadline):
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    return
            yield item


class Authentication(_Interceptor):
    """Runs ``authenticate(headers)`` before every handler of the app.

    ``authenticate`` raises Unauthenticated, or returns the Principal (client
    port) or None (internal port: a producer has no user identity).
    """

    def __init__(
        self, authenticate: Authenticate, authenticate_async: AuthenticateAsync | None = None
    ) -> None:
        self._authenticate = authenticate
        self._authenticate_async = authenticate_async

    def _admit(self, ctx: Ctx, principal: Principal | None) -> None:
        _caller.set(principal)
        info = current_request.get()
        if info is not None and principal is not None:
            info.tenant_id = principal.tenant_id
            info.user_id = principal.user_id

    async def call(
        self, call_next: Callable[[Any, Ctx], Awaitable[RES]], request: Any, ctx: Ctx
    ) -> RES:
        headers = ctx.request_headers()
        if self._authenticate_async is not None:
            self._admit(ctx, await self._authenticate_async(headers))
        else:
            self._admit(ctx, self._authenticate(headers))
        return await call_next(request, ctx)

    def stream(
        self, call_next: Callable[[Any, Ctx], AsyncIterator[RES]], request: Any, ctx: Ctx
    ) -> AsyncIterator[RES]:
        # Eager and synchronous (from the key caches): it runs when connect-python
        # opens the stream, inside ErrorMapping, and adds no layer per message. A
        # token signed by a key not fetched yet is refused while the refresh runs;
        # the client's reconnect gets through.
        self._admit(ctx, self._authenticate(ctx.request_headers()))
        return call_next(request, ctx)


class RateLimits(_Interceptor):
    """Spends one token of the caller's bucket per call (a stream: per open).

    Keyed by (tenant, user) for clients; producers share one key per
    internal token, and there is one internal token.
    """

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def _spend(self) -> None:
        principal = _caller.get()
        key = (principal.tenant_id, principal.user_id) if principal is not None else "producer"
        self._limiter.take(key)

    async def call(
        self, call_next: Callable[[Any, Ctx], Awaitable[RES]], request: Any, ctx: Ctx
    ) -> RES:
        self._spend()
        return await call_next(request, ctx)

    def stream(
        self, call_next: Callable[[Any, Ctx], AsyncIterator[RES]], request: Any, ctx: Ctx
    ) -> AsyncIterator[RES]:
        self._spend()
        return call_next(request, ctx)


def interceptors_for(
    authenticate: Authenticate,
    *,
    authenticate_async: AuthenticateAsync | None = None,
    limiter: RateLimiter | None = None,
) -> list[Interceptor]:
    """What every API app is built with, outermost first."""
    chain: list[Interceptor] = [
        ErrorMapping(),
        Deadlines(),
        Authentication(authenticate, authenticate_async),
    ]
    if limiter is not None and limiter.rate.enabled:
        chain.append(RateLimits(limiter))
    return chain
