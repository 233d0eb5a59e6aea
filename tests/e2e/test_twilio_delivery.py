"""SMS and WhatsApp through the outbox to a Twilio-shaped server that checks basic auth and
the form, on both store drivers: DELIVERED with the message SID, WhatsApp numbers written
``whatsapp:+E164``, a number that is not E.164 FAILED without a request, 429/503 retried
after Retry-After, Twilio's permanent codes FAILED at once, the text cut to three
segments, the auth token in no reason or log; and one Notify through a running notifyd."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import pytest

from notify.config import Config, ConfigError
from notify.core.clock import ManualClock
from notify.core.model import Channel, Notification, Status
from notify.delivery.backoff import Backoff
from notify.delivery.twilio import TwilioChannels, twilio_channels
from notify.metrics import Metrics
from notify.service.dispatcher import Dispatcher, DispatchPolicy
from notify.store import Store
from notify.store.conformance import make_row
from tests.delivery_support import (  # noqa: F401  (the fixtures pg_dsn and store)
    pg_dsn_fixture,
    store_fixture,
)
from tests.support import dev_auth, notify_body, running_server_off_loop
from tests.twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SMS_FROM,
    WHATSAPP_FROM,
    TwilioServer,
    twilio_error,
    twilio_server,
)

ALICE = "+14155550123"
_numbers = itertools.count()  # distinct notification ids


def config(url: str, **extra: str) -> Config:
    fields = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": SMS_FROM,
        "twilio_whatsapp_from": WHATSAPP_FROM,
        "twilio_base_url": url,
        **extra,
    }
    return Config(**fields)


def run(
    store: Store, clock: ManualClock, channels: TwilioChannels, *, jitter: float = 1.0
) -> Dispatcher:
    policy = DispatchPolicy(Backoff(1.0, random=lambda: jitter))
    return Dispatcher(store, channels.providers, clock, Metrics(), policy)


async def queue(
    store: Store, clock: ManualClock, address: str, channel: Channel = Channel.SMS
) -> Notification:
    row = make_row(next(_numbers), channel=channel, created_at_ms=clock.now_ms(), address=address)
    row.title, row.body = "Deploy failed", "api@1.4.2 failed its health check"
    (stored,) = await store.create_notifications([row])
    return stored.row


async def row_of(store: Store, row: Notification) -> Notification:
    (found,) = await store.get_notifications(row.tenant_id, [row.id])
    return found


async def send_all(
    store: Store, server: TwilioServer, rows: list[tuple[str, Channel]], **extra: str
) -> list[Notification]:
    """Queues the rows, runs one dispatcher round and answers the rows as stored."""
    clock = ManualClock()
    channels = twilio_channels(config(server.url, **extra), clock)
    try:
        queued = [await queue(store, clock, address, channel) for address, channel in rows]
        await run(store, clock, channels).tick()
    finally:
        await channels.close()
    return [await row_of(store, row) for row in queued]


async def test_sms_is_delivered_with_the_message_sid(store: Store) -> None:
    async with twilio_server(TwilioServer()) as server:
        (row,) = await send_all(store, server, [(ALICE, Channel.SMS)])
    assert server.messages == [
        {"To": ALICE, "From": SMS_FROM, "Body": "Deploy failed\napi@1.4.2 failed its health check"}
    ]
    assert (row.status, row.attempts, row.failure_reason) == (Status.DELIVERED, 1, "")
    assert row.provider_message_id == server.sids[0]
    assert row.provider_message_id.startswith("SM")


async def test_whatsapp_numbers_are_prefixed_on_both_ends(store: Store) -> None:
    async with twilio_server(TwilioServer()) as server:
        rows = await send_all(
            store, server, [(ALICE, Channel.WHATSAPP), (f"whatsapp:{ALICE}", Channel.WHATSAPP)]
        )
    assert [r.status for r in rows] == [Status.DELIVERED, Status.DELIVERED]
    expected = {"To": f"whatsapp:{ALICE}", "From": f"whatsapp:{WHATSAPP_FROM}"}
    assert [{k: m[k] for k in ("To", "From")} for m in server.messages] == [expected, expected]


async def test_a_messaging_service_sends_instead_of_a_number(store: Store) -> None:
    service = "MG" + "a1b2c3d4" * 4
    async with twilio_server(TwilioServer()) as server:
        (row,) = await send_all(store, server, [(ALICE, Channel.SMS)], twilio_from=service)
    assert row.status is Status.DELIVERED
    assert server.messages[0]["MessagingServiceSid"] == service
    assert "From" not in server.messages[0]


@pytest.mark.parametrize(
    ("address", "channel"),
    [
        ("4155550123", Channel.SMS),
        ("+1 415 555 0123", Channel.SMS),
        ("+04155550123", Channel.SMS),
        ("+1415555012345678", Channel.SMS),
        (f"whatsapp:{ALICE}", Channel.SMS),
        (f"sms:{ALICE}", Channel.WHATSAPP),
        ("alice@example.com", Channel.WHATSAPP),
    ],
)
async def test_a_number_that_is_not_e164_fails_without_a_request(
    store: Store, address: str, channel: Channel
) -> None:
    async with twilio_server(TwilioServer()) as server:
        (row,) = await send_all(store, server, [(address, channel)])
    assert server.attempts == 0
    assert row.status is Status.FAILED
    assert row.failure_reason == "invalid phone number (E.164 needed, like +14155550123)"


@pytest.mark.parametrize(
    "answer",
    [
        twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "3"}),
        twilio_error(503, 20503, "Service Unavailable", **{"Retry-After": "3"}),
    ],
)
async def test_429_and_503_are_retried_after_their_retry_after(
    store: Store, answer: tuple[int, dict[str, str], bytes]
) -> None:
    clock = ManualClock()
    async with twilio_server(TwilioServer(script=deque([answer]))) as server:
        channels = twilio_channels(config(server.url), clock)
        try:
            row = await queue(store, clock, ALICE)
            dispatcher = run(store, clock, channels, jitter=0.0)  # no wait but Retry-After
            assert await dispatcher.tick() == 1
            waiting = await row_of(store, row)
            clock.advance(2.999)
            assert await dispatcher.tick() == 0
            clock.advance(0.001)
            assert await dispatcher.tick() == 1
        finally:
            await channels.close()
    assert waiting.status is Status.PENDING
    code = 20429 if answer[0] == 429 else 20503
    assert waiting.failure_reason.startswith(f"Twilio {code}: ")
    done = await row_of(store, row)
    assert (done.status, done.attempts, server.attempts) == (Status.DELIVERED, 2, 2)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (21211, "The 'To' number +15551234567 is not a valid phone number."),
        (21610, "Attempt to send to unsubscribed recipient"),
        (21614, "'To' number is not a valid mobile number"),
        (21408, "Permission to send an SMS has not been enabled for the region"),
    ],
)
async def test_twilios_permanent_codes_fail_at_once(store: Store, code: int, message: str) -> None:
    clock = ManualClock()
    server = TwilioServer(script=deque([twilio_error(400, code, message)]))
    async with twilio_server(server):
        channels = twilio_channels(config(server.url), clock)
        try:
            row = await queue(store, clock, ALICE)
            dispatcher = run(store, clock, channels)
            await dispatcher.tick()
            clock.advance(3600)
            assert await dispatcher.tick() == 0
        finally:
            await channels.close()
    failed = await row_of(store, row)
    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert failed.failure_reason == f"Twilio {code}: {message}"


async def test_an_unsubscribed_recipient_is_refused_by_the_server(store: Store) -> None:
    async with twilio_server(TwilioServer(unsubscribed={ALICE})) as server:
        (row,) = await send_all(store, server, [(ALICE, Channel.SMS)])
    assert (row.status, row.failure_reason) == (
        Status.FAILED,
        "Twilio 21610: Attempt to send to unsubscribed recipient",
    )


async def test_a_wrong_token_fails_and_no_token_is_ever_shown(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with twilio_server(TwilioServer()) as server:
        (refused,) = await send_all(
            store, server, [(ALICE, Channel.SMS)], twilio_auth_token="not-the-token-at-all"
        )
        (sent,) = await send_all(store, server, [(ALICE, Channel.WHATSAPP)])
        built = twilio_channels(config(server.url), ManualClock())
        shown = repr(built.client) + repr(built.providers)
        await built.close()
    assert (refused.status, refused.failure_reason) == (Status.FAILED, "Twilio 20003: Authenticate")
    assert sent.status is Status.DELIVERED
    text = "\n".join([caplog.text, refused.failure_reason, shown])
    assert "not-the-token-at-all" not in text
    assert AUTH_TOKEN not in text


async def test_long_text_is_cut_to_three_segments(store: Store) -> None:
    clock = ManualClock()
    async with twilio_server(TwilioServer()) as server:
        channels = twilio_channels(config(server.url), clock)
        try:
            rows = []
            for text in ("a" * 1000, "é" * 1000, "€" * 1000, "ж" * 1000):  # GSM, GSM, ext, UCS-2
                row = make_row(
                    next(_numbers), channel=Channel.SMS, created_at_ms=clock.now_ms(), address=ALICE
                )
                row.title, row.body = text, ""
                rows.append(row)
            long_whatsapp = make_row(
                next(_numbers),
                channel=Channel.WHATSAPP,
                created_at_ms=clock.now_ms(),
                address=ALICE,
            )
            long_whatsapp.title, long_whatsapp.body = "ж" * 2000, ""
            for row in [*rows, long_whatsapp]:
                await store.create_notifications([row])
                await run(store, clock, channels).tick()
        finally:
            await channels.close()
    bodies = [m["Body"] for m in server.messages]
    # 3 x 153 GSM-7 septets (a euro sign takes two and never straddles two segments),
    # 3 x 67 UCS-2 units; the ellipsis included.
    assert bodies[:4] == ["a" * 456 + "...", "é" * 456 + "...", "€" * 227 + "...", "ж" * 200 + "…"]
    assert bodies[4] == "ж" * 1599 + "…"


def test_incomplete_configuration_names_the_variable() -> None:
    clock = ManualClock()
    assert twilio_channels(Config(), clock).providers == []
    cases = {
        "NOTIFY_TWILIO_ACCOUNT_SID: required when NOTIFY_TWILIO_FROM is set": Config(
            twilio_from=SMS_FROM
        ),
        "NOTIFY_TWILIO_ACCOUNT_SID: required when NOTIFY_TWILIO_AUTH_TOKEN is set": Config(
            twilio_auth_token=AUTH_TOKEN
        ),
        "NOTIFY_TWILIO_AUTH_TOKEN: required when NOTIFY_TWILIO_ACCOUNT_SID is set": Config(
            twilio_account_sid=ACCOUNT_SID, twilio_from=SMS_FROM
        ),
        "NOTIFY_TWILIO_FROM: required when NOTIFY_TWILIO_ACCOUNT_SID is set": Config(
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN
        ),
    }
    for expected, given in cases.items():
        with pytest.raises(ConfigError) as caught:
            twilio_channels(given, clock)
        assert str(caught.value).startswith(expected)
        assert AUTH_TOKEN not in str(caught.value)
    only_whatsapp = twilio_channels(
        Config(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_whatsapp_from=WHATSAPP_FROM,
        ),
        clock,
    )
    assert [(p.name, p.channel) for p in only_whatsapp.providers] == [
        ("twilio-whatsapp", Channel.WHATSAPP)
    ]
    asyncio.run(only_whatsapp.close())


def test_notifyd_refuses_a_partial_twilio_configuration_in_one_line() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    environ.update(
        NOTIFY_AUTH_DEV_MODE="true",
        NOTIFY_CLIENT_PORT="0",
        NOTIFY_INTERNAL_PORT="0",
        NOTIFY_METRICS_PORT="0",
        NOTIFY_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        NOTIFY_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
    )
    notifyd = str(Path(sys.executable).with_name("notifyd"))
    done = subprocess.run([notifyd], env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "notifyd: configuration error: NOTIFY_TWILIO_FROM: required when"
        " NOTIFY_TWILIO_ACCOUNT_SID is set (or NOTIFY_TWILIO_WHATSAPP_FROM for WhatsApp only)"
    ]


async def test_one_notify_reaches_sms_and_whatsapp_through_notifyd(
    store_overrides: dict[str, Any],
) -> None:
    async with (
        twilio_server(TwilioServer()) as twilio,
        running_server_off_loop(
            **store_overrides,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from=SMS_FROM,
            twilio_whatsapp_from=WHATSAPP_FROM,
            twilio_base_url=twilio.url,
        ) as server,
    ):
        channels = ["DELIVERY_CHANNEL_SMS", "DELIVERY_CHANNEL_WHATSAPP"]
        body = notify_body(
            "phones-1",
            channels=channels,
            addresses={"user-alice": {"byChannel": {"sms": ALICE, "whatsapp": ALICE}}},
        )
        with httpx.Client(timeout=10) as http:
            answer = await asyncio.to_thread(http.post, server.internal_url(), json=body)
            assert answer.json() == {"delivered": 0, "pending": 2, "failed": 0}
            assert server.server is not None
            await twilio.wait_for(2)  # the dispatcher's loops send on their own
            await asyncio.to_thread(server.call, server.server.dispatcher.drain())
            listed = await asyncio.to_thread(
                http.post,
                server.client_url("GetNotifications"),
                headers=dev_auth(),
                json={"filter": {"channels": channels}},
            )
            metrics = (await asyncio.to_thread(http.get, server.metrics_url("/metrics"))).text
    rows = {r["channel"]: r for r in listed.json()["notifications"]}
    for channel in channels:
        assert rows[channel]["status"] == "DELIVERY_STATUS_DELIVERED"
        assert rows[channel]["providerMessageId"] in twilio.sids
    assert sorted(m["To"] for m in twilio.messages) == [ALICE, f"whatsapp:{ALICE}"]
    assert {m["Body"] for m in twilio.messages} == {"title phones-1\nbody phones-1"}
    for provider in ("twilio-sms", "twilio-whatsapp"):
        assert f'notify_delivery_sends_total{{outcome="delivered",provider="{provider}"}} 1.0' in (
            metrics
        )
