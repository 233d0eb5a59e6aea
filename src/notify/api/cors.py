"""CORS for the client port, so browser apps on other origins can call it.

Browsers talk to the client port with ``@connectrpc/connect-web`` (Connect or
gRPC-Web over ``fetch``). A call from another origin is only let through when
the response names that origin; calls with a ``Content-Type`` other than the
three "simple" ones (every Connect and gRPC-Web call) are first preflighted
with an ``OPTIONS`` request.

Policy, from ``NOTIFY_ALLOWED_ORIGINS``:
- exact origins (``https://app.example.com``): the request's ``Origin`` is
  echoed back with ``Access-Control-Allow-Credentials: true``;
- ``*``, only when configured explicitly: ``Access-Control-Allow-Origin: *``
  and never credentials (browsers refuse that pair anyway);
- any other origin gets no CORS headers at all, and its preflight a 403, so
  the browser blocks the call before it is sent.

A preflight from an allowed origin is answered here with 204 and never reaches
the Connect app (which would refuse ``OPTIONS`` with 405), so the middleware
sits outside ObservedApp: preflights are not RPCs and are not counted as such.
Once any origin is configured, every response carries ``Vary: Origin``, since
its CORS headers depend on it; with none configured, only preflights are
answered here (403), everything else passes through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALLOWED_METHODS = ("POST", "GET", "OPTIONS")

# What Connect and gRPC-Web clients send (connect-web, grpc-web, improbable's).
ALLOWED_HEADERS = (
    "Content-Type",
    "Connect-Protocol-Version",
    "Connect-Timeout-Ms",
    "Connect-Accept-Encoding",
    "Connect-Content-Encoding",
    "Accept-Encoding",
    "Content-Encoding",
    "Authorization",
    "Grpc-Timeout",
    "Grpc-Accept-Encoding",
    "Grpc-Encoding",
    "X-Grpc-Web",
    "X-User-Agent",
    "X-Request-Id",
    # Server-Sent Events read with fetch (not EventSource) resume with it.
    "Last-Event-ID",
)

# What those clients read off a response: gRPC-Web puts the status in headers
# when there is no body (trailers-only), Connect the content encodings.
EXPOSED_HEADERS = (
    "Grpc-Status",
    "Grpc-Message",
    "Grpc-Status-Details-Bin",
    "Grpc-Encoding",
    "Grpc-Accept-Encoding",
    "Content-Encoding",
    "Connect-Content-Encoding",
    "Connect-Accept-Encoding",
    "X-Request-Id",
)

PREFLIGHT_MAX_AGE = 7200  # seconds; Chromium caps it at 7200 anyway

_VARY = (b"vary", b"Origin")


def _join(values: Iterable[str]) -> bytes:
    return ", ".join(values).encode("latin-1")


def normalize_origin(origin: str) -> str:
    """Scheme and host are case-insensitive and browsers never send a trailing slash."""
    return origin.strip().rstrip("/").lower()


class CORSMiddleware:
    """Wraps an ASGI app with the CORS policy for ``allowed_origins``."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str]) -> None:
        self._app = app
        origins = {normalize_origin(origin) for origin in allowed_origins}
        self._any = "*" in origins
        origins.discard("*")
        self._origins = frozenset(origins)
        self._preflight_common = [
            (b"access-control-allow-methods", _join(ALLOWED_METHODS)),
            (b"access-control-allow-headers", _join(ALLOWED_HEADERS)),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
        ]
        self._exposed = (b"access-control-expose-headers", _join(EXPOSED_HEADERS))

    def allow_origin_headers(self, origin: str) -> list[tuple[bytes, bytes]] | None:
        """The Allow-Origin (and -Credentials) headers for ``origin``; None if not allowed."""
        if normalize_origin(origin) in self._origins:
            return [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
            ]
        if self._any:
            return [(b"access-control-allow-origin", b"*")]
        return None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: a request that passes through gets the app's
        # own awaitable, so it holds no frame of this middleware while it lasts.
        if scope["type"] != "http":
            return self._app(scope, receive, send)
        origin = ""
        preflight_method = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                preflight_method = True
        if scope["method"] == "OPTIONS" and origin and preflight_method:
            return self._preflight(origin, send)
        if not self._origins and not self._any:
            # Nothing configured: no browser origin is allowed, nothing to add.
            return self._app(scope, receive, send)
        return self._with_cors(scope, receive, send, origin)

    async def _with_cors(self, scope: Scope, receive: Receive, send: Send, origin: str) -> None:
        allowed = self.allow_origin_headers(origin) if origin else None
        extra = [*allowed, self._exposed] if allowed else []

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if not name.lower().startswith(b"access-control-")
                ]
                message = {**message, "headers": [*_with_vary(headers), *extra]}
            await send(message)

        await self._app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str, send: Send) -> None:
        allowed = self.allow_origin_headers(origin)
        if allowed is None:
            body = b"CORS: origin not allowed\n"
            headers = [
                _VARY,
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        headers = [_VARY, *allowed, *self._preflight_common, (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _with_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Adds Origin to the response's Vary header, or a Vary header if it has none."""
    out: list[tuple[bytes, bytes]] = []
    found = False
    for name, value in headers:
        if name.lower() == b"vary":
            found = True
            tokens = [token.strip().lower() for token in value.split(b",")]
            if b"origin" not in tokens and b"*" not in tokens:
                value = value + b", Origin"
        out.append((name, value))
    if not found:
        out.append(_VARY)
    return out
