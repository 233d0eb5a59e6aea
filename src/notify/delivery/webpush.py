"""The Web Push sender (RFC 8030, 8291, 8292): one row to one browser subscription.

Each push is a POST to the subscription's endpoint (the browser's push
service) with the payload encrypted for that browser alone (``aes128gcm``,
RFC 8291, with the subscription's ``p256dh`` key and ``auth`` secret, through
http_ece), a VAPID ``Authorization`` header (notify.delivery.vapid), ``TTL``,
``Urgency``, and ``Topic`` from the row's collapse key (a newer push with the
same topic replaces one the push service still holds for an offline
browser). The push service answers:

- 201 (or any 2xx): ACCEPTED; its ``Location`` (the push's resource) is the
  provider message id;
- 404 or 410: the subscription is gone (the user unsubscribed or the browser
  dropped it): GONE, and the push provider deletes the device;
- 408, 429 and 5xx, connection errors, timeouts: TRANSIENT, ``Retry-After``
  honoured;
- 403 (the VAPID key is not the one the browser subscribed with, or the JWT
  is refused), 400, 413 and any other status: PERMANENT.

Endpoints are user input: they pass the same address guard as webhooks
(notify.delivery.ssrf), loopback allowed only with
``NOTIFY_WEBPUSH_ALLOW_INSECURE``. The payload (what the service worker
receives, see ``payload``) is cut to fit the 4 KiB every push service accepts.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any

import http_ece
import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import VapidException

from notify.config import Config, ConfigError
from notify.core.clock import Clock
from notify.core.errors import InvalidArgument
from notify.core.model import Device, DeviceType, Notification, Severity
from notify.core.ports import PushOutcome, PushResult
from notify.core.subscription import parse_subscription
from notify.core.vapidkeys import load_private_key
from notify.delivery import outbound, ssrf
from notify.delivery.outbound import retry_after_ms
from notify.delivery.vapid import VapidSigner

DEFAULT_TIMEOUT_S = 10.0
# RFC 8291: a push message is at most 4096 bytes; aes128gcm adds a 86-byte header
# (salt, record size, key id = the 65-byte key), a 1-byte delimiter and a 16-byte tag.
MAX_PUSH_BYTES = 4096
MAX_PLAINTEXT_BYTES = MAX_PUSH_BYTES - 86 - 1 - 16
_TRANSIENT = {408, 425, 429}
# RFC 8030 section 5.4: a Topic is at most 32 characters of the base64url alphabet.
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_GONE = {404, 410}
# RFC 8030 Urgency from the row's severity: errors wake a sleeping phone, the rest wait
# for a good moment.
URGENCY = {
    Severity.ERROR: "high",
    Severity.WARNING: "normal",
    Severity.UNSPECIFIED: "normal",
    Severity.INFO: "low",
    Severity.SUCCESS: "low",
}


def payload(row: Notification) -> bytes:
    """What the service worker gets (``event.data.json()``), documented in README:

    ``{"id", "notificationId", "title", "body", "severity", "category", "url",
    "actions": [{"id", "label", "url"}], "image", "tags", "createdAtMs"}``

    ``url`` is the primary action's url ("" when none), ``severity`` one of
    ``info``, ``success``, ``warning``, ``error`` or "". A payload over the
    limit loses its image, then its actions and tags, then the body's tail,
    then the title's, so it always fits and always says what happened.
    """
    primary = next((a for a in row.actions if a.primary), None)
    severity = "" if row.severity is Severity.UNSPECIFIED else row.severity.name.lower()
    document: dict[str, Any] = {
        "id": row.id,
        "notificationId": row.notification_id,
        "title": row.title,
        "body": row.body,
        "severity": severity,
        "category": row.category,
        "url": primary.url if primary else "",
        "actions": [{"id": a.id, "label": a.label, "url": a.url} for a in row.actions],
        "image": row.image_url,
        "tags": list(row.tags),
        "createdAtMs": row.created_at_ms,
    }
    encoded = orjson.dumps(document)
    for drop in ("image", "actions", "tags"):
        if len(encoded) <= MAX_PLAINTEXT_BYTES:
            return encoded
        document[drop] = "" if drop == "image" else []
        encoded = orjson.dumps(document)
    for field in ("body", "title"):
        if len(encoded) <= MAX_PLAINTEXT_BYTES:
            break
        encoded = _cut(document, field)
    return encoded


def topic(collapse_key: str) -> str | None:
    """The ``Topic`` header for a collapse key: the key itself when RFC 8030 allows it,
    else the first 32 characters of its SHA-256 in base64url (the same key always gives
    the same topic, which is all replacing needs); None without a key."""
    if not collapse_key:
        return None
    if _TOPIC.fullmatch(collapse_key):
        return collapse_key
    digest = hashlib.sha256(collapse_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def _cut(document: dict[str, Any], field: str) -> bytes:
    """The document with ``field`` cut to the longest prefix (and "…") that fits, or emptied."""
    text: str = document[field]
    low, high = 0, len(text)  # the longest fitting prefix is between the two
    while low < high:
        middle = (low + high + 1) // 2
        document[field] = text[:middle] + "…"
        if len(orjson.dumps(document)) <= MAX_PLAINTEXT_BYTES:
            low = middle
        else:
            high = middle - 1
    document[field] = text[:low] + "…" if low else ""
    return orjson.dumps(document)


def encrypt(plaintext: bytes, p256dh: bytes, auth: bytes) -> bytes:
    """RFC 8291 aes128gcm: a fresh sender key and salt for every push."""
    return bytes(
        http_ece.encrypt(
            plaintext,
            salt=os.urandom(16),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=p256dh,
            auth_secret=auth,
            version="aes128gcm",
        )
    )


class WebPushSender:
    name = "webpush"
    device_types = frozenset({DeviceType.BROWSER})

    def __init__(
        self,
        signer: VapidSigner,
        clock: Clock,
        *,
        ttl_s: float = 24 * 3600.0,
        allow_insecure: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._signer = signer
        self._clock = clock
        self._ttl_s = int(ttl_s)
        self._allow_insecure = allow_insecure
        self._client = outbound.client(
            timeout=timeout,
            trust_env=False,  # never through a proxy from the environment
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    @property
    def public_key(self) -> str:
        return self._signer.public_key

    async def close(self) -> None:
        await self._client.aclose()

    def ttl(self, row: Notification) -> int:
        """Seconds the push service may keep the push: the configured TTL, shortened to the
        row's expiry (a push that arrives after the row vanished would show a ghost)."""
        if not row.expires_at_ms:
            return self._ttl_s
        left = (row.expires_at_ms - self._clock.now_ms()) // 1000
        return max(0, min(self._ttl_s, left))

    async def send(self, device: Device, row: Notification) -> PushResult:
        try:
            subscription = parse_subscription(device.token, allow_insecure=self._allow_insecure)
        except InvalidArgument as exc:
            return PushResult(PushOutcome.PERMANENT, reason=f"bad subscription: {exc.message}")
        try:
            destination = await ssrf.vet(subscription.endpoint, allow_private=self._allow_insecure)
        except ssrf.Refused:
            return PushResult(
                PushOutcome.PERMANENT,
                reason="push endpoint is not a public https:// address",
            )
        except ssrf.Unresolved:
            return PushResult(PushOutcome.TRANSIENT, reason="push endpoint did not resolve")
        try:
            authorization = self._signer.authorization(subscription.origin)
        except VapidException:  # an origin VAPID cannot name (py_vapid's aud rule)
            return PushResult(
                PushOutcome.PERMANENT, reason="push endpoint's origin is not signable"
            )
        body = encrypt(payload(row), subscription.p256dh, subscription.auth)
        headers = {
            "host": destination.host,
            "authorization": authorization,
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "ttl": str(self.ttl(row)),
            "urgency": URGENCY[row.severity],
        }
        replaces = topic(row.collapse_key)
        if replaces is not None:
            headers["topic"] = replaces
        try:
            response = await self._client.post(
                destination.url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": destination.host.rsplit(":", 1)[0].strip("[]")},
            )
        except httpx.TimeoutException:
            return PushResult(PushOutcome.TRANSIENT, reason="push service timed out")
        except httpx.HTTPError as exc:
            return PushResult(
                PushOutcome.TRANSIENT, reason=f"push service connection: {type(exc).__name__}"
            )
        return self._outcome(response, row)

    def _outcome(self, response: httpx.Response, row: Notification) -> PushResult:
        status = response.status_code
        if 200 <= status < 300:
            location = response.headers.get("location", "")[:500]
            return PushResult(PushOutcome.ACCEPTED, provider_message_id=location or row.id)
        if status in _GONE:
            return PushResult(PushOutcome.GONE, reason=f"subscription gone (HTTP {status})")
        if status in _TRANSIENT or status >= 500:
            wait = retry_after_ms(response.headers.get("retry-after"), self._clock.now_ms())
            return PushResult(PushOutcome.TRANSIENT, reason=f"HTTP {status}", retry_after_ms=wait)
        if status in (401, 403):
            return PushResult(
                PushOutcome.PERMANENT,
                reason=f"push service refused the VAPID credentials (HTTP {status}): "
                "the subscription was made with another key",
            )
        if status == 413:
            return PushResult(PushOutcome.PERMANENT, reason="push service: payload too large")
        return PushResult(PushOutcome.PERMANENT, reason=f"HTTP {status}")


def webpush_sender(config: Config, clock: Clock) -> WebPushSender | None:
    """The sender the configuration asks for; None without a VAPID key.

    Incomplete configuration is a ConfigError naming the missing variable.
    """
    if not config.webpush_vapid_private_key:
        if config.webpush_subject:
            raise ConfigError(
                "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY: required when NOTIFY_WEBPUSH_SUBJECT is set"
            )
        return None
    if not config.webpush_subject:
        raise ConfigError(
            "NOTIFY_WEBPUSH_SUBJECT: required when NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY is set"
            " (mailto:you@example.com or an https: URL)"
        )
    key = load_private_key(config.webpush_vapid_private_key)
    return WebPushSender(
        VapidSigner(key, config.webpush_subject, clock),
        clock,
        ttl_s=config.webpush_ttl,
        allow_insecure=config.webpush_allow_insecure,
    )
