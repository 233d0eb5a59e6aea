"""VAPID keys in every form operators bring, the signed header and its cache, the
``notifyd vapid-keys`` command, and the configuration that turns web push on."""

from __future__ import annotations

import base64

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.__main__ import main
from notify.config import Config, ConfigError, load_config
from notify.core.clock import ManualClock
from notify.core.subscription import b64url_decode
from notify.core.vapidkeys import (
    VapidKeyError,
    check_subject,
    generate_private_key,
    load_private_key,
    private_key_b64url,
    public_key_b64url,
)
from notify.delivery.vapid import VapidSigner
from notify.delivery.webpush import webpush_sender
from notify.store.conformance import make_row

KEY = generate_private_key()
RAW = private_key_b64url(KEY)


def _same(key: ec.EllipticCurvePrivateKey) -> bool:
    return key.private_numbers().private_value == KEY.private_numbers().private_value


@pytest.mark.parametrize(
    "text",
    [
        RAW,
        f"  {RAW}\n",
        KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # "EC PRIVATE KEY" (openssl ecparam)
            serialization.NoEncryption(),
        ).decode(),
        base64.urlsafe_b64encode(
            KEY.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ).decode(),
    ],
)
def test_keys_load_from_pem_raw_and_der(text: str) -> None:
    assert _same(load_private_key(text))


def test_bad_keys_are_refused_without_showing_them() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for text, message in [
        ("not-a-key-at-all", "is not a P-256 private key"),
        (RAW[:-4], "is not a P-256 private key"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "not a P-256"),
        (p384.decode(), "must be an EC P-256"),
    ]:
        with pytest.raises(VapidKeyError, match=message) as caught:
            load_private_key(text)
        assert text not in str(caught.value)
    with pytest.raises(ConfigError) as config_error:
        load_config({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY": RAW[:-4]})
    assert str(config_error.value).startswith("NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY: ")
    assert RAW[:-4] not in str(config_error.value)


def test_the_public_key_is_the_applicationserverkey() -> None:
    public = b64url_decode(public_key_b64url(KEY))
    assert len(public) == 65
    assert public[0] == 4
    assert ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public) == KEY.public_key()


def test_subjects() -> None:
    assert check_subject(" mailto:ops@example.com ") == "mailto:ops@example.com"
    assert check_subject("https://example.com/contact") == "https://example.com/contact"
    for bad in ("ops@example.com", "http://example.com", "mailto:nobody", ""):
        with pytest.raises(ValueError, match="mailto"):
            check_subject(bad)


def _claims(header: str) -> tuple[dict[str, object], str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "vapid"
    parts = dict(p.split("=", 1) for p in rest.split(","))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(parts["k"]))
    claims = jwt.decode(
        parts["t"], public, algorithms=["ES256"], audience="https://push.example.net",
        options={"verify_exp": False},
    )  # fmt: skip
    return claims, parts["k"]


def test_the_header_is_signed_cached_per_origin_and_renewed_at_half_life() -> None:
    clock = ManualClock(1_700_000_000_000)
    signer = VapidSigner(KEY, "mailto:ops@example.com", clock)
    first = signer.authorization("https://push.example.net")
    claims, k = _claims(first)
    assert claims == {
        "aud": "https://push.example.net",
        "sub": "mailto:ops@example.com",
        "exp": 1_700_000_000 + 12 * 3600,
    }
    assert k == public_key_b64url(KEY) == signer.public_key
    assert signer.authorization("https://other.example.org") != first
    clock.advance(6 * 3600 - 1)
    assert signer.authorization("https://push.example.net") == first
    clock.advance(2)
    renewed = signer.authorization("https://push.example.net")
    assert renewed != first
    assert _claims(renewed)[0]["exp"] == 1_700_000_000 + 18 * 3600 + 1


def test_vapid_keys_prints_a_new_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vapid-keys"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines() if "=" in line)
    key = load_private_key(lines["NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY"])
    assert lines["VAPID_PUBLIC_KEY"] == public_key_b64url(key)
    assert main(["vapid-keys"]) == 0
    assert lines["VAPID_PUBLIC_KEY"] not in capsys.readouterr().out  # a new pair each time


def test_vapid_keys_public_of_the_configured_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY", RAW)
    assert main(["vapid-keys", "--public"]) == 0
    assert capsys.readouterr().out == public_key_b64url(KEY) + "\n"
    monkeypatch.setenv("NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY", "garbage")
    assert main(["vapid-keys", "--public"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("notifyd: configuration error: NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY: ")
    assert "garbage" not in err
    monkeypatch.delenv("NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY")
    assert main(["vapid-keys", "--public"]) == 2
    assert main(["vapid-keys", "--nope"]) == 2


def test_web_push_is_on_only_when_configured_and_refuses_half_a_configuration() -> None:
    clock = ManualClock()
    assert webpush_sender(Config(), clock) is None
    with pytest.raises(ConfigError, match=r"^NOTIFY_WEBPUSH_SUBJECT: required"):
        webpush_sender(Config(webpush_vapid_private_key=RAW), clock)
    with pytest.raises(ConfigError, match=r"^NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY: required"):
        webpush_sender(Config(webpush_subject="mailto:ops@example.com"), clock)
    config = load_config(
        {
            "NOTIFY_AUTH_DEV_MODE": "true",
            "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY": RAW,
            "NOTIFY_WEBPUSH_SUBJECT": "mailto:ops@example.com",
            "NOTIFY_WEBPUSH_TTL": "1h",
        }
    )
    sender = webpush_sender(config, clock)
    assert sender is not None
    assert sender.public_key == public_key_b64url(KEY)
    assert sender.ttl(make_row(0)) == 3600
    with pytest.raises(ConfigError, match=r"^NOTIFY_WEBPUSH_TTL: must be at most 28 days"):
        load_config({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_WEBPUSH_TTL": "700h"})
    with pytest.raises(ConfigError, match=r"^NOTIFY_WEBPUSH_SUBJECT: "):
        load_config({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_WEBPUSH_SUBJECT": "ops@example.com"})
