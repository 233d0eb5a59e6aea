"""The web inbox (examples/web-inbox) in a real headless Chromium, against the real service.

The page is served by a static server on its own port, so the browser calls
the client port cross-origin with @connectrpc/connect-web and CORS has to let
it through. A Node script (examples/web-inbox/e2e/inbox-check.mjs) drives
Debian's Chromium with playwright-core and reports each step on stdout; this
test acts on the server between the steps: it sends a Notify while the page
is live, ends the page's stream to make it reconnect, and checks what the
server stored. A screenshot lands in .artifacts/web-inbox.png.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notify.realtime.hub import CloseReason
from tests.support import ServerThread, dev_auth, notify_body, running_server

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples" / "web-inbox"
CLIENT = ROOT / "clients" / "web"
DIST = WEB / "dist"
CHECK_SCRIPT = WEB / "e2e" / "inbox-check.mjs"
ARTIFACTS = ROOT / ".artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# The steps' own bounds; the whole test takes a few seconds once built.
STARTUP_TIMEOUT = 30.0
STEP_TIMEOUT = 15.0
LIVE_WITHIN = 1.0

pytestmark = pytest.mark.timeout(900)  # a first run may install Chromium and npm packages


def _run(cmd: list[str], timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def ensure_chromium() -> str:
    """Debian's chromium, installed when missing; skips only where that is impossible."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed (needs apt-get as root)")
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive", apt]
    try:
        install = _run([*env_cmd, "install", "-y", "-qq", "chromium"], timeout=600)
        if install.returncode != 0:
            _run([*env_cmd, "update", "-qq"], timeout=300)
            install = _run([*env_cmd, "install", "-y", "-qq", "chromium"], timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("installing Chromium with apt-get timed out")
    if install.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium cannot be installed here: {install.stderr.strip()[-500:]}")
    return CHROMIUM


def _newest_source_mtime() -> float:
    sources = [WEB / "index.html", WEB / "react.html", WEB / "build.mjs", WEB / "package-lock.json"]
    sources += [CLIENT / "package-lock.json"]
    for src in (WEB / "src", CLIENT / "src"):
        sources += src.rglob("*.ts")
        sources += src.rglob("*.tsx")
    sources += (ROOT / "proto").rglob("*.proto")
    return max(path.stat().st_mtime for path in sources)


def ensure_built() -> None:
    """`make web` when dist/ or node_modules/ is missing or older than the sources."""
    bundle = DIST / "main.js"
    fresh = (
        bundle.exists()
        and (DIST / "index.html").exists()
        and (WEB / "node_modules" / "playwright-core").is_dir()
        and bundle.stat().st_mtime >= _newest_source_mtime()
    )
    if fresh:
        return
    build = _run(["make", "web"], timeout=600)
    assert build.returncode == 0, (
        f"make web failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    )


@contextlib.contextmanager
def serve_folder(folder: Path, name: str) -> Iterator[str]:
    """A folder of static files on a free port of 127.0.0.1: an origin of its own."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=httpd.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def static_origin() -> Iterator[str]:
    """examples/web-inbox/dist on a free port: an origin of its own."""
    with serve_folder(DIST, "web-inbox-static") as origin:
        yield origin


class Driver:
    """The Node script: commands on stdin, one reply per line on stdout."""

    def __init__(self, url: str, chromium: str, script: Path = CHECK_SCRIPT) -> None:
        node = shutil.which("node")
        assert node, "node is missing (make web installs it)"
        self.proc = subprocess.Popen(
            [node, str(script)],
            cwd=WEB,
            env={**os.environ, "INBOX_URL": url, "CHROMIUM": chromium},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expect(self, word: str, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise AssertionError(self._failure(f"no {word} within {timeout} s")) from None
            if line is None:
                raise AssertionError(self._failure(f"the script ended before {word}"))
            self.log.append(line)
            head, _, rest = line.partition(" ")
            if head == word:
                return dict(json.loads(rest or "{}"))
            if head == "ERROR":
                raise AssertionError(self._failure(f"the script failed waiting for {word}"))

    def _failure(self, what: str) -> str:
        return what + ":\n" + "\n".join(self.log[-40:])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("QUIT")
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)


def end_streams(server: ServerThread, user: str = "user-alice") -> int:
    """Ends the user's live streams from the server side (as a stream max age would)."""
    assert server.server is not None
    hub = server.server.hub

    async def close() -> int:
        sessions = list(hub.sessions_of("acme", user))
        for session in sessions:
            session.close(CloseReason.MAX_AGE)
        return len(sessions)

    return server.call(close())


def inbox(http: httpx.Client, server: ServerThread) -> dict[str, Any]:
    response = http.post(server.client_url("GetNotifications"), headers=dev_auth(), json={})
    assert response.status_code == 200, response.text
    return dict(response.json())


def send(http: httpx.Client, server: ServerThread, notification_id: str, **extra: Any) -> Any:
    response = http.post(server.internal_url(), json=notify_body(notification_id, **extra))
    assert response.status_code == 200, response.text
    return response.json()


def seed_inbox(http: httpx.Client, server: ServerThread) -> None:
    """What waits in the inbox before the page opens: two unread rows and one read."""
    send(http, server, "welcome", title="Welcome to notify", body="Your inbox is live.")
    send(http, server, "seen", title="Weekly digest", body="3 tasks closed this week")
    send(http, server, "c-42", title="New comment", body="Bob commented on Task 42")
    seen = next(n for n in inbox(http, server)["notifications"] if n["notificationId"] == "seen")
    acked = http.post(
        server.client_url("AckNotification"), headers=dev_auth(), json={"id": seen["id"]}
    )
    assert acked.status_code == 200


def test_generated_typescript_matches_the_proto() -> None:
    """src/gen/ is committed: regenerating it from proto/ must change nothing (`make gen`).

    The page's TypeScript comes from @notify/web (clients/web), the one place
    it is generated for the browser.
    """
    tools = _run(
        [
            "make",
            "--quiet",
            "tools/buf/node_modules/.bin/buf",
            "clients/web/node_modules/.installed",
        ],
        timeout=600,
    )
    assert tools.returncode == 0, tools.stdout + tools.stderr
    committed = CLIENT / "src" / "gen"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate = _run(
            [str(ROOT / "tools/buf/node_modules/.bin/buf"), "generate", "-o", tmp],
            timeout=120,
            cwd=CLIENT,
        )
        assert generate.returncode == 0, generate.stderr
        fresh = {
            p.relative_to(out / "src" / "gen"): p.read_bytes()
            for p in (out / "src" / "gen").rglob("*.ts")
        }
    have = {p.relative_to(committed): p.read_bytes() for p in committed.rglob("*.ts")}
    assert fresh, "buf generated nothing"
    assert have == fresh, "clients/web/src/gen is out of date with proto/: run `make gen`"


def test_web_inbox_in_chromium(static_origin: str, http: httpx.Client) -> None:
    chromium = ensure_chromium()
    ensure_built()
    started = time.monotonic()
    with running_server(allowed_origins=(static_origin,)) as server:
        seed_inbox(http, server)

        api = f"http://127.0.0.1:{server.ports.client}"
        url = f"{static_origin}/index.html?api={api}&user=user-alice&tenant=acme"
        driver = Driver(url, chromium)
        try:
            ready = driver.expect("READY", timeout=STARTUP_TIMEOUT)
            assert ready["unread"] == 2
            assert ready["ids"] == ["c-42", "seen", "welcome"]
            assert ready["read"] == ["false", "true", "false"]

            # A Notify while the page is open shows up on it within a second.
            sent_at = time.monotonic()
            assert (
                send(http, server, "live-1", title="Build finished", body="main is green")[
                    "delivered"
                ]
                == 1
            )
            driver.send("SENT live-1")
            live = driver.expect("SEEN")
            within = time.monotonic() - sent_at
            assert within < LIVE_WITHIN, f"live notification took {within:.3f} s"
            print(f"\nlive notification on the page {within * 1000:.0f} ms after Notify")
            assert live["first"] == "live-1"
            assert (live["title"], live["body"]) == ("Build finished", "main is green")
            assert live["read"] == "false"
            assert live["unread"] == 3

            # Clicking it marks it read, on the page and in the store.
            driver.send("CLICK live-1")
            assert driver.expect("ACKED") == {"before": 3, "after": 2}
            stored = inbox(http, server)
            assert stored["unreadCount"] == 2
            row = next(n for n in stored["notifications"] if n["notificationId"] == "live-1")
            assert row["status"] == "DELIVERY_STATUS_READ"

            # The server ends the stream: the page backs off, reconnects, and stays live.
            assert end_streams(server) == 1
            driver.send(f"KICKED {ready['session']}")
            again = driver.expect("RECONNECTED")
            assert again["session"] != ready["session"]
            assert "reconnecting" in again["states"]
            sent_at = time.monotonic()
            assert (
                send(http, server, "live-2", title="Deploy done", body="v0.2 is out")["delivered"]
                == 1
            )
            driver.send("SENT live-2")
            live = driver.expect("SEEN")
            assert time.monotonic() - sent_at < LIVE_WITHIN
            assert live["unread"] == 3

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "web-inbox.png"
            shot.unlink(missing_ok=True)
            driver.send(f"SHOT {shot}")
            driver.expect("SHOT")
            assert shot.stat().st_size > 5_000
            print(f"\nweb inbox screenshot: {shot}")
            driver.send("QUIT")
            driver.expect("DONE")
        finally:
            driver.close()
    assert time.monotonic() - started < 60
