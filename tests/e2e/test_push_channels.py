"""Every push and phone channel at once, through a running notifyd, on both drivers.

One user has a browser subscription, an Android token, an iOS token and a
phone number; one Notify to WEB_PUSH, MOBILE_PUSH and SMS reaches the four
local protocol servers, each verifying what the real one verifies: the push
service checks VAPID and decrypts the payload, Google's token endpoint
verifies the service account's RS256 assertion and FCM the bearer it issued,
APNs (HTTP/2 over TLS with a test CA) the ES256 provider token and headers,
Twilio basic auth and the form. The rows end DELIVERED with the providers'
message ids and the metrics count each provider and sender. Preferences
turning web push off skip that row while the others still go out; the
producer's collapse_key reaches APNs, FCM and the push service (as Topic),
and only in-app rows collapse in the store; one gone iOS device of two is
forgotten while the row is delivered through the other, and when every phone
is gone the row is FAILED with each one's reason. A channel without a
provider keeps its rows PENDING. And a half-configured provider stops the
real ``notifyd`` with one line naming the variable.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from notify.core.clock import ManualClock
from notify.core.model import DeviceType
from notify.core.vapidkeys import generate_private_key, private_key_b64url, public_key_b64url
from notify.delivery.apns_payload import message_id
from notify.delivery.webpush import topic
from tests.apns_support import (
    KEY_ID,
    TEAM_ID,
    TOPIC,
    Answer,
    ApnsServer,
    apns_server,
    make_p8,
    make_tls,
)
from tests.fcm_support import PROJECT, FcmServer, ServiceAccountKey, google
from tests.support import (
    ServerThread,
    dev_auth,
    eventually,
    notify_body,
    running_server_off_loop,
)
from tests.twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SMS_FROM,
    TwilioServer,
    twilio_server,
)
from tests.webpush_support import PushService, push_service

VAPID = generate_private_key()
VAPID_PUBLIC = public_key_b64url(VAPID)
SERVICE_ACCOUNT = ServiceAccountKey.generate()  # 2048-bit RSA: once per module

IN_APP = "DELIVERY_CHANNEL_IN_APP"
WEB_PUSH = "DELIVERY_CHANNEL_WEB_PUSH"
MOBILE_PUSH = "DELIVERY_CHANNEL_MOBILE_PUSH"
SMS = "DELIVERY_CHANNEL_SMS"
EXTERNAL = [WEB_PUSH, MOBILE_PUSH, SMS]

ANDROID_TOKEN = "fcm-registration-token-alice-pixel"
IOS_TOKEN = "a1" * 32
OTHER_IOS_TOKEN = "b2" * 32
ALICE_PHONE = "+14155550123"
NOTIFYD = str(Path(sys.executable).with_name("notifyd"))


@dataclass
class Servers:
    """The four local protocol servers, and the configuration pointing notifyd at them."""

    push: PushService
    fcm: FcmServer
    apns: ApnsServer
    twilio: TwilioServer
    config: dict[str, Any]


@asynccontextmanager
async def four_servers(folder: Path) -> AsyncIterator[Servers]:
    # Google's token endpoint judges assertion lifetimes by this clock; notifyd
    # signs with the real one, a few seconds later at most.
    google_clock = ManualClock(int(time.time() * 1000))
    tls = make_tls(folder)
    p8, apns_key = make_p8(folder)
    async with AsyncExitStack() as stack:
        push = await stack.enter_async_context(push_service(PushService()))
        fcm = await stack.enter_async_context(google(google_clock, SERVICE_ACCOUNT))
        apns = await stack.enter_async_context(
            apns_server(ApnsServer(apns_key.public_key(), time.time), tls)
        )
        twilio = await stack.enter_async_context(twilio_server(TwilioServer()))
        credentials = SERVICE_ACCOUNT.write(folder / "service-account.json", fcm.oauth.token_uri)
        config = {
            "webpush_vapid_private_key": private_key_b64url(VAPID),
            "webpush_subject": "mailto:ops@example.com",
            "webpush_allow_insecure": True,
            "fcm_credentials_file": str(credentials),
            "fcm_endpoint": fcm.url,
            "apns_key_file": str(p8),
            "apns_key_id": KEY_ID,
            "apns_team_id": TEAM_ID,
            "apns_topic": TOPIC,
            "apns_environment": "sandbox",
            "apns_endpoint": f"https://127.0.0.1:{apns.port}",
            "apns_ca_file": str(tls.ca_file),
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from": SMS_FROM,
            "twilio_base_url": twilio.url,
        }
        yield Servers(push, fcm, apns, twilio, config)


@asynccontextmanager
async def notifyd(store_overrides: dict[str, Any], servers: Servers) -> AsyncIterator[ServerThread]:
    async with running_server_off_loop(**store_overrides, **servers.config) as server:
        yield server


async def post(http: httpx.Client, url: str, body: Any, **kw: Any) -> httpx.Response:
    answer = await asyncio.to_thread(http.post, url, json=body, **kw)
    assert answer.status_code == 200, answer.text
    return answer


async def register(http: httpx.Client, server: ServerThread, device_type: str, token: str) -> None:
    await post(
        http,
        server.client_url("RegisterPushToken"),
        {"deviceType": device_type, "token": token},
        headers=dev_auth(),
    )


async def register_alice(http: httpx.Client, server: ServerThread, servers: Servers) -> None:
    """A laptop's browser, a Pixel and an iPhone."""
    await register(http, server, "DEVICE_TYPE_BROWSER", servers.push.browser(VAPID_PUBLIC).token())
    await register(http, server, "DEVICE_TYPE_ANDROID", ANDROID_TOKEN)
    await register(http, server, "DEVICE_TYPE_IOS", IOS_TOKEN)


