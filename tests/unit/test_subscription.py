"""RegisterPushToken's browser tokens: the PushSubscription JSON, validated and canonical."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.core.commands import build_device
from notify.core.errors import InvalidArgument
from notify.core.model import DeviceType
from notify.core.subscription import b64url, parse_subscription

KEY = ec.generate_private_key(ec.SECP256R1()).public_key()
P256DH = KEY.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
AUTH = os.urandom(16)
ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc:def"


def sub(**changes: Any) -> str:
    document: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "expirationTime": None,
        "keys": {"p256dh": b64url(P256DH), "auth": b64url(AUTH)},
    }
    keys = changes.pop("keys", {})
    document.update(changes)
    document["keys"].update(keys)
    return json.dumps(document)


def test_a_browser_subscription_parses() -> None:
    parsed = parse_subscription(sub())
    assert (parsed.endpoint, parsed.p256dh, parsed.auth) == (ENDPOINT, P256DH, AUTH)
    assert parsed.origin == "https://fcm.googleapis.com"


def test_the_token_is_canonical_so_registering_again_is_the_same_device() -> None:
    padded = base64.urlsafe_b64encode(P256DH).decode()  # with "=" padding
    variants = [sub(), sub(expirationTime=123), sub(keys={"p256dh": padded})]
    tokens = {
        build_device(tenant_id="t", user_id="u", device_type=1, token=v, now_ms=1).token
        for v in variants
    }
    assert tokens == {
        json.dumps(
            {"endpoint": ENDPOINT, "keys": {"p256dh": b64url(P256DH), "auth": b64url(AUTH)}},
            separators=(",", ":"),
        )
    }


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not json", "PushSubscription's JSON"),
        ("[1, 2]", "JSON object"),
        (sub(endpoint=""), "needs an endpoint"),
        (sub(endpoint=42), "needs an endpoint"),
        (sub(endpoint="http://push.example.com/x"), "must be https://"),
        (sub(endpoint="http://127.0.0.1:9/x"), "must be https://"),  # not without the switch
        (sub(endpoint="ftp://push.example.com/x"), "must be https://"),
        (sub(endpoint="https://user:pw@push.example.com/x"), "without user or password"),
        (sub(endpoint="https:///nohost"), "without user or password"),
        (sub(endpoint="https://push.example.com:99999/x"), "not a URL"),
        (sub(endpoint="https://p.example/" + "x" * 2100), "longer than"),
        (json.dumps({"endpoint": ENDPOINT}), "keys.p256dh and keys.auth are required"),
        (sub(keys={"p256dh": "!!!"}), "keys.p256dh"),
        (sub(keys={"p256dh": b64url(b"\x04" + b"\x01" * 64)}), "keys.p256dh"),  # not on curve
        (sub(keys={"p256dh": b64url(P256DH[:33])}), "keys.p256dh"),
        (sub(keys={"p256dh": None}), "keys.p256dh"),
        (sub(keys={"auth": b64url(b"short")}), "keys.auth must be 16 bytes"),
        (sub(keys={"auth": "a+b/"}), "keys.auth must be base64url"),
    ],
)
def test_bad_subscriptions_are_invalid_argument(token: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^token: ") as caught:
        build_device(tenant_id="t", user_id="u", device_type=1, token=token, now_ms=1)
    assert message in caught.value.message


def test_compressed_p256dh_is_refused() -> None:
    compressed = KEY.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    with pytest.raises(InvalidArgument, match="uncompressed"):
        parse_subscription(sub(keys={"p256dh": b64url(compressed)}))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.5.6.7"])
def test_http_only_to_loopback_and_only_when_allowed(host: str) -> None:
    token = sub(endpoint=f"http://{host}:8443/push/1")
    assert parse_subscription(token, allow_insecure=True).endpoint.startswith("http://")
    with pytest.raises(InvalidArgument):
        parse_subscription(token)
    with pytest.raises(InvalidArgument, match="must be https://"):
        parse_subscription(sub(endpoint="http://10.0.0.1/push"), allow_insecure=True)


def test_phone_tokens_are_kept_as_given() -> None:
    for kind in (DeviceType.ANDROID, DeviceType.IOS):
        device = build_device(
            tenant_id="t", user_id="u", device_type=int(kind), token="tok-1", now_ms=5
        )
        assert (device.device_type, device.token, device.updated_at_ms) == (kind, "tok-1", 5)
