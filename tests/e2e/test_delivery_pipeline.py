"""The whole pipeline in a running notifyd, on both drivers: one Notify to in-app, email
and webhook arrives on a live stream, at a real SMTP server (AUTH) and at a real webhook
receiver (signature verified); GetNotifications shows the external rows' outcome; a slow
SMTP server never holds Notify up; metrics count sends by outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from notify.service.dispatcher import Dispatcher
from tests.delivery_support import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    SmtpSink,
    WebhookReceiver,
    smtp_server,
    webhook_receiver,
)
from tests.support import (
    ConnectStream,
    ServerThread,
    dev_auth,
    notify_body,
    running_server_off_loop,
)

# Plain SMTP with AUTH on loopback (STARTTLS has tests of its own): aiosmtpd warns.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

CHANNELS = ["DELIVERY_CHANNEL_IN_APP", "DELIVERY_CHANNEL_EMAIL", "DELIVERY_CHANNEL_WEBHOOK"]


@asynccontextmanager
async def notifyd(
    overrides: dict[str, Any], sink: SmtpSink, hook: WebhookReceiver
) -> AsyncIterator[ServerThread]:
    password = SMTP_PASSWORD.replace(" ", "%20")
    async with running_server_off_loop(
        **overrides,
        email_smtp_url=f"smtp://{SMTP_USER}:{password}@127.0.0.1:{sink.port}",
        email_from="notify@example.com",
        preferences_url="https://app.example.com/settings",
        webhook_secret=WEBHOOK_SECRET,
        webhook_allow_private=True,
    ) as server:
        yield server


def dispatcher(server: ServerThread) -> Dispatcher:
    assert server.server is not None
    return server.server.dispatcher


async def drain(server: ServerThread) -> None:
    """Every send started so far is recorded (waited for on the server's loop)."""
    await asyncio.to_thread(server.call, dispatcher(server).drain())


async def test_one_notify_arrives_on_all_three_channels(store_overrides: dict[str, Any]) -> None:
    sink, hook = SmtpSink(), WebhookReceiver()
    async with (
        smtp_server(sink, auth=True),
        webhook_receiver(hook),
        notifyd(store_overrides, sink, hook) as server,
    ):
        with httpx.Client(timeout=10) as http:
            stream = await asyncio.to_thread(
                ConnectStream, http, server.client_url("StreamEvents"), dev_auth(), {}
            )
            try:
                await asyncio.to_thread(stream.next)  # the handshake
                body = notify_body(
                    "all-3",
                    channels=CHANNELS,
                    addresses={
                        "user-alice": {
                            "byChannel": {
                                "email": "alice@example.com",
                                "webhook": f"http://127.0.0.1:{hook.port}/alice",
                            }
                        }
                    },
                )
                answer = await asyncio.to_thread(http.post, server.internal_url(), json=body)
                assert answer.json() == {"delivered": 1, "pending": 2, "failed": 0}
                event = await asyncio.to_thread(stream.next)
                assert event["notification"]["notification"]["notificationId"] == "all-3"
            finally:
                stream.close()
            await sink.arrived.wait()
            await drain(server)
            assert await hook.arrived.wait()
            await drain(server)
            listed = await asyncio.to_thread(
                http.post,
                server.client_url("GetNotifications"),
                headers=dev_auth(),
                json={"filter": {"channels": CHANNELS}},
            )
            rows = {r["channel"]: r for r in listed.json()["notifications"]}
            metrics = (await asyncio.to_thread(http.get, server.metrics_url("/metrics"))).text
    (message,) = sink.messages
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "title all-3"
    assert message["List-Unsubscribe"] == "<https://app.example.com/settings>"
    assert sink.sessions == [(False, True)]
    ((headers, payload),) = hook.received
    email_row, hook_row = rows["DELIVERY_CHANNEL_EMAIL"], rows["DELIVERY_CHANNEL_WEBHOOK"]
    assert message["Message-ID"] == f"<{email_row['id']}@example.com>"
    assert headers["webhook-id"] == hook_row["id"] == payload["data"]["id"]
    for row in (email_row, hook_row):
        assert row["status"] == "DELIVERY_STATUS_DELIVERED"
        assert row["attempts"] == 1
        assert row["failureReason"] == ""
    assert email_row["providerMessageId"] == message["Message-ID"]
    assert rows["DELIVERY_CHANNEL_IN_APP"]["status"] == "DELIVERY_STATUS_DELIVERED"
    assert 'notify_delivery_sends_total{outcome="delivered",provider="email"} 1.0' in metrics
    assert 'notify_delivery_sends_total{outcome="delivered",provider="webhook"} 1.0' in metrics
    assert 'notify_notifications_stored_total{channel="email",status="delivered"} 1.0' in metrics


async def test_a_slow_smtp_server_never_holds_notify_up(store_overrides: dict[str, Any]) -> None:
    release = asyncio.Event()

    class Stuck(SmtpSink):
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            self.attempts += 1
            self.arrived.set()
            await release.wait()
            return await super().handle_DATA(server, session, envelope)

    sink, hook = Stuck(), WebhookReceiver()
    async with (
        smtp_server(sink, auth=True),
        webhook_receiver(hook),
        notifyd(store_overrides, sink, hook) as server,
    ):
        with httpx.Client(timeout=10) as http:
            first = notify_body(
                "slow-1",
                channels=["DELIVERY_CHANNEL_EMAIL"],
                addresses={"user-alice": {"byChannel": {"email": "alice@example.com"}}},
            )
            await asyncio.to_thread(http.post, server.internal_url(), json=first)
            await sink.arrived.wait()  # the send is stuck inside the SMTP transaction
            later = {**first, "notificationId": "slow-2", "title": "title slow-2"}
            later["channels"] = ["DELIVERY_CHANNEL_EMAIL", "DELIVERY_CHANNEL_IN_APP"]
            answer = await asyncio.to_thread(http.post, server.internal_url(), json=later)
            assert answer.json() == {"delivered": 0, "pending": 2, "failed": 0}
            release.set()
            await drain(server)
            while len(sink.messages) < 2:
                sink.arrived.clear()
                await sink.arrived.wait()
            await drain(server)
    assert sorted(str(m["Subject"]) for m in sink.messages) == ["title slow-1", "title slow-2"]
