"""A tiny real HTTP server in front of notifyd that fails on purpose.

It answers each Connect unary call from a script ("unavailable", "exhausted",
"invalid", "hold" or "forward"), and records the request message of every
attempt, so a test can see that the SDK sent the same idempotency key each
time. "forward" passes the call to a real notifyd and returns its answer.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from notify_client.proto import pb

_FORWARDED_HEADERS = ("content-type", "connect-protocol-version", "x-notify-internal-token")


@dataclass
class Attempt:
    path: str
    request: pb.NotifyRequest | pb.PublishDataChangeRequest
    headers: dict[str, str]  # names in lower case


@dataclass
class Script:
    steps: list[str]
    upstream: str = ""
    retry_after_header: str | None = None
    retry_info_seconds: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    # "hold" waits for this before forwarding; `arrived` is set when a call comes in.
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self) -> str:
        with self.lock:
            return self.steps.pop(0) if self.steps else "forward"


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            message_type = (
                pb.NotifyRequest if self.path.endswith("/Notify") else pb.PublishDataChangeRequest
            )
            with script.lock:
                script.attempts.append(
                    Attempt(
                        self.path,
                        message_type.FromString(body),
                        {k.lower(): v for k, v in self.headers.items()},
                    )
                )
            script.arrived.set()
            step = script.next_step()
            if step == "unavailable":
                self._error(503, "unavailable", "try again")
            elif step == "exhausted":
                self._error(429, "resource_exhausted", "rate limit", retry=True)
            elif step == "invalid":
                self._error(400, "invalid_argument", "title is required")
            else:
                if step == "hold":
                    script.release.wait(30)
                self._forward(body)

        def _error(self, status: int, code: str, message: str, retry: bool = False) -> None:
            error: dict[str, object] = {"code": code, "message": message}
            headers = {}
            if retry and script.retry_info_seconds is not None:
                delay = Duration()
                delay.FromNanoseconds(int(script.retry_info_seconds * 1e9))
                value = RetryInfo(retry_delay=delay).SerializeToString()
                error["details"] = [
                    {
                        "type": "google.rpc.RetryInfo",
                        "value": base64.b64encode(value).decode().rstrip("="),
                    }
                ]
            if retry and script.retry_after_header is not None:
                headers["Retry-After"] = script.retry_after_header
            self._send(status, "application/json", json.dumps(error).encode(), headers)

        def _forward(self, body: bytes) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() in _FORWARDED_HEADERS}
            answer = httpx.post(script.upstream + self.path, content=body, headers=headers)
            self._send(answer.status_code, answer.headers["content-type"], answer.content, {})

        def _send(
            self,
            status: int,
            content_type: str,
            body: bytes,
            headers: dict[str, str],  # names in lower case
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def flaky_server(script: Script) -> Iterator[str]:
    """Serves ``script`` on a free loopback port; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.01,), name="flaky-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        script.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


class FakeTime:
    """A monotonic clock that moves only when the SDK sleeps; records each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
