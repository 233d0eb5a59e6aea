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


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    tenant_id: str = ""
    user_id: str = ""
    disconnected: bool = False
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
