"""Per-request facts shared between the observing middleware and the handlers.

The middleware (``notify.api.observe``) opens a RequestInfo for every HTTP
request and puts it in a context variable; handlers record who the caller
turned out to be, and a stream registers what to do when the client goes
away. The handler runs in the middleware's task, so the variable is visible.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

# The ASGI scope extension under which the HTTP/1.1 server hands a stream a
# way to write body chunks straight to the connection (notify.http.h1).
BODY_WRITER = "notify.body_writer"


class BodyWriter(Protocol):
    """Writes one chunk of a chunked response body now, if ``ready`` says it may."""

    def ready(self) -> bool: ...

    def write(self, data: bytes) -> None: ...


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    tenant_id: str = ""
    user_id: str = ""
    disconnected: bool = False
    # The server's BodyWriter for this request, if it offers one (HTTP/1.1).
    body_writer: BodyWriter | None = None
    _on_disconnect: list[Callable[[], None]] = field(default_factory=list)

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        """Runs ``callback`` as soon as the client goes away (at once if it has)."""
        if self.disconnected:
            callback()
        else:
            self._on_disconnect.append(callback)

    def mark_disconnected(self) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        callbacks, self._on_disconnect = self._on_disconnect, []
        for callback in callbacks:
            callback()


current_request: ContextVar[RequestInfo | None] = ContextVar("notify_request", default=None)
