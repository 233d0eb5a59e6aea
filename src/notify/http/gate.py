"""Admission of TCP connections: a cap per process and per client IP.

One gate is shared by the API listeners, so ``NOTIFY_MAX_CONNECTIONS`` bounds the
whole process (every connection costs a socket, buffers and a protocol object
whether or not it ever sends a request). ``NOTIFY_MAX_CONNECTIONS_PER_IP`` keeps
one client from taking all of them; it is off by default because behind a proxy
every caller shares the proxy's address. A refused connection is answered in
its own protocol before it is closed (``refusal``): an HTTP/1.1 503, or for
HTTP/2 a SETTINGS frame and a GOAWAY, which gRPC clients read as UNAVAILABLE
and retry with back-off.
"""

from __future__ import annotations

from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors

MAX_CONNECTIONS = "max_connections"
MAX_PER_IP = "max_connections_per_ip"

_H1_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: 75\r\n\r\n"
    b'{"code":"resource_exhausted","message":"too many connections; retry later"}'
)


class ConnectionGate:
    """Counts open connections; ``admit`` says why one is refused, or None."""

    def __init__(
        self,
        max_connections: int,
        max_per_ip: int = 0,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self._max = max_connections
        self._max_per_ip = max_per_ip
        self._on_refused = on_refused
        self._per_ip: dict[str, int] = {}
        self.open = 0

    def admit(self, ip: str) -> str | None:
        reason = None
        if self._max and self.open >= self._max:
            reason = MAX_CONNECTIONS
        elif self._max_per_ip and self._per_ip.get(ip, 0) >= self._max_per_ip:
            reason = MAX_PER_IP
        if reason is not None:
            if self._on_refused is not None:
                self._on_refused(reason)
            return reason
        self.open += 1
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        return None

    def release(self, ip: str) -> None:
        self.open -= 1
        left = self._per_ip.get(ip, 0) - 1
        if left > 0:
            self._per_ip[ip] = left
        else:
            self._per_ip.pop(ip, None)


def refusal(first_bytes: bytes, is_h2: bool) -> bytes:
    """What to write to a refused connection before closing it."""
    if not is_h2:
        return _H1_REFUSAL
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    connection.initiate_connection()
    connection.close_connection(
        error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
        additional_data=b"too many connections; retry later",
    )
    return connection.data_to_send()
