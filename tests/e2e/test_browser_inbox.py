"""The rich inbox (examples/web-inbox) in two headless Chromium windows of one user.

Severity colours, tags and action buttons render from the data as text (no
markup injection); an action opens its url in a new tab with no opener and
records MARK_ACTIONED; archive, snooze and delete take the row off both
windows through update events; the tabs list what their filters select; and
"Mark all read" in one window drops the other window's badge within a second,
from the counts event. The test checks every step against the server with
GetNotifications. A screenshot lands in .artifacts/web-inbox-rich.png.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.e2e.test_browser import (
    ARTIFACTS,
    STARTUP_TIMEOUT,
    WEB,
    Driver,
    ensure_built,
    ensure_chromium,
    send,
    static_origin,
)
from tests.support import ServerThread, dev_auth, running_server

__all__ = ["static_origin"]  # the fixture, shared with test_browser.py

SCRIPT = WEB / "e2e" / "inbox-two-pages.mjs"
WITHIN_MS = 1000
INJECTED_TITLE = '<img src=x onerror="window.__pwned=1">Review <b>PR 7</b>'
INJECTED_BODY = "<script>window.__pwned=2</script>Alice asked for your review"


def listing(http: httpx.Client, server: ServerThread, **filter: Any) -> dict[str, Any]:
    response = http.post(
        server.client_url("GetNotifications"),
        headers=dev_auth(),
        json={"limit": 100, "filter": filter},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def by_key(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["notificationId"]: n for n in page["notifications"]}


def seed(http: httpx.Client, server: ServerThread) -> None:
    """Four unread rows, oldest first, one of each severity."""
    send(
        http,
        server,
        "digest",
        title="Weekly digest",
        body="3 tasks closed this week",
        severity="SEVERITY_INFO",
    )
    send(
        http,
        server,
        "backup",
        title="Backup finished",
        body="All 12 databases are safe",
        severity="SEVERITY_SUCCESS",
        category="ops.backup",
    )
    send(
        http,
        server,
        "review",
        title=INJECTED_TITLE,
        body=INJECTED_BODY,
        severity="SEVERITY_WARNING",
        actions=[{"id": "open", "label": "Open <PR>", "url": "/opened/pr?id=7", "primary": True}],
    )
    send(
        http,
        server,
        "deploy",
        title="Deploy failed",
        body="api v2.3 could not start on 2 of 3 hosts",
        severity="SEVERITY_ERROR",
        category="deploy",
        tags=["prod", "api"],
        data={"run": 7, "hosts": ["a", "b"]},
        actions=[
            {"id": "logs", "label": "View logs", "url": "/opened/logs?run=7", "primary": True},
            {"id": "retry", "label": "Retry", "url": "/opened/retry?run=7"},
            {"id": "mute", "label": "Mute", "url": "/opened/mute"},
        ],
    )


def test_rich_inbox_in_two_windows(static_origin: str, http: httpx.Client) -> None:
    chromium = ensure_chromium()
    ensure_built()
    with running_server(allowed_origins=(static_origin,)) as server:
        seed(http, server)
        send(http, server, "later", title="Stand-up in 10 minutes", body="Room 4")
        send(http, server, "junk", title="Spam", body="Nobody wants this")
        api = f"http://127.0.0.1:{server.ports.client}"
        url = f"{static_origin}/index.html?api={api}&user=user-alice&tenant=acme"
        driver = Driver(url, chromium, script=SCRIPT)
        try:
            ready = driver.expect("READY", timeout=STARTUP_TIMEOUT)
            for window in (ready["a"], ready["b"]):
                assert window["unread"] == 6
                assert window["ids"] == ["junk", "later", "deploy", "review", "backup", "digest"]
                assert window["severities"] == [
                    "info", "info", "error", "warning", "success", "info"
                ]  # fmt: skip
                assert window["tab"] == "all"

            # Titles, bodies and labels are text: the markup in them made no element.
            review = driver_row(driver, "a", "review")
            assert (review["title"], review["body"]) == (INJECTED_TITLE, INJECTED_BODY)
            assert review["injected"] == 0
            assert review["pwned"] is None
            assert review["actions"] == [
                {"id": "open", "label": "Open <PR>", "safe": "true", "primary": True}
            ]
            deploy = driver_row(driver, "b", "deploy")
            assert deploy["severity"] == "error"
            assert deploy["chips"] == ["error", "deploy", "#prod", "#api"]
            assert [(a["id"], a["label"], a["primary"]) for a in deploy["actions"]] == [
                ("logs", "View logs", True),
                ("retry", "Retry", False),
                ("mute", "Mute", False),
            ]

            # Archive on A: the row leaves both windows; the server has it archived.
            driver.send("TOOL archive backup")
            archived = driver.expect("TOOL")
            assert archived["ms"] < WITHIN_MS
            assert "backup" not in archived["b"]["ids"]
            assert archived["b"]["unread"] == 5
            assert "backup" not in by_key(listing(http, server))
            stored = by_key(listing(http, server, archived="ARCHIVE_SCOPE_ARCHIVED"))
            assert list(stored) == ["backup"]
            assert stored["backup"]["archivedAtMs"] != "0"

            # Snooze and delete: both leave both windows too.
            driver.send("TOOL snooze later")
            assert "later" not in driver.expect("TOOL")["b"]["ids"]
            snoozed = by_key(listing(http, server, snoozed=True))
            later_ms = int(snoozed["later"]["snoozedUntilMs"]) - time.time() * 1000
            assert 3_500_000 < later_ms <= 3_600_000
            driver.send("TOOL delete junk")
            deleted = driver.expect("TOOL")
            assert deleted["b"]["ids"] == ["deploy", "review", "digest"]
            assert deleted["b"]["unread"] == 3
            assert "junk" not in by_key(listing(http, server, archived="ARCHIVE_SCOPE_ALL"))

            # The Archived tab lists what the archived filter selects.
            driver.send("TAB b archived")
            assert driver.expect("TAB")["ids"] == ["backup"]
            driver.send("TAB b all")
            assert driver.expect("TAB")["ids"] == ["deploy", "review", "digest"]

            # An action opens its url in a new tab without an opener, and marks the row.
            driver.send("ACTION deploy logs")
            action = driver.expect("ACTIONED")
            assert action["popup"] == f"{static_origin}/opened/logs?run=7"
            assert action["noOpener"] is True
            assert (action["read"], action["taken"]) == ("true", "logs")
            row = by_key(listing(http, server))["deploy"]
            assert row["actionId"] == "logs"
            assert row["actionedAtMs"] != "0"
            assert row["status"] == "DELIVERY_STATUS_READ"

            driver.send("TAB b unread")
            assert driver.expect("TAB")["ids"] == ["review", "digest"]

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "web-inbox-rich.png"
            shot.unlink(missing_ok=True)
            driver.send(f"SHOT {shot}")
            driver.expect("SHOT")
            assert shot.stat().st_size > 5_000
            print(f"\nrich web inbox screenshot: {shot}")

            # Mark all read on A: B's badge drops to 0 within a second (counts event),
            # and its Unread tab empties (update events).
            driver.send("MARKALL")
            marked = driver.expect("MARKED")
            print(f"\nmark all read on A -> badge 0 on B in {marked['ms']} ms")
            assert marked["before"] == 2
            assert marked["ms"] < WITHIN_MS
            assert marked["b"]["ids"] == []
            assert marked["b"]["unread"] == 0
            assert marked["a"]["ids"] == ["deploy", "review", "digest"]
            assert marked["a"]["read"] == ["true", "true", "true"]
            after = listing(http, server)
            assert after["counts"]["unread"] == 0
            assert after["unreadCount"] == 0
            driver.send("QUIT")
            driver.expect("DONE")
        finally:
            driver.close()


def driver_row(driver: Driver, window: str, notification_id: str) -> dict[str, Any]:
    driver.send(f"ROW {window} {notification_id}")
    return driver.expect("ROW")
