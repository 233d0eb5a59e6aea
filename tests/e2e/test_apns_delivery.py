"""The APNs sender against a local APNs (tests/apns_support.py): HTTP/2 over TLS with a
test CA, verifying the ES256 provider token against the test key and every header, on
real sockets. Success, each "token gone" answer, transient answers with Retry-After, a
provider token APNs calls expired (renewed and retried), renewal every 50 minutes of the
injected clock, payloads cut to 4 KiB, and no credential in any reason or log line."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from notify.config import load_config
from notify.core.clock import ManualClock
from notify.core.model import Action, Channel, Device, DeviceType, Notification, Severity
from notify.core.ports import PushOutcome, PushResult
from notify.delivery.apns import ApnsSender, apns_sender
from notify.delivery.apns_payload import message_id
from notify.store.conformance import make_row
from tests.apns_support import (
    KEY_ID,
    TEAM_ID,
    TOPIC,
    Answer,
    ApnsServer,
    ApnsTls,
    apns_server,
    make_p8,
    make_tls,
)

DEVICE_TOKEN = "a1" * 32
OTHER_TOKEN = "b2" * 32


@pytest.fixture(name="tls")
def tls_fixture(tmp_path: Path) -> ApnsTls:
    return make_tls(tmp_path)


@pytest.fixture(name="p8")
def p8_fixture(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    return make_p8(tmp_path)


@pytest.fixture(name="clock")
def clock_fixture() -> ManualClock:
    return ManualClock()


@pytest.fixture(name="server")
async def server_fixture(
    tls: ApnsTls, p8: tuple[Path, ec.EllipticCurvePrivateKey], clock: ManualClock
) -> AsyncIterator[ApnsServer]:
    app = ApnsServer(p8[1].public_key(), lambda: clock.now_ms() / 1000)
    async with apns_server(app, tls) as running:
        yield running


def environment(
    server: ApnsServer, tls: ApnsTls, p8: tuple[Path, Any], **extra: str
) -> dict[str, str]:
    return {
        "NOTIFY_AUTH_DEV_MODE": "true",
        "NOTIFY_APNS_KEY_FILE": str(p8[0]),
        "NOTIFY_APNS_KEY_ID": KEY_ID,
        "NOTIFY_APNS_TEAM_ID": TEAM_ID,
        "NOTIFY_APNS_TOPIC": TOPIC,
        "NOTIFY_APNS_ENVIRONMENT": "sandbox",
        "NOTIFY_APNS_ENDPOINT": f"https://127.0.0.1:{server.port}",
        "NOTIFY_APNS_CA_FILE": str(tls.ca_file),
        **extra,
    }


@pytest.fixture(name="sender")
async def sender_fixture(
    server: ApnsServer, tls: ApnsTls, p8: tuple[Path, Any], clock: ManualClock
) -> AsyncIterator[ApnsSender]:
    built = apns_sender(load_config(environment(server, tls, p8)), clock)
    assert built is not None
    try:
        yield built
    finally:
        await built.close()


def ios(token: str = DEVICE_TOKEN) -> Device:
    return Device(
        tenant_id="t1", user_id="u1", device_type=DeviceType.IOS, token=token, updated_at_ms=1
    )


def row(
    clock: ManualClock,
    *,
    title: str = "Deploy failed",
    body: str = "api@1.4.2 failed its health check",
    **fields: Any,
) -> Notification:
    made = make_row(0, channel=Channel.MOBILE_PUSH, created_at_ms=clock.now_ms(), **fields)
    made.title, made.body = title, body
    return made


async def send_once(env: dict[str, str], clock: ManualClock) -> PushResult:
    """One push to ``ios()`` by a sender made from ``env``, closed afterwards."""
    sender = apns_sender(load_config(env), clock)
    assert sender is not None
    try:
        return await sender.send(ios(), row(clock))
    finally:
        await sender.close()


async def test_a_push_arrives_over_http2_signed_with_every_header_and_the_payload(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    expires_ms = clock.now_ms() + 3_600_500
    pushed = row(
        clock,
        severity=Severity.ERROR,
        category="deploys",
        text="deploy:91",
        collapse_key="deploy:api",
        expires_at_ms=expires_ms,
        image_url="https://cdn.example/graph.png",
        data='{"deploy": 91}',
        actions=(
            Action("ack", "Acknowledge", "/deploys/91/ack"),
            Action("logs", "Open logs", "https://app.example/deploys/91/logs", primary=True),
        ),
    )
    result = await sender.send(ios(), pushed)

    assert result.outcome is PushOutcome.ACCEPTED, result
    (seen,) = server.seen
    assert (seen.status, seen.http_version, seen.device_token) == (200, "2", DEVICE_TOKEN)
    assert result.provider_message_id == message_id(pushed.id, DEVICE_TOKEN)
    assert seen.headers["apns-id"] == result.provider_message_id
    assert seen.headers["apns-topic"] == TOPIC
    assert seen.headers["apns-push-type"] == "alert"
    assert seen.headers["apns-priority"] == "10"
    assert seen.headers["apns-expiration"] == str(math.ceil(expires_ms / 1000))
    assert seen.headers["apns-collapse-id"] == "deploy:api"
    assert seen.token_header == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    assert seen.claims == {"iss": TEAM_ID, "iat": clock.now_ms() // 1000}
    assert seen.payload == {
        "aps": {
            "alert": {"title": "Deploy failed", "body": "api@1.4.2 failed its health check"},
            "category": "deploys",
            "thread-id": "deploy:91",
            "mutable-content": 1,
        },
        "id": pushed.id,
        "notification_id": pushed.notification_id,
        "url": "https://app.example/deploys/91/logs",
        "image": "https://cdn.example/graph.png",
        "data": {"deploy": 91},
    }


async def test_low_severity_waits_for_power_and_a_row_that_never_expires_is_kept_by_apns(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    for severity in (Severity.INFO, Severity.SUCCESS, Severity.UNSPECIFIED, Severity.WARNING):
        result = await sender.send(ios(), row(clock, severity=severity))
        assert result.outcome is PushOutcome.ACCEPTED
    assert [s.headers["apns-priority"] for s in server.seen] == ["5", "5", "10", "10"]
    for seen in server.seen:
        assert "apns-expiration" not in seen.headers
        assert "apns-collapse-id" not in seen.headers
        assert seen.payload == {
            "aps": {
                "alert": {"title": "Deploy failed", "body": "api@1.4.2 failed its health check"}
            },
            "id": seen.payload["id"],
            "notification_id": "n-0",
        }


async def test_a_collapse_key_longer_than_64_bytes_is_sent_as_its_hash(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    key = "comments:" + "é" * 40  # 89 bytes
    first = await sender.send(ios(), row(clock, collapse_key=key))
    again = await sender.send(ios(), row(clock, collapse_key=key))
    other = await sender.send(ios(), row(clock, collapse_key=key + "!"))
    assert {first.outcome, again.outcome, other.outcome} == {PushOutcome.ACCEPTED}
    ids = [s.headers["apns-collapse-id"] for s in server.seen]
    assert len(ids[0]) == 64
    assert ids[0] == ids[1] != ids[2]


async def test_every_push_shares_one_connection_and_a_retry_reuses_its_apns_id(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    pushed = row(clock)
    server.answer_next(DEVICE_TOKEN, Answer(503, "ServiceUnavailable"))
    assert (await sender.send(ios(), pushed)).outcome is PushOutcome.TRANSIENT
    assert (await sender.send(ios(), pushed)).outcome is PushOutcome.ACCEPTED
    assert (await sender.send(ios(OTHER_TOKEN), pushed)).outcome is PushOutcome.ACCEPTED
    assert len({s.client for s in server.seen}) == 1
    first, retry, other = (s.headers["apns-id"] for s in server.seen)
    assert first == retry == message_id(pushed.id, DEVICE_TOKEN)
    assert other == message_id(pushed.id, OTHER_TOKEN) != first


async def test_fifty_pushes_at_once_share_the_one_connection(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    assert (await sender.send(ios(), row(clock))).outcome is PushOutcome.ACCEPTED
    tokens = [f"{i:064x}" for i in range(50)]
    results = await asyncio.gather(*(sender.send(ios(t), row(clock)) for t in tokens))
    assert [r.outcome for r in results] == [PushOutcome.ACCEPTED] * 50
    assert sorted(s.device_token for s in server.seen[1:]) == sorted(tokens)
    assert len({s.client for s in server.seen}) == 1


async def test_a_row_past_its_expiry_is_not_sent(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    pushed = row(clock, expires_at_ms=clock.now_ms() + 1000)
    clock.advance(1)
    result = await sender.send(ios(), pushed)
    assert (result.outcome, result.reason) == (PushOutcome.PERMANENT, "expired before APNs took it")
    assert server.seen == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (410, "Unregistered"),
        (410, "ExpiredToken"),
        (400, "BadDeviceToken"),
        (400, "DeviceTokenNotForTopic"),
        (400, "Unregistered"),
    ],
)
async def test_a_token_apns_no_longer_knows_is_gone(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock, status: int, reason: str
) -> None:
    server.answer_next(DEVICE_TOKEN, Answer(status, reason))
    result = await sender.send(ios(), row(clock))
    assert result.outcome is PushOutcome.GONE
    assert result.reason == f"APNs {status} {reason}"
    assert len(server.seen) == 1  # answered once, not retried


async def test_a_token_that_is_not_hex_is_gone_without_a_request(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    for token in ("fcm:token-from-an-android-phone", "a1" * 32 + "/../../x", ""):
        result = await sender.send(ios(token), row(clock))
        assert result.outcome is PushOutcome.GONE
        assert result.reason == "not an APNs device token (hex)"
    assert server.seen == []


@pytest.mark.parametrize(
    ("answer", "retry_after_ms"),
    [
        (Answer(429, "TooManyRequests", {"retry-after": "30"}), 30_000),
        (Answer(500, "InternalServerError"), 0),
        (Answer(503, "ServiceUnavailable", {"retry-after": "120"}), 120_000),
        (Answer(429, "TooManyProviderTokenUpdates"), 0),
    ],
)
async def test_throttling_and_server_errors_are_transient_with_retry_after(
    sender: ApnsSender,
    server: ApnsServer,
    clock: ManualClock,
    answer: Answer,
    retry_after_ms: int,
) -> None:
    server.answer_next(DEVICE_TOKEN, answer)
    pushed = row(clock)
    result = await sender.send(ios(), pushed)
    assert result.outcome is PushOutcome.TRANSIENT
    assert result.reason == f"APNs {answer.status} {answer.reason}"
    assert result.retry_after_ms == retry_after_ms
    # The retry the pipeline schedules goes through.
    assert (await sender.send(ios(), pushed)).outcome is PushOutcome.ACCEPTED


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(403, "InvalidProviderToken"), "APNs 403 InvalidProviderToken"),
        (Answer(413, "PayloadTooLarge"), "APNs 413 PayloadTooLarge"),
        (Answer(400, "BadTopic"), "APNs 400 BadTopic"),
        (Answer(400, "not <a> reason word"), "APNs 400"),
        (Answer(404, ""), "APNs 404"),
    ],
)
async def test_other_refusals_are_permanent_with_apns_reason_word(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock, answer: Answer, reason: str
) -> None:
    server.answer_next(DEVICE_TOKEN, answer)
    result = await sender.send(ios(), row(clock))
    assert (result.outcome, result.reason) == (PushOutcome.PERMANENT, reason)
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("key", "APNs 403 InvalidProviderToken"),
        ("NOTIFY_APNS_KEY_ID", "APNs 403 InvalidProviderToken"),
        ("NOTIFY_APNS_TEAM_ID", "APNs 403 InvalidProviderToken"),
        ("NOTIFY_APNS_TOPIC", "APNs 400 BadTopic"),
    ],
)
async def test_the_server_refuses_a_token_or_topic_that_is_not_the_apps(
    server: ApnsServer,
    tls: ApnsTls,
    p8: tuple[Path, Any],
    clock: ManualClock,
    tmp_path: Path,
    override: str,
    reason: str,
) -> None:
    """The local APNs really verifies: another key, key id, team or topic is refused."""
    if override == "key":
        (tmp_path / "other").mkdir()
        env = environment(server, tls, make_p8(tmp_path / "other"))
    else:
        env = environment(server, tls, p8, **{override: "ZZZZZZZZZZ"})
    result = await send_once(env, clock)
    assert (result.outcome, result.reason) == (PushOutcome.PERMANENT, reason)
    assert server.accepted() == []


async def test_an_expired_provider_token_is_renewed_once_and_the_push_retried(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    server.enforce_refresh_interval = False  # APNs itself asked for the new token
    server.answer_next(DEVICE_TOKEN, Answer(403, "ExpiredProviderToken"))
    pushed = row(clock)
    result = await sender.send(ios(), pushed)

    assert result.outcome is PushOutcome.ACCEPTED
    expired, retried = server.seen
    assert (expired.status, retried.status) == (403, 200)
    assert expired.token != retried.token
    assert retried.claims == {"iss": TEAM_ID, "iat": clock.now_ms() // 1000}
    assert expired.headers["apns-id"] == retried.headers["apns-id"] == result.provider_message_id
    # Later pushes carry the new token.
    assert (await sender.send(ios(), row(clock))).outcome is PushOutcome.ACCEPTED
    assert server.seen[-1].token == retried.token


async def test_a_token_still_called_expired_is_transient_and_renewed_at_most_once_a_minute(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    server.enforce_refresh_interval = False
    expired = Answer(403, "ExpiredProviderToken")
    server.answer_next(DEVICE_TOKEN, expired, expired)
    result = await sender.send(ios(), row(clock))
    assert result.outcome is PushOutcome.TRANSIENT
    assert result.reason == "APNs 403 ExpiredProviderToken after a new token"
    assert len({s.token for s in server.seen}) == 2

    clock.advance(30)  # the clocks still disagree: no new token within the minute
    server.answer_next(DEVICE_TOKEN, expired, expired)
    assert (await sender.send(ios(), row(clock))).outcome is PushOutcome.TRANSIENT
    assert len(server.seen) == 4
    assert len({s.token for s in server.seen}) == 2

    clock.advance(31)
    server.answer_next(DEVICE_TOKEN, expired)
    assert (await sender.send(ios(), row(clock))).outcome is PushOutcome.ACCEPTED
    assert len({s.token for s in server.seen}) == 3


async def test_the_provider_token_is_replaced_every_50_minutes_of_the_injected_clock(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    start_s = clock.now_ms() // 1000
    assert (await sender.send(ios(), row(clock))).outcome is PushOutcome.ACCEPTED
    clock.advance(50 * 60 - 1)
    assert (await sender.send(ios(), row(clock))).outcome is PushOutcome.ACCEPTED
    clock.advance(1)
    assert (await sender.send(ios(), row(clock))).outcome is PushOutcome.ACCEPTED
    assert [s.claims["iat"] - start_s for s in server.seen] == [0, 0, 50 * 60]

    # Three hours of pushes every five minutes: the server refuses tokens older than an
    # hour and tokens replaced sooner than 20 minutes; every push is accepted.
    for _ in range(36):
        clock.advance(5 * 60)
        result = await sender.send(ios(), row(clock))
        assert result.outcome is PushOutcome.ACCEPTED, result
    issued = sorted({s.claims["iat"] for s in server.seen})
    assert len(issued) == 5
    assert all(b - a == 50 * 60 for a, b in itertools.pairwise(issued))


async def test_a_body_too_long_for_4_kib_is_cut_to_fit(
    sender: ApnsSender, server: ApnsServer, clock: ManualClock
) -> None:
    body = 'Quoted "lines"\nwith é, 漢字 and 🚀 ' * 400  # ~14 KB of JSON
    pushed = row(clock, body=body, data='{"big": "' + "x" * 3000 + '"}')
    result = await sender.send(ios(), pushed)
    assert result.outcome is PushOutcome.ACCEPTED, result  # the server refuses > 4096 bytes
    (seen,) = server.seen
    assert 4096 - 8 <= len(seen.body) <= 4096
    sent = seen.payload["aps"]["alert"]["body"]
    assert sent.endswith("…")
    assert body.startswith(sent[:-1])
    assert seen.payload["aps"]["alert"]["title"] == "Deploy failed"
    assert "data" not in seen.payload


async def test_a_connection_apns_closes_under_a_push_is_replaced_and_the_push_retried_once(
    tls: ApnsTls, p8: tuple[Path, Any], clock: ManualClock
) -> None:
    app = ApnsServer(p8[1].public_key(), lambda: clock.now_ms() / 1000)
    # Every third request on a connection finds it closing (GOAWAY, the request cut).
    async with apns_server(app, tls, max_requests=2):
        sender = apns_sender(load_config(environment(app, tls, p8)), clock)
        assert sender is not None
        try:
            results = [await sender.send(ios(), row(clock)) for _ in range(6)]
        finally:
            await sender.close()
    assert [r.outcome for r in results] == [PushOutcome.ACCEPTED] * 6
    assert len(app.accepted()) == 6
    assert len({s.client for s in app.seen}) == 3


async def test_a_connection_cut_twice_is_transient(
    tls: ApnsTls, p8: tuple[Path, Any], clock: ManualClock, server: ApnsServer
) -> None:
    """A TLS server that takes each request and hangs up: one retry, then TRANSIENT."""
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(65536)  # the preface, settings and the request
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    context.set_alpn_protocols(["h2"])
    cutter = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=context)
    port = cutter.sockets[0].getsockname()[1]
    env = environment(server, tls, p8, NOTIFY_APNS_ENDPOINT=f"https://127.0.0.1:{port}")
    try:
        result = await send_once(env, clock)
    finally:
        cutter.close()
        await cutter.wait_closed()
    assert result.outcome is PushOutcome.TRANSIENT
    assert result.reason.startswith("APNs connection: ")
    assert DEVICE_TOKEN not in result.reason
    assert connections == 2


async def test_an_unreachable_apns_is_transient(
    tls: ApnsTls, p8: tuple[Path, Any], clock: ManualClock, server: ApnsServer
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env = environment(server, tls, p8, NOTIFY_APNS_ENDPOINT=f"https://127.0.0.1:{closed_port}")
    result = await send_once(env, clock)
    assert (result.outcome, result.reason) == (
        PushOutcome.TRANSIENT,
        "APNs connection: ConnectError",
    )


async def test_a_server_whose_certificate_is_not_trusted_is_not_sent_to(
    tls: ApnsTls, p8: tuple[Path, Any], clock: ManualClock, server: ApnsServer
) -> None:
    env = environment(server, tls, p8)
    del env["NOTIFY_APNS_CA_FILE"]  # the public CAs never signed the test server
    result = await send_once(env, clock)
    assert result.outcome is PushOutcome.TRANSIENT
    assert result.reason == "APNs connection: TLS certificate not trusted"
    assert server.seen == []


async def test_the_sender_speaks_http2_even_when_alpn_offers_it_http_1_1(
    tls: ApnsTls, p8: tuple[Path, Any], clock: ManualClock
) -> None:
    """APNs is HTTP/2 only: the client never falls back to HTTP/1.1 (the server here
    would serve either, and takes HTTP/2 with prior knowledge)."""
    app = ApnsServer(p8[1].public_key(), lambda: clock.now_ms() / 1000)
    async with apns_server(app, tls, alpn=("http/1.1",)):
        result = await send_once(environment(app, tls, p8), clock)
    assert result.outcome is PushOutcome.ACCEPTED
    assert [s.http_version for s in app.seen] == ["2"]


async def test_no_credential_appears_in_a_reason_a_repr_or_a_log_line(
    server: ApnsServer,
    tls: ApnsTls,
    p8: tuple[Path, ec.EllipticCurvePrivateKey],
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.enforce_refresh_interval = False
    sender = apns_sender(load_config(environment(server, tls, p8)), clock)
    assert sender is not None
    answers = [
        Answer(403, "ExpiredProviderToken"),
        Answer(403, "InvalidProviderToken"),
        Answer(410, "Unregistered"),
        Answer(429, "TooManyRequests", {"retry-after": "1"}),
        Answer(400, "BadDeviceToken"),
    ]
    reasons = []
    try:
        for answer in answers:
            server.answer_next(DEVICE_TOKEN, answer)
            reasons.append((await sender.send(ios(), row(clock))).reason)
            clock.advance(50 * 60)
        shown = repr(sender)
    finally:
        await sender.close()

    tokens = {s.token for s in server.seen}
    assert len(tokens) >= 5  # renewed on expiry and by age: several tokens to look for
    key_text = p8[0].read_text()
    secrets = [*tokens, *(t.split(".")[2] for t in tokens), DEVICE_TOKEN]
    secrets += [line for line in key_text.splitlines() if "-----" not in line]
    logged = caplog.text + "".join(
        orjson.dumps(r.__dict__, default=str).decode() for r in caplog.records
    )
    assert "APNs provider token issued" in caplog.text  # the log was captured at DEBUG
    for secret in secrets:
        assert secret not in logged
        assert secret not in shown
        assert all(secret not in reason for reason in reasons)
