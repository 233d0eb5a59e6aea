"""Web Push through the outbox to a local push service that verifies each push for real
(VAPID JWT against the public key, aes128gcm decrypted with the subscription's private key),
on both store drivers: delivered with the documented payload, a gone subscription deleted
and not retried, 429/503 with Retry-After retried, the wrong VAPID key FAILED with a reason,
fan-out to every browser of the user, and the per-device metric."""

from __future__ import annotations

import json
import logging
import time
from collections import deque

import pytest

from notify.core.clock import ManualClock
from notify.core.commands import build_device
from notify.core.model import Action, Channel, Device, DeviceType, Notification, Severity, Status
from notify.core.ports import PushOutcome
from notify.core.subscription import parse_subscription
from notify.core.vapidkeys import generate_private_key, private_key_b64url, public_key_b64url
from notify.delivery.backoff import Backoff
from notify.delivery.push import PushProvider
from notify.delivery.vapid import VapidSigner
from notify.delivery.webpush import WebPushSender
from notify.metrics import Metrics
from notify.service.dispatcher import Dispatcher, DispatchPolicy
from notify.store import Store
from notify.store.conformance import make_row
from tests.delivery_support import pg_dsn_fixture, store_fixture  # noqa: F401  (fixtures)
from tests.webpush_support import Browser, PushService, push_service

KEY = generate_private_key()
PUBLIC = public_key_b64url(KEY)
SUBJECT = "mailto:ops@example.com"


def now_clock() -> ManualClock:
    # The push service checks the VAPID exp against its own clock.
    return ManualClock(int(time.time() * 1000))


class Run:
    """A dispatcher with the web push provider over the real sender, on ``store``."""

    def __init__(self, store: Store, clock: ManualClock, *, jitter: float = 1.0) -> None:
        self.metrics = Metrics()
        self.sender = WebPushSender(VapidSigner(KEY, SUBJECT, clock), clock, allow_insecure=True)
        self.provider = PushProvider(
            Channel.WEB_PUSH,
            [self.sender],
            store,
            clock,
            results=self.metrics.push_device_results,
        )
        backoff = Backoff(1.0, random=lambda: jitter)
        self.dispatcher = Dispatcher(
            store, [self.provider], clock, self.metrics, DispatchPolicy(backoff)
        )

    def device_results(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "notify_push_device_results_total", {"sender": "webpush", "outcome": outcome}
        )
        return value or 0.0


async def register(store: Store, browser: Browser, user: str = "u1", at: int = 1) -> Device:
    device = build_device(
        tenant_id="t1",
        user_id=user,
        device_type=int(DeviceType.BROWSER),
        token=browser.token(),
        now_ms=at,
        allow_insecure_webpush=True,
    )
    await store.upsert_device(device)
    return device


async def queue(store: Store, clock: ManualClock, **fields: object) -> Notification:
    row = make_row(0, channel=Channel.WEB_PUSH, created_at_ms=clock.now_ms())
    row.title, row.body, row.category = "Deploy failed", "api@1.4.2 failed", "deploys"
    row.severity = Severity.ERROR
    row.actions = (
        Action("logs", "Open logs", "https://app.example.com/deploys/91", primary=True),
        Action("ack", "Acknowledge", "/ack/91"),
    )
    for name, value in fields.items():
        setattr(row, name, value)
    (stored,) = await store.create_notifications([row])
    return stored.row


async def row_of(store: Store, row: Notification) -> Notification:
    (found,) = await store.get_notifications(row.tenant_id, [row.id])
    return found


async def test_a_push_is_verified_decrypted_and_delivered(store: Store) -> None:
    clock = now_clock()
    service = PushService()
    async with push_service(service):
        browser = service.browser(PUBLIC)
        await register(store, browser)
        row = await queue(store, clock)
        run = Run(store, clock)
        try:
            assert await run.dispatcher.tick() == 1
        finally:
            await run.provider.close()
    assert service.rejected == []
    (push,) = service.received
    assert push.browser is browser
    assert push.message == {
        "id": row.id,
        "notificationId": row.notification_id,
        "title": "Deploy failed",
        "body": "api@1.4.2 failed",
        "severity": "error",
        "category": "deploys",
        "url": "https://app.example.com/deploys/91",
        "actions": [
            {"id": "logs", "label": "Open logs", "url": "https://app.example.com/deploys/91"},
            {"id": "ack", "label": "Acknowledge", "url": "/ack/91"},
        ],
        "image": "",
        "tags": [],
        "createdAtMs": row.created_at_ms,
    }
    assert push.claims["aud"] == service.origin
    assert push.claims["sub"] == SUBJECT
    assert push.headers["urgency"] == "high"  # severity error
    assert push.headers["ttl"] == "86400"
    assert push.headers["content-type"] == "application/octet-stream"
    done = await row_of(store, row)
    assert (done.status, done.attempts) == (Status.DELIVERED, 1)
    assert done.provider_message_id == f"{service.origin}/message/1"
    assert run.device_results("accepted") == 1


