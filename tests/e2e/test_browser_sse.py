"""A plain ``new EventSource(url)`` in headless Chromium, on another origin, against the service.

The page (tests/e2e/sse_page) is served from its own port, so the stream is
cross-origin and CORS must let it through; its credentials are the
``access_token`` query parameter, as an EventSource cannot set headers. The
test sends a Notify and sees it on the page, ends the page's stream from the
server, sends one while no stream is open, and checks that the browser
reconnects by itself with ``Last-Event-ID`` and gets the missed one and the
next one, each exactly once.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_browser import WEB, Driver, _run, end_streams, ensure_chromium, serve_folder
from tests.support import notify_body, running_server

PAGE = Path(__file__).resolve().parent / "sse_page"
SCRIPT = Path(__file__).resolve().parent / "sse-eventsource.mjs"

pytestmark = pytest.mark.timeout(900)  # a first run may install Chromium and npm packages


def ensure_playwright() -> None:
    """The web inbox's node_modules (playwright-core drives Chromium), installed if missing."""
    if (WEB / "node_modules" / "playwright-core").is_dir():
        return
    install = _run(["make", "examples/web-inbox/node_modules/.installed"], timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr


@pytest.fixture
def page_origin() -> Iterator[str]:
    """tests/e2e/sse_page on a free port: an origin of its own."""
    with serve_folder(PAGE, "sse-page") as origin:
        yield origin


def send(http: httpx.Client, url: str, notification_id: str) -> dict[str, Any]:
    response = http.post(url, json=notify_body(notification_id))
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_event_source_in_chromium_receives_live_and_resumes_with_last_event_id(
    page_origin: str,
) -> None:
    chromium = ensure_chromium()
    ensure_playwright()
    with (
        running_server(allowed_origins=(page_origin,)) as server,
        httpx.Client(timeout=10) as http,
    ):
        query = urllib.parse.urlencode(
            {"access_token": "dev:user-alice:acme", "device_type": "browser"}
        )
        events = f"http://127.0.0.1:{server.ports.client}/v1/events?{query}"
        page = f"{page_origin}/index.html?{urllib.parse.urlencode({'events': events})}"
        driver = Driver(page, chromium, SCRIPT)
        try:
            ready = driver.expect("READY")
            assert ready["opens"] == 1
            (first_session,) = ready["sessions"]

            # Live: a Notify reaches the page's stream, with its resume token as the event id.
            assert send(http, server.internal_url(), "live-1")["delivered"] == 1
            driver.send("SENT live-1")
            seen = driver.expect("SEEN")
            (live,) = seen["notifications"]
            assert live["id"] == "live-1"
            assert live["lastEventId"] == live["resumeToken"] != ""

            # The server drops the stream; a Notify while no stream is open is only stored.
            assert end_streams(server) == 1
            assert send(http, server.internal_url(), "missed-1")["delivered"] == 0
            driver.send(f"KICKED {first_session}")
            again = driver.expect("RECONNECTED")
            assert again["sessions"][-1] != first_session
            assert again["ends"] == [{}]  # the dropped stream said it ended cleanly
            # The browser reconnected by itself, sending the last id it had.
            assert again["lastEventIds"] == [None, live["resumeToken"]]

            # The resume replays what was missed, then the stream is live again.
            driver.send("SENT missed-1")
            driver.expect("SEEN")
            assert send(http, server.internal_url(), "live-2")["delivered"] == 1
            driver.send("SENT live-2")
            final = driver.expect("SEEN")
            assert [n["id"] for n in final["notifications"]] == ["live-1", "missed-1", "live-2"]
            assert final["opens"] == 2
            driver.send("QUIT")
            driver.expect("DONE")
        finally:
            driver.close()
