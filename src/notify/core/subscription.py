"""A browser's Web Push subscription, as ``RegisterPushToken`` takes it: validated once.

A browser registers ``JSON.stringify(pushSubscription)``: the push service's
``endpoint`` and the two keys RFC 8291 encrypts with (``keys.p256dh``, the
browser's P-256 public key, and ``keys.auth``, a 16-byte secret). Both are
checked here, at registration, so a bad subscription is the caller's
``invalid_argument`` and never a failed push later. The stored token is the
canonical JSON of the three values, so the same subscription registered again
(with or without ``expirationTime``, padded or not) is the same device.

The endpoint must be ``https://``: it is where the server sends the user's
notifications, and a user chooses it. ``http://`` is accepted only to a
loopback host and only when the operator allows it (tests,
``NOTIFY_WEBPUSH_ALLOW_INSECURE``); the sender also refuses non-public
addresses then (``notify.delivery.ssrf``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from notify.core.errors import InvalidArgument

P256DH_BYTES = 65  # an uncompressed P-256 point
AUTH_BYTES = 16  # RFC 8291's auth secret
MAX_ENDPOINT_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class WebPushSubscription:
    endpoint: str
    p256dh: bytes
    auth: bytes

    @property
    def origin(self) -> str:
        """The push service's origin: the ``aud`` of the VAPID token (RFC 8292)."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    def token(self) -> str:
        """The canonical token: what the store keeps and compares."""
        return json.dumps(
            {
                "endpoint": self.endpoint,
                "keys": {"p256dh": b64url(self.p256dh), "auth": b64url(self.auth)},
            },
            separators=(",", ":"),
        )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: object) -> bytes:
    """Unpadded or padded base64url (browsers send it unpadded); raises ValueError."""
    if not isinstance(text, str) or not text or any(c in text for c in "+/ \n\r\t"):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint(value: Any, *, allow_insecure: bool) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument("token: a browser subscription needs an endpoint")
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise InvalidArgument(f"token: endpoint is longer than {MAX_ENDPOINT_LENGTH} characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise InvalidArgument("token: endpoint is not a URL") from None
    host = parts.hostname or ""
    if not host or parts.username is not None or parts.password is not None:
        raise InvalidArgument("token: endpoint must be https://host/... without user or password")
    if parts.scheme == "https":
        return value
    if parts.scheme == "http" and allow_insecure and _loopback(host):
        return value
    raise InvalidArgument("token: endpoint must be https://")


def parse_subscription(token: str, *, allow_insecure: bool = False) -> WebPushSubscription:
    """The subscription a browser token holds; InvalidArgument naming what is wrong."""
    try:
        document = json.loads(token)
    except ValueError:
        raise InvalidArgument(
            "token: a browser token is the PushSubscription's JSON "
            '({"endpoint": ..., "keys": {"p256dh": ..., "auth": ...}})'
        ) from None
    if not isinstance(document, dict):
        raise InvalidArgument("token: a browser token is a JSON object")
    endpoint = _endpoint(document.get("endpoint"), allow_insecure=allow_insecure)
    keys = document.get("keys")
    if not isinstance(keys, dict):
        raise InvalidArgument("token: keys.p256dh and keys.auth are required")
    try:
        p256dh = b64url_decode(keys.get("p256dh"))
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
        if len(p256dh) != P256DH_BYTES:
            raise ValueError("not uncompressed")
    except ValueError:
        raise InvalidArgument(
            "token: keys.p256dh must be an uncompressed P-256 public key, base64url"
        ) from None
    try:
        auth = b64url_decode(keys.get("auth"))
    except ValueError:
        raise InvalidArgument("token: keys.auth must be base64url") from None
    if len(auth) != AUTH_BYTES:
        raise InvalidArgument(f"token: keys.auth must be {AUTH_BYTES} bytes")
    return WebPushSubscription(endpoint, p256dh, auth)
