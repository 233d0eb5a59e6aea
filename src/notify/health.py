"""The operations port: /healthz, /readyz and Prometheus /metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from notify.core.errors import NotifyError
from notify.metrics import CONTENT_TYPE, Metrics

ReadinessCheck = Callable[[], Awaitable[str | None]]

_READY_TIMEOUT = 2.0


class HealthApp:
    """``/healthz``: the process is alive. ``/readyz``: it should get traffic."""

    def __init__(self, metrics: Metrics, readiness: ReadinessCheck) -> None:
        self._metrics = metrics
        self._readiness = readiness

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b'{"error":"method not allowed"}', b"application/json")
        elif path == "/healthz":
            await _respond(send, 200, b'{"status":"ok"}', b"application/json")
        elif path == "/readyz":
            reason = await self._check()
            if reason is None:
                await _respond(send, 200, b'{"status":"ready"}', b"application/json")
            else:
                body = json.dumps({"status": "not ready", "reason": reason}).encode()
                await _respond(send, 503, body, b"application/json")
        elif path == "/metrics":
            await _respond(send, 200, self._metrics.exposition(), CONTENT_TYPE.encode())
        else:
            await _respond(send, 404, b'{"error":"not found"}', b"application/json")

    async def _check(self) -> str | None:
        try:
            async with asyncio.timeout(_READY_TIMEOUT):
                return await self._readiness()
        except TimeoutError:
            return "readiness check timed out"
        except NotifyError as exc:
            return exc.message


async def _respond(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
