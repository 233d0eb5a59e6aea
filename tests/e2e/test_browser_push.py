"""The web inbox's Web Push in a real headless Chromium, against the real service.

A Node script (examples/web-inbox/e2e/push-check.mjs) drives the page. Two things are
checked separately, because only one of them can work on a machine without the Internet:

- the service worker (sw.js) turns notify's push payload (built by the server's own
  ``payload``) into a system notification with the title, body, tag, primary action url
  and action buttons; the push is handed to the worker through DevTools, bypassing only
  the browser's push service;
- "Enable push" registers sw.js, subscribes with the server's VAPID key and registers the
  subscription with RegisterPushToken. Chromium subscribes through its own push service
  (FCM), which is unreachable here: when ``pushManager.subscribe`` fails the test is
  skipped with the browser's reason, after checking that the worker was registered. The
  server side of a subscription is covered by tests/e2e/test_webpush_pipeline.py with
  subscriptions the tests generate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from notify.core.model import Action, Channel, Severity
from notify.core.subscription import parse_subscription
from notify.core.vapidkeys import generate_private_key, private_key_b64url, public_key_b64url
from notify.delivery.webpush import payload
from notify.store.conformance import make_row
from tests.e2e.test_browser import (
    DIST,
    STARTUP_TIMEOUT,
    WEB,
    Driver,
    _run,
    ensure_built,
    ensure_chromium,
    static_origin,
)
from tests.support import ServerThread, running_server

__all__ = ["static_origin"]  # the fixture, shared with test_browser.py

PUSH_SCRIPT = WEB / "e2e" / "push-check.mjs"
KEY = generate_private_key()
PUBLIC = public_key_b64url(KEY)

pytestmark = pytest.mark.timeout(900)  # a first run may install Chromium and npm packages


def ensure_worker_built() -> None:
    """The bundle, and dist/sw.js no older than sw.js (ensure_built watches src/ only)."""
    ensure_built()
    worker, built = WEB / "sw.js", DIST / "sw.js"
    if not built.exists() or built.stat().st_mtime < worker.stat().st_mtime:
        build = _run(["make", "web"], timeout=600)
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]


def page_url(origin: str, server: ServerThread) -> str:
    api = f"http://127.0.0.1:{server.ports.client}"
    return f"{origin}/index.html?api={api}&user=user-alice&tenant=acme&vapid={PUBLIC}"


def web_push_server(origin: str) -> Any:
    return running_server(
        allowed_origins=(origin,),
        webpush_vapid_private_key=private_key_b64url(KEY),
        webpush_subject="mailto:ops@example.com",
    )


def open_page(origin: str, server: ServerThread, chromium: str) -> Driver:
    driver = Driver(page_url(origin, server), chromium, script=PUSH_SCRIPT)
    ready = driver.expect("READY", timeout=STARTUP_TIMEOUT)
    assert ready == {"label": "Enable push", "permission": "granted"}
    return driver


def test_the_service_worker_shows_what_notify_pushes(static_origin: str) -> None:
    chromium = ensure_chromium()
    ensure_worker_built()
    row = make_row(7, channel=Channel.WEB_PUSH)
    row.title, row.body, row.severity = "Deploy failed", "api@1.4.2 <b>failed</b>", Severity.ERROR
    row.actions = (
        Action("logs", "Open logs", "/deploys/91/logs", primary=True),
        Action("evil", "Run", "javascript:alert(1)"),
    )
    message = json.loads(payload(row))
    with web_push_server(static_origin) as server:
        driver = open_page(static_origin, server, chromium)
        try:
            driver.send("ENABLE")  # registers sw.js, whatever the push service says
            enabled = driver.expect("ENABLED", timeout=30)
            assert enabled["worker"]["active"], enabled
            driver.send("PUSH " + json.dumps(message))
            shown = driver.expect("SHOWN")
        finally:
            driver.close()
    assert shown["title"] == "Deploy failed"
    assert shown["body"] == "api@1.4.2 <b>failed</b>"  # text, as sent
    assert shown["tag"] == row.id
    assert shown["count"] == 1
    assert shown["requireInteraction"] is True  # an error stays until dismissed
    assert shown["data"]["url"] == f"{static_origin}/deploys/91/logs"
    assert shown["data"]["actions"] == {"logs": f"{static_origin}/deploys/91/logs", "evil": None}
    assert (
        shown["actions"]
        == [
            {"action": "logs", "title": "Open logs"},
            {"action": "evil", "title": "Run"},
        ][: len(shown["actions"])]
    )


def test_enable_push_registers_the_subscription(static_origin: str, http: httpx.Client) -> None:
    chromium = ensure_chromium()
    ensure_worker_built()
    with web_push_server(static_origin) as server:
        driver = open_page(static_origin, server, chromium)
        try:
            driver.send("ENABLE")
            enabled = driver.expect("ENABLED", timeout=30)
        finally:
            driver.close()
        assert server.server is not None
        devices = server.call(server.server.store.list_devices("acme", "user-alice"))
    assert enabled["worker"]["active"], enabled
    assert Path(enabled["worker"]["script"]).name == "sw.js"
    if enabled["state"] != "on":
        assert devices == []
        pytest.skip(
            f"Chromium refused pushManager.subscribe() ({enabled['detail']!r}) with the "
            "notifications and push permissions granted: headless Chromium here has no push "
            "service (Chromium's is FCM, out of this machine's reach), so no browser "
            "subscription can be made. The worker registered; the server side runs in "
            "test_webpush_pipeline.py with subscriptions the tests generate"
        )
    (device,) = devices
    subscription = parse_subscription(device.token)
    assert subscription.endpoint.startswith("https://")
    assert enabled["label"] == "Push on"
