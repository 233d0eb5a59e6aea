"""A served request leaves no reference cycle behind: all it made is freed when it ends.

A cycle per request (a scope holding something that holds the request back)
is never a leak the collector misses, but it is garbage the collector must
find: the heap grows between collections and every collection costs more,
which showed as a tripled p99 on GetNotifications. The client here is a raw
socket, so whatever the collector finds was made by the server.
"""

from __future__ import annotations

import gc
import itertools
import json
import socket
from collections.abc import Iterator

import pytest

from tests.support import CLIENT_SVC, INTERNAL_SVC, ServerThread, notify_body, running_server

REQUESTS = 200


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with running_server() as srv:
        yield srv


def _post(sock: socket.socket, path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer dev:user-gc:acme\r\n"
        f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    answer = b""
    while not answer.endswith(b"\r\n0\r\n\r\n"):  # connect-python answers chunked
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    head_bytes, _, chunked = answer.partition(b"\r\n\r\n")
    assert head_bytes.startswith(b"HTTP/1.1 200"), head_bytes
    size, _, rest = chunked.partition(b"\r\n")
    return rest[: int(size, 16)]


def _garbage_of(port: int, path: str, bodies: Iterator[bytes], content_type: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(20):  # warm: caches, lazily bound metric children
            _post(sock, path, next(bodies), content_type)
        gc.collect()
        gc.disable()
        try:
            for _ in range(REQUESTS):
                _post(sock, path, next(bodies), content_type)
            return gc.collect()
        finally:
            gc.enable()


@pytest.mark.parametrize(
    ("method", "body", "content_type"),
    [
        ("GetNotifications", b'{"limit": 20}', "application/json"),
        ("GetCounts", b"{}", "application/json"),
        ("GetNotifications", b"", "application/proto"),
    ],
)
def test_unary_calls_leave_no_cycles(
    server: ServerThread, method: str, body: bytes, content_type: str
) -> None:
    path = f"{CLIENT_SVC}/{method}"
    found = _garbage_of(server.ports.client, path, itertools.repeat(body), content_type)
    # Nothing per request (a few objects of the server's own background work may
    # fall in the window; one cycle per request would be thousands).
    assert found < REQUESTS // 4, f"{found} unreachable objects after {REQUESTS} calls"


def test_notify_leaves_no_cycles(server: ServerThread) -> None:
    bodies = (json.dumps(notify_body(f"gc-{n}", "user-gc")).encode() for n in itertools.count())
    path = f"{INTERNAL_SVC}/Notify"
    found = _garbage_of(server.ports.internal, path, bodies, "application/json")
    assert found < REQUESTS // 4, f"{found} unreachable objects after {REQUESTS} calls"


def test_the_raw_client_reads_real_answers(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.ports.client), timeout=10) as sock:
        path = f"{CLIENT_SVC}/GetNotifications"
        answer = json.loads(_post(sock, path, b'{"limit": 20}', "application/json"))
    assert set(answer["counts"]) == {"unread", "unseen", "total"}
    assert isinstance(answer["notifications"], list)
