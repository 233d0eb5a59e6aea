"""VAPID key material (RFC 8292): reading, checking and making the server's P-256 key.

Pure computation, no I/O, so the configuration can check
``NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY`` and ``NOTIFY_WEBPUSH_SUBJECT`` at load
without importing a provider. The private key comes as PEM (PKCS#8 or SEC 1)
or base64url (the raw 32-byte scalar that ``notifyd vapid-keys`` and most Web
Push tools print, or DER); browsers subscribe with the public key as
``applicationServerKey`` (the uncompressed point, base64url). Nothing here
ever puts the private key in a message or an exception.
"""

from __future__ import annotations

import binascii
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.core.subscription import b64url, b64url_decode

_SUBJECT = re.compile(r"(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)", re.IGNORECASE)


class VapidKeyError(ValueError):
    """The key text is not a P-256 private key; the message never includes it."""


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """PEM, or base64url of the raw 32-byte scalar or of DER."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, binascii.Error):
        raise VapidKeyError(
            "is not a P-256 private key (PEM or base64url; notifyd vapid-keys makes one)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VapidKeyError("must be an EC P-256 (prime256v1) private key")
    return key


def check_subject(subject: str) -> str:
    subject = subject.strip()
    if not _SUBJECT.fullmatch(subject):
        raise ValueError(f"{subject[:100]!r} is not a mailto: address or an https: URL")
    return subject


def public_key_b64url(key: ec.EllipticCurvePrivateKey) -> str:
    """The ``applicationServerKey`` browsers subscribe with."""
    return b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def private_key_b64url(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())
