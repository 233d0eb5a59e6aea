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
from collections.abc import Iterator

import pytest

from tests.raw_http import RawHttp1
from tests.support import CLIENT_SVC, INTERNAL_SVC, ServerThread, notify_body, running_server

REQUESTS = 200
AUTHORIZATION = "Bearer dev:user-gc:acme"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with running_server() as srv:
        yield srv


def _post(client: RawHttp1, path: str, body: bytes, content_type: str) -> bytes:
    answer = client.post(path, body, content_type)
    assert answer.status.startswith(b"HTTP/1.1 200"), answer.status
    return answer.body


def _garbage_of(port: int, path: str, bodies: Iterator[bytes], content_type: str) -> int:
    with RawHttp1(port, AUTHORIZATION) as client:
        for _ in range(20):  # warm: caches, lazily bound metric children
            _post(client, path, next(bodies), content_type)
        gc.collect()
        gc.disable()
        try:
            for _ in range(REQUESTS):
                _post(client, path, next(bodies), content_type)
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
    with RawHttp1(server.ports.client, AUTHORIZATION) as client:
        path = f"{CLIENT_SVC}/GetNotifications"
        answer = json.loads(_post(client, path, b'{"limit": 20}', "application/json"))
    assert set(answer["counts"]) == {"unread", "unseen", "total"}
    assert isinstance(answer["notifications"], list)