def rows_of(http: httpx.Client, server: ServerThread, channels: list[str]) -> list[dict[str, Any]]:
    listed = http.post(
        server.client_url("GetNotifications"),
        json={"filter": {"channels": channels}},
        headers=dev_auth(),
    )
    found: list[dict[str, Any]] = listed.json()["notifications"]
    return found


async def settled(http: httpx.Client, server: ServerThread) -> dict[tuple[str, str], Any]:
    """The external rows by (notification id, channel), once none is PENDING and every
    send the dispatcher started is recorded (its metrics included)."""
    await asyncio.to_thread(
        eventually,
        lambda: all(
            r["status"] != "DELIVERY_STATUS_PENDING" for r in rows_of(http, server, EXTERNAL)
        ),
        what="every push and SMS row recorded",
    )
    assert server.server is not None
    await asyncio.to_thread(server.call, server.server.dispatcher.drain())
    rows = await asyncio.to_thread(rows_of, http, server, EXTERNAL)
    return {(r["notificationId"], r["channel"]): r for r in rows}


async def metrics_of(http: httpx.Client, server: ServerThread) -> str:
    return (await asyncio.to_thread(http.get, server.metrics_url("/metrics"))).text


def sms_to_alice(notification_id: str, **extra: Any) -> dict[str, Any]:
    return notify_body(
        notification_id,
        addresses={"user-alice": {"byChannel": {"sms": ALICE_PHONE}}},
        **extra,
    )