async def test_ttl_follows_expiry_and_urgency_follows_severity(store: Store) -> None:
    clock = now_clock()
    service = PushService()
    async with push_service(service):
        await register(store, service.browser(PUBLIC))
        await queue(store, clock, severity=Severity.INFO, expires_at_ms=clock.now_ms() + 600_000)
        run = Run(store, clock)
        try:
            await run.dispatcher.tick()
        finally:
            await run.provider.close()
    (push,) = service.received
    assert push.headers["ttl"] == "600"
    assert push.headers["urgency"] == "low"


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_subscription_is_deleted_and_not_retried(store: Store, status: int) -> None:
    clock = now_clock()
    service = PushService(script=deque([(status, {})]))
    async with push_service(service):
        await register(store, service.browser(PUBLIC))
        row = await queue(store, clock)
        run = Run(store, clock)
        try:
            assert await run.dispatcher.tick() == 1
            clock.advance(3600)
            assert await run.dispatcher.tick() == 0  # nothing left to retry
        finally:
            await run.provider.close()
    assert service.attempts == 1
    assert await store.list_devices("t1", "u1") == []
    done = await row_of(store, row)
    assert done.status is Status.FAILED
    assert done.failure_reason == f"webpush: subscription gone (HTTP {status})"
    assert run.device_results("gone") == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_retried_then_delivered(store: Store, status: int) -> None:
    clock = now_clock()
    service = PushService(script=deque([(status, {"Retry-After": "30"})]))
    async with push_service(service):
        await register(store, service.browser(PUBLIC))
        row = await queue(store, clock)
        run = Run(store, clock, jitter=0.0)  # without Retry-After: due again at once
        try:
            assert await run.dispatcher.tick() == 1
            waiting = await row_of(store, row)
            assert waiting.status is Status.PENDING
            assert waiting.failure_reason == f"webpush: HTTP {status}"
            clock.advance(29.9)
            assert await run.dispatcher.tick() == 0
            clock.advance(0.2)
            assert await run.dispatcher.tick() == 1
        finally:
            await run.provider.close()
    assert service.attempts == 2
    assert len(service.received) == 1
    done = await row_of(store, row)
    assert (done.status, done.attempts) == (Status.DELIVERED, 2)
    assert await store.list_devices("t1", "u1") != []  # a busy service keeps the device
    assert run.device_results("transient") == 1
    assert run.device_results("accepted") == 1


