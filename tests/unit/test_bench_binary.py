"""The inbox bench's binary load: wrk must send the protobuf bodies byte for byte."""

from __future__ import annotations

import collections
import http.server
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from elloloop.notify.v1 import notify_pb2 as pb

from bench import inbox, wrk

BODIES = [
    pb.GetNotificationsRequest(limit=100).SerializeToString(),
    pb.GetNotificationsRequest(limit=100, cursor='b"\\\x00\xff').SerializeToString(),
    bytes(range(256)),
]


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """An HTTP server on a free port that records (content type, authorization, raw body)."""
    seen: list[tuple[str, str, bytes]] = []

    class Record(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(
                (self.headers.get("Content-Type", ""), self.headers.get("Authorization", ""), body)
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_binary_bodies_reach_the_server_unchanged(
    recorder: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    url, seen = recorder
    script = wrk.rotating_post_script(
        wrk.GET_NOTIFICATIONS_PATH, BODIES, inbox.auth("u-1"), content_type=inbox.PROTO
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        done = subprocess.run(
            [wrk.ensure_wrk(), "-t1", "-c2", "-d1s", "-s", lua.name, url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert seen, "wrk sent nothing"
    assert {(kind, token) for kind, token, _ in seen} == {(inbox.PROTO, "Bearer dev:u-1:bench")}
    counts = collections.Counter(body for _, _, body in seen)
    assert set(counts) == set(BODIES)


def test_the_binary_bodies_are_the_json_pages_requests() -> None:
    bodies = ['{"limit": 100}', '{"limit": 100, "cursor": "abc"}']
    assert [pb.GetNotificationsRequest.FromString(b) for b in inbox.proto_bodies(bodies)] == [
        pb.GetNotificationsRequest(limit=100),
        pb.GetNotificationsRequest(limit=100, cursor="abc"),
    ]