async def test_one_notify_reaches_all_four_servers_and_preferences_skip_web_push(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    async with four_servers(tmp_path) as servers, notifyd(store_overrides, servers) as server:
        with httpx.Client(timeout=10) as http:
            await register_alice(http, server, servers)
            first = await post(
                http,
                server.internal_url(),
                sms_to_alice(
                    "deploy-1",
                    channels=EXTERNAL,
                    title="Deploy failed",
                    body="api@1.4.2 failed its health check",
                    severity="SEVERITY_ERROR",
                    category="deploys",
                    actions=[{"id": "logs", "label": "Logs", "url": "/deploys/1", "primary": True}],
                ),
            )
            rows = await settled(http, server)
            metrics = await metrics_of(http, server)

            off = await post(
                http,
                server.client_url("UpdatePreferences"),
                {"rules": [{"category": "", "channel": WEB_PUSH, "enabled": False}]},
                headers=dev_auth(),
            )
            second = await post(
                http, server.internal_url(), sms_to_alice("deploy-2", channels=EXTERNAL)
            )
            after = await settled(http, server)

    # Notify answers at once: the three rows wait in the outbox.
    assert first.json() == {"delivered": 0, "pending": 3, "failed": 0}
    statuses = {channel: rows[("deploy-1", channel)]["status"] for channel in EXTERNAL}
    assert statuses == dict.fromkeys(EXTERNAL, "DELIVERY_STATUS_DELIVERED")

    # Web Push: VAPID verified, the payload decrypted with the browser's key.
    assert servers.push.rejected == []
    (push,) = servers.push.received
    assert push.message["id"] == rows[("deploy-1", WEB_PUSH)]["id"]
    assert (push.message["title"], push.message["body"]) == (
        "Deploy failed",
        "api@1.4.2 failed its health check",
    )
    assert (push.message["severity"], push.message["url"]) == ("error", "/deploys/1")
    assert push.headers["urgency"] == "high"
    assert push.claims["sub"] == "mailto:ops@example.com"
    web_id = rows[("deploy-1", WEB_PUSH)]["providerMessageId"]
    assert web_id == f"{servers.push.origin}/message/1"

    # FCM: one OAuth exchange, the assertion verified against the service account's key.
    assert (servers.fcm.oauth.exchanges, servers.fcm.oauth.refused) == (1, [])
    assert servers.fcm.unauthorized == 0
    android = servers.fcm.messages[0]  # (the second Notify's is checked below)
    mobile_row = rows[("deploy-1", MOBILE_PUSH)]
    assert android["token"] == ANDROID_TOKEN
    assert android["notification"] == {
        "title": "Deploy failed",
        "body": "api@1.4.2 failed its health check",
    }
    assert android["data"]["id"] == mobile_row["id"]
    assert android["data"]["url"] == "/deploys/1"
    assert android["android"]["priority"] == "high"

    # APNs: HTTP/2 over TLS, the ES256 provider token verified, the alert payload.
    ios = servers.apns.seen[0]
    assert (ios.status, ios.http_version, ios.device_token) == (200, "2", IOS_TOKEN)
    assert (ios.token_header["kid"], ios.claims["iss"]) == (KEY_ID, TEAM_ID)
    assert (ios.headers["apns-topic"], ios.headers["apns-push-type"]) == (TOPIC, "alert")
    assert ios.payload["aps"]["alert"] == {
        "title": "Deploy failed",
        "body": "api@1.4.2 failed its health check",
    }
    assert ios.payload["id"] == mobile_row["id"]
    # The row is delivered by whichever phone accepted: its id names that push.
    assert mobile_row["providerMessageId"] in {
        f"projects/{PROJECT}/messages/1",
        message_id(mobile_row["id"], IOS_TOKEN),
    }

    # Twilio: basic auth checked by the stand-in, the form as sent.
    assert servers.twilio.unauthorized == 0
    assert servers.twilio.messages[0] == {
        "To": ALICE_PHONE,
        "From": SMS_FROM,
        "Body": "Deploy failed\napi@1.4.2 failed its health check",
    }
    assert rows[("deploy-1", SMS)]["providerMessageId"] == servers.twilio.sids[0]

    # Metrics by provider (the dispatcher) and by sender (each device's answer).
    for provider in ("web_push", "mobile_push", "twilio-sms"):
        line = f'notify_delivery_sends_total{{outcome="delivered",provider="{provider}"}} 1.0'
        assert line in metrics
    for sender in ("webpush", "fcm", "apns"):
        line = f'notify_push_device_results_total{{outcome="accepted",sender="{sender}"}} 1.0'
        assert line in metrics

    # Web push turned off: that row is skipped, the phones and the SMS still go out.
    assert off.json()["preferences"]["rules"] == [
        {"category": "", "channel": WEB_PUSH, "enabled": False}
    ]
    assert second.json() == {"delivered": 0, "pending": 2, "failed": 0, "skipped": 1}
    assert ("deploy-2", WEB_PUSH) not in after
    assert after[("deploy-2", MOBILE_PUSH)]["status"] == "DELIVERY_STATUS_DELIVERED"
    assert after[("deploy-2", SMS)]["status"] == "DELIVERY_STATUS_DELIVERED"
    assert servers.push.attempts == 1
    assert [m["token"] for m in servers.fcm.messages] == [ANDROID_TOKEN, ANDROID_TOKEN]
    assert [(s.device_token, s.status) for s in servers.apns.seen] == [(IOS_TOKEN, 200)] * 2
    assert [m["Body"] for m in servers.twilio.messages] == [
        "Deploy failed\napi@1.4.2 failed its health check",
        "title deploy-2\nbody deploy-2",
    ]
    assert servers.fcm.oauth.exchanges == 1  # the access token was cached


async def test_the_collapse_key_reaches_apns_and_fcm_and_only_in_app_rows_collapse(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    async with four_servers(tmp_path) as servers, notifyd(store_overrides, servers) as server:
        with httpx.Client(timeout=10) as http:
            await register_alice(http, server, servers)
            answers = []
            for number in (1, 2):
                body = notify_body(
                    f"build-{number}",
                    channels=[IN_APP, WEB_PUSH, MOBILE_PUSH],
                    title=f"{number} builds failed",
                    collapseKey="builds:api",
                )
                answers.append((await post(http, server.internal_url(), body)).json())
                await settled(http, server)
            inbox = await asyncio.to_thread(rows_of, http, server, [IN_APP])
            pushed = await asyncio.to_thread(rows_of, http, server, [WEB_PUSH, MOBILE_PUSH])

    assert answers == [{"delivered": 0, "pending": 3, "failed": 0}] * 2
    # The inbox shows one row, the newer, counting both.
    (row,) = inbox
    assert (row["notificationId"], row["collapsedCount"]) == ("build-2", 2)
    # Every push row stays (each was sent), each carrying the key to its push service,
    # which replaces the older notification it holds or shows.
    assert sorted((r["channel"], r["notificationId"]) for r in pushed) == [
        (MOBILE_PUSH, "build-1"),
        (MOBILE_PUSH, "build-2"),
        (WEB_PUSH, "build-1"),
        (WEB_PUSH, "build-2"),
    ]
    assert {r["status"] for r in pushed} == {"DELIVERY_STATUS_DELIVERED"}
    assert servers.push.rejected == []
    assert [p.headers["topic"] for p in servers.push.received] == [topic("builds:api")] * 2
    assert [s.headers["apns-collapse-id"] for s in servers.apns.accepted()] == ["builds:api"] * 2
    assert [m["android"]["collapse_key"] for m in servers.fcm.messages] == ["builds:api"] * 2
    assert [m["notification"]["title"] for m in servers.fcm.messages] == [
        "1 builds failed",
        "2 builds failed",
    ]


async def test_a_gone_ios_device_is_forgotten_while_the_other_delivers(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    async with four_servers(tmp_path) as servers, notifyd(store_overrides, servers) as server:
        servers.apns.answer_next(OTHER_IOS_TOKEN, Answer(410, "Unregistered"))
        with httpx.Client(timeout=10) as http:
            await register(http, server, "DEVICE_TYPE_IOS", IOS_TOKEN)
            await register(http, server, "DEVICE_TYPE_IOS", OTHER_IOS_TOKEN)
            await post(http, server.internal_url(), notify_body("ios-1", channels=[MOBILE_PUSH]))
            first = (await settled(http, server))[("ios-1", MOBILE_PUSH)]
            assert server.server is not None
            devices = await asyncio.to_thread(
                server.call, server.server.store.list_devices("acme", "user-alice")
            )
            metrics = await metrics_of(http, server)
            await post(http, server.internal_url(), notify_body("ios-2", channels=[MOBILE_PUSH]))
            second = (await settled(http, server))[("ios-2", MOBILE_PUSH)]

    assert first["status"] == "DELIVERY_STATUS_DELIVERED"
    assert first["providerMessageId"] == message_id(first["id"], IOS_TOKEN)
    assert first["attempts"] == 1
    assert [(d.device_type, d.token) for d in devices] == [(DeviceType.IOS, IOS_TOKEN)]
    assert 'notify_push_device_results_total{outcome="accepted",sender="apns"} 1.0' in metrics
    assert 'notify_push_device_results_total{outcome="gone",sender="apns"} 1.0' in metrics
    # The next push goes to the remaining phone only; the gone one is never tried again.
    assert second["status"] == "DELIVERY_STATUS_DELIVERED"
    tried = [(s.device_token, s.status) for s in servers.apns.seen]
    assert sorted(tried[:2]) == [(IOS_TOKEN, 200), (OTHER_IOS_TOKEN, 410)]
    assert tried[2:] == [(IOS_TOKEN, 200)]


async def test_every_phone_gone_fails_the_row_with_each_reason_and_forgets_them(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    async with four_servers(tmp_path) as servers, notifyd(store_overrides, servers) as server:
        servers.fcm.gone.add(ANDROID_TOKEN)
        servers.apns.answer_next(IOS_TOKEN, Answer(400, "BadDeviceToken"))
        with httpx.Client(timeout=10) as http:
            await register(http, server, "DEVICE_TYPE_ANDROID", ANDROID_TOKEN)
            await register(http, server, "DEVICE_TYPE_IOS", IOS_TOKEN)
            await post(http, server.internal_url(), notify_body("gone-1", channels=[MOBILE_PUSH]))
            row = (await settled(http, server))[("gone-1", MOBILE_PUSH)]
            assert server.server is not None
            devices = await asyncio.to_thread(
                server.call, server.server.store.list_devices("acme", "user-alice")
            )

    assert (row["status"], row["attempts"]) == ("DELIVERY_STATUS_FAILED", 1)
    reasons = dict(part.split(": ", 1) for part in row["failureReason"].split("; "))
    assert reasons["apns"] == "APNs 400 BadDeviceToken"
    assert "UNREGISTERED" in reasons["fcm"]
    for token in servers.fcm.oauth.issued:  # no access token leaks into a reason
        assert token not in row["failureReason"]
    assert devices == []


async def test_unconfigured_channels_stay_pending_and_an_unserved_platform_fails(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    """Without APNs, MOBILE_PUSH serves Android only: an iPhone-only user's row is FAILED.
    WhatsApp (no sender number) has no provider at all: its row waits, PENDING."""
    async with four_servers(tmp_path) as servers:
        apns_off = {k: v for k, v in servers.config.items() if not k.startswith("apns_")}
        servers.config = apns_off
        async with notifyd(store_overrides, servers) as server:
            with httpx.Client(timeout=10) as http:
                await register(http, server, "DEVICE_TYPE_IOS", IOS_TOKEN)
                body = notify_body(
                    "later-1",
                    channels=[MOBILE_PUSH, SMS, "DELIVERY_CHANNEL_WHATSAPP"],
                    addresses={
                        "user-alice": {"byChannel": {"sms": ALICE_PHONE, "whatsapp": ALICE_PHONE}}
                    },
                )
                answer = await post(http, server.internal_url(), body)
                rows = await settled(http, server)
                assert server.server is not None
                # Another pass of every provider claims nothing: WhatsApp has none.
                handled = await asyncio.to_thread(server.call, server.server.dispatcher.tick())
                channels = [MOBILE_PUSH, SMS, "DELIVERY_CHANNEL_WHATSAPP"]
                listed = await asyncio.to_thread(rows_of, http, server, channels)

    assert answer.json() == {"delivered": 0, "pending": 3, "failed": 0}
    mobile = rows[("later-1", MOBILE_PUSH)]
    assert (mobile["status"], mobile["failureReason"]) == (
        "DELIVERY_STATUS_FAILED",
        "no android device registered",
    )
    assert rows[("later-1", SMS)]["status"] == "DELIVERY_STATUS_DELIVERED"
    assert handled == 0
    statuses = {r["channel"]: (r["status"], r.get("attempts", 0)) for r in listed}
    assert statuses["DELIVERY_CHANNEL_WHATSAPP"] == ("DELIVERY_STATUS_PENDING", 0)
    assert servers.apns.seen == []
    assert servers.fcm.attempts == 0
    assert [m["To"] for m in servers.twilio.messages] == [ALICE_PHONE]


# ---------------------------------------------------------------- start-up


def notifyd_refusing(**env: str) -> str:
    """Runs the real notifyd with only these NOTIFY_* variables; its one line on stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    environ.update(
        NOTIFY_AUTH_DEV_MODE="true",
        NOTIFY_CLIENT_PORT="0",
        NOTIFY_INTERNAL_PORT="0",
        NOTIFY_METRICS_PORT="0",
        **env,
    )
    done = subprocess.run([NOTIFYD], env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for secret in (AUTH_TOKEN, private_key_b64url(VAPID)):
        assert secret not in done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("apns", "NOTIFY_APNS_TEAM_ID"),
        ("fcm", "NOTIFY_FCM_CREDENTIALS_FILE"),
        ("twilio", "NOTIFY_TWILIO_AUTH_TOKEN"),
        ("webpush", "NOTIFY_WEBPUSH_SUBJECT"),
    ],
)
def test_a_half_configured_provider_stops_notifyd_naming_the_variable(
    provider: str, variable: str, tmp_path: Path
) -> None:
    p8, _ = make_p8(tmp_path)
    half = {
        # An APNs key without its team.
        "apns": {
            "NOTIFY_APNS_KEY_FILE": str(p8),
            "NOTIFY_APNS_KEY_ID": KEY_ID,
            "NOTIFY_APNS_TOPIC": TOPIC,
        },
        # A credentials file that is not there.
        "fcm": {"NOTIFY_FCM_CREDENTIALS_FILE": str(tmp_path / "missing.json")},
        # A Twilio account without its token.
        "twilio": {"NOTIFY_TWILIO_ACCOUNT_SID": ACCOUNT_SID, "NOTIFY_TWILIO_FROM": SMS_FROM},
        # A VAPID key without the subject push services want.
        "webpush": {"NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY": private_key_b64url(VAPID)},
    }[provider]
    line = notifyd_refusing(**half)
    assert line.startswith(f"notifyd: configuration error: {variable}: "), line