async def test_the_wrong_vapid_key_is_failed_with_a_reason(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = now_clock()
    service = PushService()
    other = public_key_b64url(generate_private_key())
    caplog.set_level(logging.DEBUG)
    async with push_service(service):
        await register(store, service.browser(other))  # subscribed with another server key
        row = await queue(store, clock)
        run = Run(store, clock)
        try:
            assert await run.dispatcher.tick() == 1
        finally:
            await run.provider.close()
    assert service.rejected == ["VAPID key is not the subscription's applicationServerKey"]
    done = await row_of(store, row)
    assert done.status is Status.FAILED
    assert done.attempts == 1
    assert done.failure_reason == (
        "webpush: push service refused the VAPID credentials (HTTP 403): "
        "the subscription was made with another key"
    )
    assert await store.list_devices("t1", "u1") != []  # not gone: the key is ours to fix
    secret = private_key_b64url(KEY)
    assert secret not in done.failure_reason
    assert secret not in caplog.text


async def test_fan_out_to_every_browser_one_accepting_is_enough(store: Store) -> None:
    clock = now_clock()
    service = PushService(script=deque([(410, {})]))
    async with push_service(service):
        first, second = service.browser(PUBLIC), service.browser(PUBLIC)
        await register(store, first, at=1)
        await register(store, second, at=2)
        await register(store, service.browser(PUBLIC), user="u2")  # someone else's
        row = await queue(store, clock)
        run = Run(store, clock)
        try:
            assert await run.dispatcher.tick() == 1
        finally:
            await run.provider.close()
    assert service.attempts == 2  # only u1's two browsers
    (push,) = service.received
    assert push.message["id"] == row.id
    (left,) = await store.list_devices("t1", "u1")
    assert push.browser in (first, second)
    # The one that answered 410 is gone; the one that took the push is kept.
    assert parse_subscription(left.token, allow_insecure=True).endpoint == push.browser.endpoint
    done = await row_of(store, row)
    assert done.status is Status.DELIVERED
    assert run.device_results("gone") == 1
    assert run.device_results("accepted") == 1


async def test_no_browser_registered_is_failed(store: Store) -> None:
    clock = now_clock()
    row = await queue(store, clock)
    run = Run(store, clock)
    try:
        assert await run.dispatcher.tick() == 1
    finally:
        await run.provider.close()
    done = await row_of(store, row)
    assert done.status is Status.FAILED
    assert done.failure_reason == "no browser device registered"


def sender(clock: ManualClock, *, allow_insecure: bool = True) -> WebPushSender:
    return WebPushSender(
        VapidSigner(KEY, SUBJECT, clock), clock, allow_insecure=allow_insecure, timeout=5.0
    )


def device_for(token: str) -> Device:
    return Device("t1", "u1", DeviceType.BROWSER, token, 1)


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (400, PushOutcome.PERMANENT, "HTTP 400"),
        (413, PushOutcome.PERMANENT, "push service: payload too large"),
        (408, PushOutcome.TRANSIENT, "HTTP 408"),
        (500, PushOutcome.TRANSIENT, "HTTP 500"),
        (202, PushOutcome.ACCEPTED, ""),
    ],
)
async def test_answers_map_to_outcomes(status: int, outcome: PushOutcome, reason: str) -> None:
    clock = now_clock()
    service = PushService(script=deque([(status, {})]))
    async with push_service(service):
        browser = service.browser(PUBLIC)
        push = sender(clock)
        try:
            result = await push.send(device_for(browser.token()), make_row(0))
        finally:
            await push.close()
    assert (result.outcome, result.reason) == (outcome, reason)
    assert service.rejected == []


async def test_endpoints_off_loopback_rules_are_permanent_without_the_switch() -> None:
    clock = now_clock()
    service = PushService()
    async with push_service(service):
        browser = service.browser(PUBLIC)
        push = sender(clock, allow_insecure=False)
        https_loopback = browser.subscription()
        https_loopback["endpoint"] = f"https://127.0.0.1:{service.port}{browser.path}"
        try:
            insecure = await push.send(device_for(browser.token()), make_row(0))
            private = await push.send(device_for(json.dumps(https_loopback)), make_row(0))
        finally:
            await push.close()
    assert insecure.outcome is PushOutcome.PERMANENT
    assert insecure.reason == "bad subscription: token: endpoint must be https://"
    assert private.outcome is PushOutcome.PERMANENT
    assert private.reason == "push endpoint is not a public https:// address"
    assert service.attempts == 0


async def test_a_push_service_that_is_down_is_transient() -> None:
    clock = now_clock()
    service = PushService()
    async with push_service(service):
        browser = service.browser(PUBLIC)
    # The service is closed now: its port refuses connections.
    push = sender(clock)
    try:
        result = await push.send(device_for(browser.token()), make_row(0))
    finally:
        await push.close()
    assert result.outcome is PushOutcome.TRANSIENT
    assert result.reason == "push service connection: ConnectError"


async def test_an_origin_vapid_cannot_name_is_permanent() -> None:
    """py_vapid signs only host[:port] audiences: an IPv6 literal is refused before sending."""
    clock = now_clock()
    browser = Browser("/push/v6", PUBLIC, endpoint="http://[::1]:9/push/v6")
    push = sender(clock)
    try:
        result = await push.send(device_for(browser.token()), make_row(0))
    finally:
        await push.close()
    assert (result.outcome, result.reason) == (
        PushOutcome.PERMANENT,
        "push endpoint's origin is not signable",
    )
