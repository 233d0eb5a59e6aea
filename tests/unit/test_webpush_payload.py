"""What the service worker receives: the documented JSON, cut to fit one 4 KiB push, and
encrypted so that only the subscription's keys open it."""

from __future__ import annotations

import json
import os

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.core.model import Action, Channel, Severity
from notify.delivery.webpush import MAX_PLAINTEXT_BYTES, MAX_PUSH_BYTES, encrypt, payload
from notify.store.conformance import make_row

BROWSER = ec.generate_private_key(ec.SECP256R1())
P256DH = BROWSER.public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
)
AUTH = os.urandom(16)


def decrypt(body: bytes) -> bytes:
    return bytes(http_ece.decrypt(body, private_key=BROWSER, auth_secret=AUTH, version="aes128gcm"))


def test_without_a_primary_action_the_url_is_empty_and_severity_blank() -> None:
    row = make_row(0, channel=Channel.WEB_PUSH)
    row.actions = (Action("a", "Look", "/x"),)
    row.tags = ("api", "prod")
    row.image_url = "https://cdn.example.com/i.png"
    document = json.loads(payload(row))
    assert document["url"] == ""
    assert document["severity"] == ""
    assert document["tags"] == ["api", "prod"]
    assert document["image"] == "https://cdn.example.com/i.png"
    assert document["actions"] == [{"id": "a", "label": "Look", "url": "/x"}]


@pytest.mark.parametrize("char", ["a", "é", "🔔", "\u0001"])
def test_a_long_body_is_cut_to_fit_one_push_and_still_decrypts(char: str) -> None:
    row = make_row(0, channel=Channel.WEB_PUSH)
    row.title, row.body = "Deploy failed", char * 20_000
    row.severity = Severity.WARNING
    row.actions = tuple(Action(f"a{i}", "L" * 100, "/" + "u" * 500) for i in range(5))
    row.image_url = "https://cdn.example.com/" + "i" * 1500
    plain = payload(row)
    assert len(plain) <= MAX_PLAINTEXT_BYTES
    document = json.loads(plain)
    assert document["title"] == "Deploy failed"
    assert document["body"].endswith("…")
    assert len(document["body"]) > 100  # cut, not emptied
    assert document["image"] == ""
    assert document["actions"] == []
    body = encrypt(plain, P256DH, AUTH)
    assert len(body) <= MAX_PUSH_BYTES
    assert decrypt(body) == plain


def test_a_payload_that_fits_is_kept_whole() -> None:
    row = make_row(0, channel=Channel.WEB_PUSH)
    row.body = "b" * 2000
    row.actions = (Action("a", "Look", "/x", primary=True),)
    document = json.loads(payload(row))
    assert document["body"] == "b" * 2000
    assert document["url"] == "/x"


def test_the_largest_payload_encrypts_to_exactly_one_push() -> None:
    plain = b"x" * MAX_PLAINTEXT_BYTES
    assert len(encrypt(plain, P256DH, AUTH)) == MAX_PUSH_BYTES


def test_every_push_has_its_own_key_and_salt() -> None:
    first, second = encrypt(b"same", P256DH, AUTH), encrypt(b"same", P256DH, AUTH)
    assert first != second
    assert first[:16] != second[:16]  # the salt
    assert decrypt(first) == decrypt(second) == b"same"
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Exception):  # noqa: B017, PT011  (anything but a plaintext)
        http_ece.decrypt(first, private_key=other, auth_secret=AUTH, version="aes128gcm")
