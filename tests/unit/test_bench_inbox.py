"""What the inbox benchmarks (bench/inbox.py) load notifyd with.

The rotating wrk script must really send every page's body in turn with the
caller's credentials (checked over a socket against a recording HTTP server),
and a "rich row" must be what the issue describes and what the service accepts:
severity, 3 actions, tags and about 1 KiB of data, stored and listed unchanged.
"""

from __future__ import annotations

import collections
import http.server
import json
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench import inbox, wrk
from tests.support import dev_auth, notify_body, running_server

BODIES = ['{"limit":100}', '{"limit":100,"cursor":"b"}', '{"limit":100,"cursor":"c"}']


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """An HTTP server on a free port that records (path, authorization, body)."""
    seen: list[tuple[str, str, str]] = []

    class Record(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            seen.append((self.path, self.headers.get("Authorization", ""), body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

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


def test_the_rotating_script_sends_every_body_in_turn(
    recorder: tuple[str, list[tuple[str, str, str]]],
) -> None:
    url, seen = recorder
    script = wrk.rotating_post_script(wrk.GET_NOTIFICATIONS_PATH, BODIES, inbox.auth("u-1"))
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
    assert "BENCH_JSON " in done.stdout
    assert seen, "wrk sent nothing"
    assert {(path, token) for path, token, _ in seen} == {
        (wrk.GET_NOTIFICATIONS_PATH, "Bearer dev:u-1:bench")
    }
    counts = collections.Counter(body for _, _, body in seen)
    assert set(counts) == set(BODIES)
    # One Lua state per thread hands the bodies out in turn, whatever the connection.
    assert max(counts.values()) - min(counts.values()) <= 2


def test_a_rich_row_is_what_the_issue_describes_and_the_service_keeps_it(
    http: httpx.Client,
) -> None:
    row = inbox.rich_row(7)
    assert 1000 <= len(json.dumps(row["data"], separators=(",", ":"))) <= 1024
    assert len(row["actions"]) == 3
    assert row["tags"]
    with running_server() as server:
        sent = http.post(server.internal_url(), json=notify_body("rich-7", **row))
        assert sent.status_code == 200, sent.text
        listed = http.post(server.client_url("GetNotifications"), headers=dev_auth(), json={})
        (stored,) = listed.json()["notifications"]
    assert stored["data"] == inbox.rich_data(7)
    assert stored["severity"] == "SEVERITY_ERROR"
    assert [a["id"] for a in stored["actions"]] == ["logs", "retry", "mute"]
    assert stored["tags"] == ["prod", "api", "eu-west"]
