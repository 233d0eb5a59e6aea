"""Signed webhooks through the outbox to a real HTTP receiver that verifies each request
with the standardwebhooks library, on both store drivers: 500, 500, 200 is DELIVERED,
Retry-After is honoured, a 4xx is FAILED at once, a receiver down for the whole budget is
FAILED, and loopback and private destinations are refused unless allowed."""

from __future__ import annotations

import time
from collections import deque

import pytest

from notify.core.clock import ManualClock
from notify.core.model import Channel, Notification, Status
from notify.delivery import ssrf
from notify.delivery.backoff import Backoff
from notify.delivery.outbound import retry_after_ms
from notify.delivery.webhook import WebhookProvider
from notify.metrics import Metrics
from notify.service.dispatcher import Dispatcher, DispatchPolicy
from notify.store import Store
from notify.store.conformance import make_row
from tests.delivery_support import (  # noqa: F401  (the fixtures pg_dsn and store)
    WEBHOOK_SECRET,
    WebhookReceiver,
    pg_dsn_fixture,
    store_fixture,
    webhook_receiver,
)


def now_clock() -> ManualClock:
    # Receivers check webhook-timestamp against their own clock (5 minutes of skew).
    return ManualClock(int(time.time() * 1000))


def run(
    store: Store,
    clock: ManualClock,
    *,
    allow_private: bool = True,
    jitter: float = 1.0,
    **policy: int,
) -> tuple[Dispatcher, WebhookProvider]:
    hooks = WebhookProvider(WEBHOOK_SECRET, clock, allow_private=allow_private)
    backoff = Backoff(1.0, random=lambda: jitter)
    return Dispatcher(store, [hooks], clock, Metrics(), DispatchPolicy(backoff, **policy)), hooks


async def queue(store: Store, clock: ManualClock, url: str) -> Notification:
    row = make_row(0, channel=Channel.WEBHOOK, created_at_ms=clock.now_ms(), address=url)
    row.title, row.category = "Deploy finished", "deploys"
    (stored,) = await store.create_notifications([row])
    return stored.row


async def row_of(store: Store, row: Notification) -> Notification:
    (found,) = await store.get_notifications(row.tenant_id, [row.id])
    return found


async def test_500_500_200_is_delivered_signed_with_one_id(store: Store) -> None:
    clock = now_clock()
    receiver = WebhookReceiver(script=deque([(500, {}), (500, {})]))
    async with webhook_receiver(receiver):
        row = await queue(store, clock, f"http://127.0.0.1:{receiver.port}/hook?x=1")
        dispatcher, hooks = run(store, clock)
        try:
            assert await dispatcher.tick() == 1
            clock.advance(1)
            assert await dispatcher.tick() == 1
            clock.advance(2)
            assert await dispatcher.tick() == 1
        finally:
            await hooks.close()
    assert receiver.attempts == 3
    assert receiver.rejected == 0
    ((headers, body),) = receiver.received
    assert headers["webhook-id"] == row.id
    assert headers["host"] == f"127.0.0.1:{receiver.port}"
    assert body["type"] == "notification.created"
    assert body["data"]["id"] == row.id
    assert body["data"]["title"] == "Deploy finished"
    assert body["data"]["category"] == "deploys"
    assert body["data"]["channel"] == "DELIVERY_CHANNEL_WEBHOOK"
    done = await row_of(store, row)
    assert (done.status, done.attempts, done.provider_message_id) == (Status.DELIVERED, 3, row.id)


async def test_retry_after_is_honoured(store: Store) -> None:
    clock = now_clock()
    receiver = WebhookReceiver(script=deque([(429, {"Retry-After": "2"})]))
    async with webhook_receiver(receiver):
        row = await queue(store, clock, f"http://127.0.0.1:{receiver.port}/")
        # jitter 0: without Retry-After the retry would be due at once.
        dispatcher, hooks = run(store, clock, jitter=0.0)
        try:
            await dispatcher.tick()
            assert (await row_of(store, row)).failure_reason == "HTTP 429"
            clock.advance(1.999)
            assert await dispatcher.tick() == 0
            clock.advance(0.001)
            assert await dispatcher.tick() == 1
        finally:
            await hooks.close()
    assert receiver.attempts == 2
    assert (await row_of(store, row)).status is Status.DELIVERED


async def test_a_4xx_is_failed_at_once(store: Store) -> None:
    clock = now_clock()
    receiver = WebhookReceiver(script=deque([(410, {})]))
    async with webhook_receiver(receiver):
        row = await queue(store, clock, f"http://127.0.0.1:{receiver.port}/")
        dispatcher, hooks = run(store, clock)
        try:
            await dispatcher.tick()
            clock.advance(3600)
            assert await dispatcher.tick() == 0
        finally:
            await hooks.close()
    failed = await row_of(store, row)
    assert (failed.status, failed.failure_reason, failed.attempts) == (
        Status.FAILED,
        "HTTP 410",
        1,
    )


async def test_a_receiver_down_for_the_whole_budget_is_failed(store: Store) -> None:
    clock = now_clock()
    receiver = WebhookReceiver()
    async with webhook_receiver(receiver):
        port = receiver.port  # closed below: nothing listens there any more
    row = await queue(store, clock, f"http://127.0.0.1:{port}/")
    dispatcher, hooks = run(store, clock, max_attempts=4)
    try:
        for _ in range(4):
            assert await dispatcher.tick() == 1
            clock.advance(600)
        assert await dispatcher.tick() == 0
    finally:
        await hooks.close()
    failed = await row_of(store, row)
    assert (failed.status, failed.attempts) == (Status.FAILED, 4)
    assert failed.failure_reason.startswith("gave up after 4 attempts: webhook connection")


async def test_loopback_is_refused_unless_allowed(store: Store) -> None:
    clock = now_clock()
    receiver = WebhookReceiver()
    async with webhook_receiver(receiver):
        row = await queue(store, clock, f"http://127.0.0.1:{receiver.port}/")
        dispatcher, hooks = run(store, clock, allow_private=False)
        try:
            await dispatcher.tick()
        finally:
            await hooks.close()
    assert receiver.attempts == 0
    refused = await row_of(store, row)
    assert refused.status is Status.FAILED
    assert "loopback, private or link-local" in refused.failure_reason


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8080/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
    ],
)
async def test_private_destinations_are_refused(url: str) -> None:
    with pytest.raises(ssrf.Refused):
        await ssrf.vet(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "http:///x", "x"])
async def test_only_http_urls_are_sent(url: str) -> None:
    with pytest.raises(ssrf.Refused):
        await ssrf.vet(url, allow_private=True)


async def test_a_public_address_is_pinned_with_the_host_kept() -> None:
    found = await ssrf.vet("https://user@93.184.215.14:8443/a?b=c", allow_private=False)
    assert (found.url, found.host) == ("https://93.184.215.14:8443/a?b=c", "93.184.215.14:8443")


def test_retry_after_forms() -> None:
    now = 1_700_000_000_000
    assert retry_after_ms("2", now) == 2000
    assert retry_after_ms(None, now) == 0
    assert retry_after_ms("soon", now) == 0
    assert retry_after_ms("Tue, 14 Nov 2023 22:13:30 GMT", now) == 10_000
