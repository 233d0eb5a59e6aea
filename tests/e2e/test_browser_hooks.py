"""The React page (examples/web-inbox/react.html) in headless Chromium: @notify/web's hooks
against the real service, on another origin.

The page is nothing but the package's hooks: useNotificationStream (the status
and session), useCounts (the badge), useNotifications (the All and Unread
tabs), useMarkNotifications (click to read, mark all read) and usePreferences
(a category toggle). The test acts on the server between the steps of
examples/web-inbox/e2e/hooks-check.mjs and checks what it stored: a Notify
shows up within a second, a row read on the page is read in the store, a
stream the server ends comes back on a new session with nothing missed or
doubled, and a toggle is an UpdatePreferences. A screenshot lands in
.artifacts/web-inbox-react.png.
"""

from __future__ import annotations

import time

import httpx

from tests.e2e.test_browser import (
    ARTIFACTS,
    STARTUP_TIMEOUT,
    WEB,
    Driver,
    end_streams,
    ensure_built,
    ensure_chromium,
    inbox,
    seed_inbox,
    send,
    static_origin,
)
from tests.support import dev_auth, running_server

__all__ = ["static_origin"]  # the fixture, shared with test_browser.py

SCRIPT = WEB / "e2e" / "hooks-check.mjs"
LIVE_WITHIN = 1.0


def test_react_hooks_in_chromium(static_origin: str, http: httpx.Client) -> None:
    chromium = ensure_chromium()
    ensure_built()
    with running_server(allowed_origins=(static_origin,)) as server:
        seed_inbox(http, server)

        api = f"http://127.0.0.1:{server.ports.client}"
        url = f"{static_origin}/react.html?api={api}&user=user-alice&tenant=acme"
        driver = Driver(url, chromium, script=SCRIPT)
        try:
            ready = driver.expect("READY", timeout=STARTUP_TIMEOUT)
            assert ready["unread"] == 2
            assert ready["ids"] == ["c-42", "seen", "welcome"]
            assert ready["read"] == ["false", "true", "false"]
            assert ready["tab"] == "all"

            # A Notify while the page is open: listed and counted within a second.
            sent_at = time.monotonic()
            assert send(http, server, "live-1", title="Build finished")["delivered"] == 1
            driver.send("SENT live-1")
            live = driver.expect("SEEN")
            within = time.monotonic() - sent_at
            assert within < LIVE_WITHIN, f"live notification took {within:.3f} s"
            print(f"\nReact page: live notification listed {within * 1000:.0f} ms after Notify")
            assert live["ids"][0] == "live-1"
            assert live["title"] == "Build finished"
            assert live["unread"] == 3

            # A click marks it read, on the page and in the store.
            driver.send("CLICK live-1")
            assert driver.expect("ACKED") == {"before": 3, "after": 2}
            row = next(
                n for n in inbox(http, server)["notifications"] if n["notificationId"] == "live-1"
            )
            assert row["status"] == "DELIVERY_STATUS_READ"

            # The Unread tab is a second useNotifications, fed by the same stream.
            driver.send("TAB unread")
            assert driver.expect("TAB")["ids"] == ["c-42", "welcome"]
            assert send(http, server, "live-2", title="Deploy done")["delivered"] == 1
            driver.send("WAITFOR live-2")
            assert driver.expect("LISTED")["ids"] == ["live-2", "c-42", "welcome"]
            driver.send("TAB all")
            assert driver.expect("TAB")["ids"] == ["live-2", "live-1", "c-42", "seen", "welcome"]

            # The server ends the stream and a row arrives around the reconnect: the
            # page comes back on a new session (resuming) and lists it exactly once.
            assert end_streams(server) == 1
            missed = send(http, server, "missed", title="While you were away")
            # delivered 0: no stream was open, so the resumed stream's replay brought it.
            print(f"\n'missed' sent with {missed['delivered']} stream(s) open")
            driver.send(f"KICKED {ready['session']}")
            again = driver.expect("RECONNECTED")
            assert again["session"] != ready["session"]
            assert "retrying" in again["states"]
            assert again["states"][-1] == "live"
            driver.send("WAITFOR missed")
            listed = driver.expect("LISTED")
            assert listed["ids"].count("missed") == 1
            assert listed["ids"][0] == "missed"
            assert listed["unread"] == 4

            # Mark all read: the badge drops to 0 and every row shows read.
            driver.send("MARKALL")
            marked = driver.expect("MARKED")
            assert marked["unread"] == 0
            assert set(marked["read"]) == {"true"}
            assert inbox(http, server)["counts"]["unread"] == 0

            # The preference toggle is an UpdatePreferences the server keeps.
            driver.send("PREF deploy")
            assert driver.expect("PREF") == {"before": True, "checked": False}
            got = http.post(server.client_url("GetPreferences"), headers=dev_auth(), json={})
            rules = got.json()["preferences"]["rules"]
            assert [r for r in rules if r.get("category") == "deploy"] == [
                {"category": "deploy", "channel": "DELIVERY_CHANNEL_UNSPECIFIED", "enabled": False}
            ]

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "web-inbox-react.png"
            shot.unlink(missing_ok=True)
            driver.send(f"SHOT {shot}")
            driver.expect("SHOT")
            assert shot.stat().st_size > 5_000
            print(f"\nReact page screenshot: {shot}")
            driver.send("QUIT")
            driver.expect("DONE")
        finally:
            driver.close()
