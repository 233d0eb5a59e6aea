"""The FCM HTTP v1 sender against local stand-ins of Google's token endpoint (which verifies
the RS256 assertion with the service account's public key) and the send endpoint (which
checks the bearer and the message), over real sockets: the message FCM gets, the token
cached and refreshed (expiry by the clock, a revoked token mid-run), the token-gone and
transient answers, and no credential ever in a reason, a log line or a repr."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.config import Config, ConfigError, load_config
from notify.core.clock import ManualClock
from notify.core.model import Action, Channel, Device, DeviceType, Notification, Severity
from notify.core.ports import PushOutcome
from notify.delivery.fcm import FcmSender, fcm_sender
from notify.delivery.service_account import load_service_account
from notify.store.conformance import make_row
from tests.fcm_support import PROJECT, FcmServer, ServiceAccountKey, fcm_error, google

KEY = ServiceAccountKey.generate()  # 2048-bit RSA takes a while: once per module


def now_clock() -> ManualClock:
    return ManualClock(int(time.time() * 1000))


def android(token: str = "fcm-token-1") -> Device:
    return Device("acme", "user-alice", DeviceType.ANDROID, token, 0)


def push_row(clock: ManualClock, subject: str = "", **fields: object) -> Notification:
    row = make_row(0, channel=Channel.MOBILE_PUSH, created_at_ms=clock.now_ms(), **fields)
    row.title, row.body = "Deploy failed", "api@1.4.2 failed its health check"
    row.subject_ref, row.subject_type = subject, subject.partition(":")[0]
    return row


@asynccontextmanager
async def stack(
    tmp_path: Path, clock: ManualClock, key: ServiceAccountKey = KEY, endpoint: str = ""
) -> AsyncIterator[tuple[FcmSender, FcmServer]]:
    """Both endpoints, a credentials file naming the local token endpoint, and the sender
    built from configuration as notifyd builds it."""
    async with google(clock, KEY) as fcm:
        credentials = key.write(tmp_path / "service-account.json", fcm.oauth.token_uri)
        config = Config(fcm_credentials_file=str(credentials), fcm_endpoint=endpoint or fcm.url)
        sender = fcm_sender(config, clock)
        assert sender is not None
        try:
            yield sender, fcm
        finally:
            await sender.close()


async def test_a_push_carries_what_fcm_and_the_app_need(tmp_path: Path) -> None:
    clock = now_clock()
    row = push_row(
        clock,
        severity=Severity.ERROR,
        category="deploys",
        image_url="https://cdn.example.com/a.png",
        actions=(
            Action("ack", "Acknowledge", "/deploys/91/ack"),
            Action("logs", "Open logs", "myapp://deploys/91/logs", primary=True),
        ),
        data='{"deploy": 91}',
        collapse_key="deploy:api",
        expires_at_ms=clock.now_ms() + 90_500,
        subject="deploy:91",
    )
    async with stack(tmp_path, clock) as (sender, fcm):
        result = await sender.send(android(), row)
    assert result.outcome is PushOutcome.ACCEPTED, result.reason
    assert result.provider_message_id == f"projects/{PROJECT}/messages/1"
    assert fcm.messages == [
        {
            "token": "fcm-token-1",
            "notification": {
                "title": "Deploy failed",
                "body": "api@1.4.2 failed its health check",
                "image": "https://cdn.example.com/a.png",
            },
            "data": {
                "id": row.id,
                "notification_id": "n-0",
                "category": "deploys",
                "severity": "error",
                "url": "myapp://deploys/91/logs",
                "subject_ref": "deploy:91",
                "subject_type": "deploy",
                "data": '{"deploy": 91}',
            },
            "android": {
                "priority": "high",
                "ttl": "90.500s",
                "collapse_key": "deploy:api",
                "notification": {"tag": "deploy:api"},
            },
        }
    ]


async def test_a_plain_row_is_normal_priority_without_optional_fields(tmp_path: Path) -> None:
    clock = now_clock()
    row = push_row(clock, severity=Severity.INFO, actions=(Action("a", "A", "/a"),))
    async with stack(tmp_path, clock) as (sender, fcm):
        assert (await sender.send(android(), row)).outcome is PushOutcome.ACCEPTED
    (sent,) = fcm.messages
    assert sent["android"] == {"priority": "normal"}
    assert sent["notification"] == {"title": row.title, "body": row.body}
    assert sent["data"] == {"id": row.id, "notification_id": "n-0", "severity": "info"}


async def test_the_token_is_cached_and_fetched_once_for_concurrent_sends(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        results = await asyncio.gather(
            *(sender.send(android(f"t-{i}"), push_row(clock)) for i in range(8))
        )
        assert {r.outcome for r in results} == {PushOutcome.ACCEPTED}
        await sender.send(android(), push_row(clock))
    assert fcm.oauth.exchanges == 1
    assert len(set(fcm.bearers)) == 1
    assert len(fcm.bearers) == 9


async def test_the_token_is_refreshed_before_it_runs_out(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        fcm.oauth.expires_in = 120  # replaced 60 s before its end
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
        clock.advance(59)
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
        assert fcm.oauth.exchanges == 1
        clock.advance(2)
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
        assert fcm.oauth.exchanges == 2
        # A tiny lifetime is replaced at half of it.
        fcm.oauth.expires_in = 2
        clock.advance(3600)
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
        clock.advance(0.999)
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
        assert fcm.oauth.exchanges == 3
        clock.advance(0.001)
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
        assert fcm.oauth.exchanges == 4
    assert fcm.unauthorized == 0


async def test_a_token_refused_mid_run_is_replaced_once_and_the_push_sent(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
        fcm.revoke_all()  # the server dropped it early: only the 401 says so
        result = await sender.send(android(), push_row(clock))
        assert result.outcome is PushOutcome.ACCEPTED, result.reason
        assert (fcm.unauthorized, fcm.oauth.exchanges, len(fcm.messages)) == (1, 2, 2)
        # The new token is kept.
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
    assert fcm.oauth.exchanges == 2


async def test_a_401_with_a_fresh_token_is_permanent_after_one_retry(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        fcm.reject_every_token = True
        result = await sender.send(android(), push_row(clock))
    assert result.outcome is PushOutcome.PERMANENT
    assert result.reason.startswith("FCM HTTP 401 UNAUTHENTICATED")
    assert (fcm.unauthorized, fcm.oauth.exchanges) == (2, 2)


async def test_a_third_party_auth_error_is_not_retried(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        fcm.script.append(
            fcm_error(401, "UNAUTHENTICATED", "APNs auth", error_code="THIRD_PARTY_AUTH_ERROR")
        )
        result = await sender.send(android(), push_row(clock))
    assert (result.outcome, fcm.attempts, fcm.oauth.exchanges) == (PushOutcome.PERMANENT, 1, 1)
    assert "THIRD_PARTY_AUTH_ERROR" in result.reason


async def test_an_unregistered_or_invalid_token_is_gone(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        fcm.gone.add("old-token")
        fcm.invalid.add("garbage")
        unregistered = await sender.send(android("old-token"), push_row(clock))
        invalid = await sender.send(android("garbage"), push_row(clock))
    assert unregistered.outcome is PushOutcome.GONE
    assert unregistered.reason == "FCM HTTP 404 UNREGISTERED: Requested entity was not found."
    assert invalid.outcome is PushOutcome.GONE
    assert invalid.reason.startswith("FCM HTTP 400 INVALID_ARGUMENT: The registration token")


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        # INVALID_ARGUMENT about the payload, not the token: the device stays.
        (fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload", error_code="INVALID_ARGUMENT"),
         PushOutcome.PERMANENT),
        (fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", error_code="SENDER_ID_MISMATCH"),
         PushOutcome.PERMANENT),
        (fcm_error(404, "NOT_FOUND", "Requested entity was not found."), PushOutcome.GONE),
        (fcm_error(500, "INTERNAL", "internal", error_code="INTERNAL"), PushOutcome.TRANSIENT),
        (fcm_error(503, "UNAVAILABLE", "overloaded", error_code="UNAVAILABLE"),
         PushOutcome.TRANSIENT),
    ],
)  # fmt: skip
async def test_answers_map_to_outcomes(
    tmp_path: Path, answer: tuple[int, dict[str, str], bytes], outcome: PushOutcome
) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        fcm.script.append(answer)
        result = await sender.send(android(), push_row(clock))
    assert result.outcome is outcome, result.reason
    assert result.reason.startswith(f"FCM HTTP {answer[0]} ")


@pytest.mark.parametrize(
    ("status", "canonical"), [(429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE")]
)
async def test_429_and_503_are_transient_after_their_retry_after(
    tmp_path: Path, status: int, canonical: str
) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        code = "QUOTA_EXCEEDED" if status == 429 else "UNAVAILABLE"
        fcm.script.append(fcm_error(status, canonical, "later", error_code=code, retry_after="7"))
        first = await sender.send(android(), push_row(clock))
        again = await sender.send(android(), push_row(clock))
    assert (first.outcome, first.retry_after_ms) == (PushOutcome.TRANSIENT, 7000)
    assert first.reason == f"FCM HTTP {status} {code}: later"
    assert again.outcome is PushOutcome.ACCEPTED


async def test_fcm_unreachable_is_transient(tmp_path: Path) -> None:
    clock = now_clock()
    async with google(clock, KEY) as other:
        closed = other.url  # nothing listens there once this block ends
    async with stack(tmp_path, clock, endpoint=closed) as (sender, fcm):
        result = await sender.send(android(), push_row(clock))
    assert fcm.oauth.exchanges == 1  # the token was bought; the send found no one
    assert result.outcome is PushOutcome.TRANSIENT
    assert result.reason == "FCM connection: ConnectError"


async def test_a_key_the_token_endpoint_does_not_know_is_permanent(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock, key=ServiceAccountKey.generate()) as (sender, fcm):
        result = await sender.send(android(), push_row(clock))
    assert result.outcome is PushOutcome.PERMANENT
    assert result.reason == "FCM OAuth token refused: HTTP 400 invalid_grant"
    assert fcm.oauth.refused == ["Invalid JWT: InvalidSignatureError"]
    assert fcm.attempts == 0


async def test_a_token_endpoint_outage_is_transient(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        fcm.oauth.script.append((503, {}, b"busy"))
        down = await sender.send(android(), push_row(clock))
        up = await sender.send(android(), push_row(clock))
    assert (down.outcome, down.reason) == (
        PushOutcome.TRANSIENT,
        "FCM OAuth token refused: HTTP 503",
    )
    assert up.outcome is PushOutcome.ACCEPTED


async def test_sends_waiting_for_a_token_share_one_failed_fetch(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        fcm.oauth.script.append((503, {}, b"busy"))
        results = await asyncio.gather(
            *(sender.send(android(f"t-{i}"), push_row(clock)) for i in range(8))
        )
        assert fcm.oauth.requests == 1
        assert {r.outcome for r in results} == {PushOutcome.TRANSIENT}
        # The next round tries again.
        assert (await sender.send(android(), push_row(clock))).outcome is PushOutcome.ACCEPTED
    assert fcm.oauth.requests == 2


async def test_an_expired_row_is_not_sent(tmp_path: Path) -> None:
    clock = now_clock()
    async with stack(tmp_path, clock) as (sender, fcm):
        row = push_row(clock, expires_at_ms=clock.now_ms())
        result = await sender.send(android(), row)
    assert (result.outcome, result.reason) == (PushOutcome.PERMANENT, "expired before it was sent")
    assert (fcm.attempts, fcm.oauth.exchanges) == (0, 0)


async def test_a_big_row_is_cut_to_fcms_payload_limit(tmp_path: Path) -> None:
    clock = now_clock()
    row = push_row(clock, data='{"blob": "' + "x" * 3000 + '"}')
    row.body = "é" * 3000
    async with stack(tmp_path, clock) as (sender, fcm):
        result = await sender.send(android(), row)
    assert result.outcome is PushOutcome.ACCEPTED, result.reason  # the server checks 4096 bytes
    (sent,) = fcm.messages
    assert "data" not in sent["data"]
    assert sent["data"]["id"] == row.id
    assert sent["notification"]["body"].endswith("…")
    assert len(sent["notification"]["body"]) > 1000


async def test_no_credential_in_reasons_logs_or_reprs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = now_clock()
    reasons: list[str] = []
    async with stack(tmp_path, clock) as (sender, fcm):
        reasons.append((await sender.send(android(), push_row(clock))).reason)
        fcm.revoke_all()
        reasons.append((await sender.send(android(), push_row(clock))).reason)
        fcm.reject_every_token = True
        reasons.append((await sender.send(android(), push_row(clock))).reason)
        shown = [repr(sender), repr(sender.tokens), repr(load_service_account(
            str(tmp_path / "service-account.json")))]  # fmt: skip
    secrets = [*fcm.oauth.issued, *KEY.private_pem.splitlines()[1:-1]]
    assert len(secrets) > 10
    text = "\n".join([caplog.text, *reasons, *shown])
    for secret in secrets:
        assert secret not in text


def test_unconfigured_is_none_and_incomplete_names_the_variable(tmp_path: Path) -> None:
    clock = ManualClock()
    assert fcm_sender(Config(), clock) is None
    with pytest.raises(ConfigError, match=r"^NOTIFY_FCM_CREDENTIALS_FILE: required when"):
        fcm_sender(Config(fcm_endpoint="http://127.0.0.1:1"), clock)
    with pytest.raises(ConfigError, match=r"^NOTIFY_FCM_ENDPOINT: "):
        load_config({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_FCM_ENDPOINT": "http://fcm.example"})

    def refused(path: Path) -> str:
        with pytest.raises(ConfigError) as caught:
            fcm_sender(Config(fcm_credentials_file=str(path)), clock)
        message = str(caught.value)
        assert message.startswith("NOTIFY_FCM_CREDENTIALS_FILE: ")
        assert "\n" not in message
        assert "PRIVATE KEY" not in message
        return message

    uri = "https://oauth2.googleapis.com/token"
    assert "cannot read" in refused(tmp_path / "absent.json")
    (tmp_path / "text.json").write_text("not json")
    assert "is not JSON" in refused(tmp_path / "text.json")
    assert "has no private_key" in refused(KEY.write(tmp_path / "a.json", uri, private_key=None))
    assert "has no project_id, token_uri" in refused(
        KEY.write(tmp_path / "b.json", "", project_id="")
    )
    assert "not a PEM private key" in refused(
        KEY.write(tmp_path / "c.json", uri, private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n")
    )
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    assert "not an RSA key" in refused(KEY.write(tmp_path / "f.json", uri, private_key=ec_pem))
    assert "token_uri must be https://" in refused(
        KEY.write(tmp_path / "d.json", "http://oauth.example/token")
    )
    built = fcm_sender(Config(fcm_credentials_file=str(KEY.write(tmp_path / "e.json", uri))), clock)
    assert isinstance(built, FcmSender)
    asyncio.run(built.close())
