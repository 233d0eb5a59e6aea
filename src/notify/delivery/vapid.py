"""VAPID (RFC 8292): the server's P-256 key pair, and the signed header every push carries.

The private key comes from ``NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY`` as PEM (PKCS#8
or SEC 1) or base64url (the raw 32-byte scalar that ``notifyd vapid-keys``
and most Web Push tools print, or DER). Browsers subscribe with the public
key as ``applicationServerKey`` (the uncompressed point, base64url); a push
service accepts a push only when its ``Authorization: vapid t=<JWT>,k=<key>``
is signed by the key the subscription was made with.

The JWT (ES256, signed by py_vapid) names the push service's origin (``aud``),
the operator's contact (``sub``, ``mailto:`` or ``https:``) and an expiry at
most 24 hours ahead (``exp``). One header per push service origin is kept and
re-signed once half its lifetime has passed, so a burst of pushes signs once.
Nothing here ever puts the private key in a message or an exception.
"""

from __future__ import annotations

import binascii
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from notify.core.clock import Clock
from notify.core.subscription import b64url, b64url_decode

# RFC 8292 allows at most 24 hours; 12 leaves room for clock skew at the push service.
TOKEN_LIFETIME_S = 12 * 3600
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


class VapidSigner:
    """The ``Authorization`` header for a push service origin, signed and cached."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        subject: str,
        clock: Clock,
        *,
        lifetime_s: int = TOKEN_LIFETIME_S,
    ) -> None:
        self._vapid = Vapid02(key)
        self._subject = check_subject(subject)
        self._clock = clock
        self._lifetime_s = lifetime_s
        self.public_key = public_key_b64url(key)
        self._cache: dict[str, tuple[int, str]] = {}  # audience -> (exp, header)

    def authorization(self, audience: str) -> str:
        now_s = self._clock.now_ms() // 1000
        cached = self._cache.get(audience)
        if cached is not None and cached[0] - now_s > self._lifetime_s // 2:
            return cached[1]
        exp = now_s + self._lifetime_s
        claims = {"aud": audience, "sub": self._subject, "exp": exp}
        header = str(self._vapid.sign(claims)["Authorization"])
        if len(self._cache) >= 1024:  # push services are few; never grow without bound
            self._cache.clear()
        self._cache[audience] = (exp, header)
        return header
