"""The real ``notifyd`` process: configuration errors, start-up, SIGTERM drain."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from elloloop.notify.v1 import notify_pb2_grpc

from tests.support import CLIENT_SVC, ConnectStream, EndOfStream, dev_auth, eventually, make_jwt

NOTIFYD = str(Path(sys.executable).with_name("notifyd"))


class Notifyd:
    """notifyd as a child process; its JSON log lines are collected as they come."""

    def __init__(self, **env: str) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
        environ.update(
            NOTIFY_HOST="127.0.0.1",
            NOTIFY_CLIENT_PORT="0",
            NOTIFY_INTERNAL_PORT="0",
            NOTIFY_METRICS_PORT="0",
            NOTIFY_AUTH_DEV_MODE="true",
        )
        environ.update(env)
        self.proc = subprocess.Popen(
            [NOTIFYD], env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def wait_for_log(self, message: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {message!r} log line; got {self.log}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                # Not a log line (a crash's traceback): show all of it, not a JSON error.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=5)
                self._reader.join(timeout=1)
                raise AssertionError(f"notifyd wrote a non-log line: {''.join(self.log)}") from None
            if entry.get("msg") == message:
                return dict(entry)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)


def drain(read: Callable[[], object]) -> None:
    """Reads until the stream ends (which raises)."""
    while True:
        read()


@pytest.fixture
def notifyd() -> Iterator[Notifyd]:
    process = Notifyd(NOTIFY_SHUTDOWN_TIMEOUT="10s")
    yield process
    process.stop()


def run_config_error(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    environ.update(env)
    return subprocess.run([NOTIFYD], env=environ, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "NOTIFY_AUTH_JWT_SECRET"),
        ({"NOTIFY_AUTH_JWT_SECRET": "x" * 40}, "NOTIFY_INTERNAL_TOKEN"),
        ({"NOTIFY_AUTH_DEV_MODE": "maybe"}, "NOTIFY_AUTH_DEV_MODE"),
        ({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_CLIENT_PORT": "http"}, "NOTIFY_CLIENT_PORT"),
        (
            {"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_SHUTDOWN_TIMEOUT": "soon"},
            "NOTIFY_SHUTDOWN_TIMEOUT",
        ),
        ({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_STORE_DRIVER": "entdb"}, "NOTIFY_STORE_DRIVER"),
    ],
)
def test_bad_configuration_stops_start_up_with_one_line(env: dict[str, str], variable: str) -> None:
    result = run_config_error(**env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


def test_sigterm_drains_streams_and_in_flight_calls(notifyd: Notifyd) -> None:
    started = notifyd.wait_for_log("notify started")
    client_port, internal_port, metrics_port = (
        started["client_port"],
        started["internal_port"],
        started["metrics_port"],
    )
    assert started["dev_mode"] is True
    http = httpx.Client(timeout=10)
    base = f"http://127.0.0.1:{client_port}{CLIENT_SVC}"
    assert http.get(f"http://127.0.0.1:{metrics_port}/readyz").status_code == 200

    connect_stream = ConnectStream(http, f"{base}/StreamEvents", dev_auth(), {})
    connect_stream.next()
    channel = grpc.insecure_channel(f"127.0.0.1:{client_port}")
    grpc_stream = notify_pb2_grpc.NotificationClientServiceStub(channel).StreamEvents(
        pb.StreamEventsRequest(), metadata=[("authorization", "Bearer dev:user-alice:acme")]
    )
    next(grpc_stream)

    # A unary call in flight: its body is still on the way when SIGTERM lands.
    body = json.dumps(
        {"tenantId": "acme", "notificationId": "late", "userIds": ["user-zed"]}
    ).encode()
    in_flight = socket.create_connection(("127.0.0.1", internal_port))
    in_flight.sendall(
        b"POST /elloloop.notify.v1.NotificationInternalService/Notify HTTP/1.1\r\n"
        b"Host: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )

    notifyd.proc.send_signal(signal.SIGTERM)
    notifyd.wait_for_log("notify shutting down")

    # Streams end with a proper UNAVAILABLE end-of-stream, so clients reconnect elsewhere.
    with pytest.raises(EndOfStream) as ended:
        drain(connect_stream.next)
    assert ended.value.code == "unavailable"
    with pytest.raises(grpc.RpcError) as grpc_ended:
        drain(lambda: next(grpc_stream))
    assert grpc_ended.value.code() == grpc.StatusCode.UNAVAILABLE

    # Draining: not ready, no new connections, but the call in flight finishes.
    assert http.get(f"http://127.0.0.1:{metrics_port}/readyz").status_code == 503
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", client_port), timeout=2).close()
    in_flight.sendall(body[10:])
    response = b""
    while chunk := in_flight.recv(65536):  # the server closes it after the answer
        response += chunk
    assert response.startswith(b"HTTP/1.1 200"), response
    body_start = response.index(b"\r\n\r\n") + 4
    assert b'"pending":1' in response[body_start:]
    in_flight.close()

    assert notifyd.proc.wait(timeout=15) == 0
    notifyd.wait_for_log("notify stopped")
    connect_stream.close()
    channel.close()
    http.close()


def test_silent_and_idle_connections_do_not_hold_up_shutdown(notifyd: Notifyd) -> None:
    started = notifyd.wait_for_log("notify started")
    silent = socket.create_connection(("127.0.0.1", started["client_port"]))
    idle_h2 = grpc.insecure_channel(f"127.0.0.1:{started['client_port']}")
    with pytest.raises(grpc.RpcError):
        notify_pb2_grpc.NotificationClientServiceStub(idle_h2).GetNotifications(
            pb.GetNotificationsRequest(), timeout=5
        )  # unauthenticated, but the HTTP/2 connection stays open and idle
    began = time.monotonic()
    notifyd.proc.send_signal(signal.SIGTERM)
    assert notifyd.proc.wait(timeout=15) == 0
    assert time.monotonic() - began < 5  # well inside the 10 s shutdown timeout
    silent.close()
    idle_h2.close()


def test_start_line_is_written_at_every_log_level() -> None:
    process = Notifyd(NOTIFY_LOG_LEVEL="error")
    try:
        started = process.wait_for_log("notify started")
        assert started["client_port"] > 0
        assert started["version"]
        with httpx.Client(timeout=10) as http:
            url = f"http://127.0.0.1:{started['internal_port']}/elloloop.notify.v1.NotificationInternalService/Notify"
            http.post(url, json={"tenantId": "t", "notificationId": "n", "userIds": ["u"]})
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(timeout=15) == 0
        process._reader.join(timeout=10)
    finally:
        process.stop()
    messages = [json.loads(line)["msg"] for line in process.log]
    assert messages == ["notify started", "notify shutting down", "notify stopped"]  # no rpc lines


def test_sigint_on_idle_server_exits_zero(notifyd: Notifyd) -> None:
    notifyd.wait_for_log("notify started")
    notifyd.proc.send_signal(signal.SIGINT)
    assert notifyd.proc.wait(timeout=15) == 0
    eventually(
        lambda: any("notify stopped" in line for line in notifyd.log), what="the stop log line"
    )


def test_one_json_log_line_per_rpc_without_secrets() -> None:
    secret = "jwt-secret-for-the-log-test-0123456789"
    token = "internal-token-for-the-log-test-0123456789"
    process = Notifyd(
        NOTIFY_AUTH_DEV_MODE="false",
        NOTIFY_AUTH_JWT_SECRET=secret,
        NOTIFY_INTERNAL_TOKEN=token,
    )
    try:
        started = process.wait_for_log("notify started")
        assert started["dev_mode"] is False
        assert started["driver"] == "memory"
        assert started["version"]
        jwt_token = make_jwt(sub="user-log", tenant="acme-log", secret=secret)
        with httpx.Client(timeout=10) as http:
            internal = f"http://127.0.0.1:{started['internal_port']}"
            client = f"http://127.0.0.1:{started['client_port']}{CLIENT_SVC}"
            sent = http.post(
                f"{internal}/elloloop.notify.v1.NotificationInternalService/Notify",
                headers={"X-Notify-Internal-Token": token, "X-Request-Id": "req-123"},
                json={"tenantId": "acme-log", "notificationId": "l-1", "userIds": ["user-log"]},
            )
            assert sent.headers["x-request-id"] == "req-123"
            page = http.post(
                f"{client}/GetNotifications",
                headers={"Authorization": f"Bearer {jwt_token}"},
                json={},
            )
            assert page.status_code == 200
            denied = http.post(
                f"{client}/GetNotifications", headers={"Authorization": "Bearer x"}, json={}
            )
            assert denied.status_code == 401
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(timeout=15) == 0
        process._reader.join(timeout=10)
    finally:
        process.stop()
    entries = [json.loads(line) for line in process.log]  # every line is JSON
    text = "".join(process.log)
    for secret_text in (secret, token, jwt_token):
        assert secret_text not in text
    rpcs = [e for e in entries if e["msg"] == "rpc"]
    assert [(e["procedure"].rsplit("/", 1)[1], e["code"]) for e in rpcs] == [
        ("Notify", "ok"),
        ("GetNotifications", "ok"),
        ("GetNotifications", "unauthenticated"),
    ]
    assert rpcs[0]["request_id"] == "req-123"
    assert rpcs[1]["tenant"] == "acme-log"
    assert rpcs[1]["user"] == "user-log"
    assert all(e["latency_ms"] >= 0 and e["protocol"] == "connect" for e in rpcs)
