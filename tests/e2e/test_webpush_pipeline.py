"""Web Push in a running notifyd, on both drivers: a browser registers its PushSubscription
with RegisterPushToken, a Notify to WEB_PUSH reaches the local push service (VAPID verified,
payload decrypted), GetNotifications shows the row DELIVERED, a gone subscription is
forgotten, preferences turning web push off skip it, and metrics count per device."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from notify.core.vapidkeys import generate_private_key, private_key_b64url, public_key_b64url
from tests.support import (
    ServerThread,
    dev_auth,
    eventually,
    notify_body,
    running_server_off_loop,
)
from tests.webpush_support import PushService, push_service

KEY = generate_private_key()
PUBLIC = public_key_b64url(KEY)
WEB_PUSH = "DELIVERY_CHANNEL_WEB_PUSH"


@asynccontextmanager
async def notifyd(overrides: dict[str, Any]) -> AsyncIterator[ServerThread]:
    async with running_server_off_loop(
        **overrides,
        webpush_vapid_private_key=private_key_b64url(KEY),
        webpush_subject="mailto:ops@example.com",
        webpush_allow_insecure=True,
    ) as server:
        yield server


async def post(http: httpx.Client, url: str, body: Any, **kw: Any) -> httpx.Response:
    return await asyncio.to_thread(http.post, url, json=body, **kw)


async def register(
    http: httpx.Client, server: ServerThread, token: str, user: str = "user-alice"
) -> httpx.Response:
    return await post(
        http,
        server.client_url("RegisterPushToken"),
        {"deviceType": "DEVICE_TYPE_BROWSER", "token": token},
        headers=dev_auth(user),
    )


async def drain(server: ServerThread) -> None:
    assert server.server is not None
    await asyncio.to_thread(server.call, server.server.dispatcher.drain())


async def settled(http: httpx.Client, server: ServerThread) -> list[dict[str, Any]]:
    """The web push rows once none is PENDING (the dispatcher runs on the server's thread)."""

    def rows() -> list[dict[str, Any]]:
        listed = http.post(
            server.client_url("GetNotifications"),
            json={"filter": {"channels": [WEB_PUSH]}},
            headers=dev_auth(),
        )
        found: list[dict[str, Any]] = listed.json()["notifications"]
        return found

    await asyncio.to_thread(
        eventually,
        lambda: all(r["status"] != "DELIVERY_STATUS_PENDING" for r in rows()),
        what="every web push row recorded",
    )
    return rows()


async def web_rows(http: httpx.Client, server: ServerThread) -> list[dict[str, Any]]:
    listed = await post(
        http,
        server.client_url("GetNotifications"),
        {"filter": {"channels": [WEB_PUSH]}},
        headers=dev_auth(),
    )
    rows: list[dict[str, Any]] = listed.json()["notifications"]
    return rows


async def test_a_registered_browser_gets_the_notification(
    store_overrides: dict[str, Any],
) -> None:
    service = PushService()
    async with push_service(service), notifyd(store_overrides) as server:
        laptop, phone = service.browser(PUBLIC), service.browser(PUBLIC)
        with httpx.Client(timeout=10) as http:
            for browser in (laptop, phone, laptop):  # the laptop twice: one device
                answer = await register(http, server, browser.token())
                assert answer.status_code == 200, answer.text
            body = notify_body(
                "wp-1",
                channels=[WEB_PUSH],
                severity="SEVERITY_WARNING",
                category="deploys",
                actions=[{"id": "o", "label": "Open", "url": "/deploys/1", "primary": True}],
            )
            answer = await post(http, server.internal_url(), body)
            assert answer.json() == {"delivered": 0, "pending": 1, "failed": 0}
            await service.wait_for(2)
            await drain(server)
            (row,) = await web_rows(http, server)
            metrics = (await asyncio.to_thread(http.get, server.metrics_url("/metrics"))).text
    assert service.rejected == []
    assert sorted(p.browser.path for p in service.received) == sorted([laptop.path, phone.path])
    message = service.received[0].message
    assert message["id"] == row["id"]
    assert message["notificationId"] == "wp-1"
    assert (message["title"], message["body"]) == ("title wp-1", "body wp-1")
    assert (message["severity"], message["category"], message["url"]) == (
        "warning",
        "deploys",
        "/deploys/1",
    )
    assert service.received[0].headers["urgency"] == "normal"
    assert row["status"] == "DELIVERY_STATUS_DELIVERED"
    assert row["attempts"] == 1
    assert row["providerMessageId"].startswith(f"{service.origin}/message/")
    assert 'notify_push_device_results_total{outcome="accepted",sender="webpush"} 2.0' in metrics
    assert 'notify_delivery_sends_total{outcome="delivered",provider="web_push"} 1.0' in metrics


async def test_a_gone_subscription_is_forgotten(store_overrides: dict[str, Any]) -> None:
    service = PushService(script=deque([(410, {})]))
    async with push_service(service), notifyd(store_overrides) as server:
        browser = service.browser(PUBLIC)
        with httpx.Client(timeout=10) as http:
            await register(http, server, browser.token())
            await post(http, server.internal_url(), notify_body("gone-1", channels=[WEB_PUSH]))
            await service.wait_attempts(1)
            await drain(server)
            (row,) = await web_rows(http, server)
            await post(http, server.internal_url(), notify_body("gone-2", channels=[WEB_PUSH]))
            rows = {r["notificationId"]: r for r in await settled(http, server)}
    assert row["status"] == "DELIVERY_STATUS_FAILED"
    assert row["failureReason"] == "webpush: subscription gone (HTTP 410)"
    assert service.attempts == 1  # the second Notify found no device to push to
    assert rows["gone-2"]["status"] == "DELIVERY_STATUS_FAILED"
    assert rows["gone-2"]["failureReason"] == "no browser device registered"


async def test_preferences_turning_web_push_off_skip_it(store_overrides: dict[str, Any]) -> None:
    service = PushService()
    async with push_service(service), notifyd(store_overrides) as server:
        with httpx.Client(timeout=10) as http:
            await register(http, server, service.browser(PUBLIC).token())
            off = await post(
                http,
                server.client_url("UpdatePreferences"),
                {"rules": [{"category": "", "channel": WEB_PUSH, "enabled": False}]},
                headers=dev_auth(),
            )
            assert off.status_code == 200, off.text
            body = notify_body("pref-1", channels=["DELIVERY_CHANNEL_IN_APP", WEB_PUSH])
            answer = await post(http, server.internal_url(), body)
            await drain(server)
            rows = await web_rows(http, server)
    assert answer.json() == {"delivered": 0, "pending": 1, "failed": 0, "skipped": 1}
    assert rows == []
    assert service.attempts == 0


async def test_register_push_token_validates_browser_subscriptions(
    store_overrides: dict[str, Any],
) -> None:
    service = PushService()
    async with push_service(service), notifyd(store_overrides) as server:
        good = service.browser(PUBLIC).subscription()
        with httpx.Client(timeout=10) as http:
            cases = {
                "not json": "PushSubscription's JSON",
                json.dumps({**good, "endpoint": "http://push.example.com/x"}): "https://",
                json.dumps({**good, "keys": {"p256dh": "AAAA", "auth": "AAAA"}}): "p256dh",
            }
            for token, message in cases.items():
                answer = await register(http, server, token)
                assert answer.status_code == 400, answer.text
                assert answer.json()["code"] == "invalid_argument"
                assert message in answer.json()["message"]
