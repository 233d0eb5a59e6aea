"""Apple Push Notification service: one row to one iOS device over HTTP/2 and TLS.

Each push is ``POST /3/device/<token>`` on ``api.push.apple.com`` (or
``api.sandbox.push.apple.com``) with the provider token of
``notify.delivery.apns_token`` as ``authorization: bearer``, and the headers
and payload of ``notify.delivery.apns_payload``. APNs speaks HTTP/2 only, so
the client offers nothing else (ALPN ``h2``), and keeps one connection open
for all pushes, as Apple asks.

APNs' answer becomes the device's PushResult:

- 200: ACCEPTED, with the ``apns-id`` APNs echoes as the message id;
- 410, or 400 ``BadDeviceToken`` / ``DeviceTokenNotForTopic`` /
  ``Unregistered``: GONE (the token will never work again for this app);
- 429 and 5xx, connection errors and timeouts: TRANSIENT (a ``Retry-After``
  is passed on); a connection that breaks under a request (APNs closes
  connections now and then) is retried once at once on a new one;
- 403 ``ExpiredProviderToken``: a new provider token and one retry at once;
- anything else: PERMANENT, with APNs' status and reason.

A row whose ``expires_at_ms`` has passed (a retry that came too late) is not
sent: PERMANENT.

Reasons quote APNs' reason word only when it is one (letters), never the
token, the device token or the key.
"""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass, field

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from notify.config import Config, ConfigError
from notify.core.clock import Clock
from notify.core.model import Device, DeviceType, Notification
from notify.core.ports import PushOutcome, PushResult
from notify.delivery import apns_payload, outbound
from notify.delivery.apns_token import ProviderToken, SigningKeyError, load_signing_key
from notify.delivery.outbound import retry_after_ms

ENDPOINTS = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}
DEFAULT_TIMEOUT_S = 10.0
GONE_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"})
EXPIRED_TOKEN = "ExpiredProviderToken"
# Device tokens are hex (32 bytes today; Apple says not to rely on the length).
_DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{16,400}")
_REASON_WORD = re.compile(r"[A-Za-z]{1,64}")
# A connection that broke under a request (not one that could not be made, not a timeout).
_CUT = (httpx.ProtocolError, httpx.ReadError, httpx.WriteError)


@dataclass(frozen=True, slots=True)
class ApnsSettings:
    """Where and as whom to push; the key is kept out of the repr."""

    endpoint: str
    topic: str
    key_id: str
    team_id: str
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    ca_file: str = ""


class ApnsSender:
    """The DeviceSender for iOS devices."""

    name = "apns"
    device_types = frozenset({DeviceType.IOS})

    def __init__(
        self, settings: ApnsSettings, clock: Clock, *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self._endpoint = settings.endpoint.rstrip("/")
        self._topic = settings.topic
        self._clock = clock
        self._token = ProviderToken(settings.key, settings.key_id, settings.team_id, clock)
        verify: ssl.SSLContext | bool = True
        if settings.ca_file:
            verify = ssl.create_default_context(cafile=settings.ca_file)
        _quiet_request_logs()
        self._client = outbound.client(
            http1=False,  # APNs is HTTP/2 only: ALPN offers h2 and nothing else
            http2=True,
            verify=verify,
            timeout=timeout,
            trust_env=False,  # no proxy from the environment between us and Apple
        )

    def __repr__(self) -> str:
        return f"ApnsSender(endpoint={self._endpoint!r}, topic={self._topic!r})"

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, device: Device, row: Notification) -> PushResult:
        if not _DEVICE_TOKEN.fullmatch(device.token):
            return PushResult(PushOutcome.GONE, reason="not an APNs device token (hex)")
        if row.expires_at_ms and row.expires_at_ms <= self._clock.now_ms():
            # A retry that came too late: the phone must not show what the inbox no longer does.
            return PushResult(PushOutcome.PERMANENT, reason="expired before APNs took it")
        url = f"{self._endpoint}/3/device/{device.token}"
        headers = apns_payload.headers(row, device.token, self._topic)
        body = apns_payload.payload(row)
        token = self._token.current()
        response = await self._post(url, headers, body, token)
        if isinstance(response, PushResult):
            return response
        if response.status_code == 403 and _reason(response) == EXPIRED_TOKEN:
            response = await self._post(url, headers, body, self._token.renew(token))
            if isinstance(response, PushResult):
                return response
            if response.status_code == 403 and _reason(response) == EXPIRED_TOKEN:
                # Still expired with a token made just now: the clocks disagree. Retried later.
                return PushResult(
                    PushOutcome.TRANSIENT, reason=f"APNs 403 {EXPIRED_TOKEN} after a new token"
                )
        return self._result(response, headers["apns-id"])

    async def _post(
        self, url: str, headers: dict[str, str], body: bytes, token: str
    ) -> httpx.Response | PushResult:
        request_headers = {
            **headers,
            "authorization": f"bearer {token}",
            "content-type": "application/json",
        }
        for attempt in range(2):
            try:
                return await self._client.post(url, content=body, headers=request_headers)
            except httpx.TimeoutException:
                return PushResult(PushOutcome.TRANSIENT, reason="APNs timed out")
            except _CUT as exc:
                # The connection went away under the request (APNs closes connections
                # now and then): once more at once, on a new one.
                if attempt == 0:
                    continue
                failure: httpx.HTTPError = exc
            except httpx.HTTPError as exc:
                failure = exc
            break
        # The exception's text may name the URL, and so the device token: never quoted.
        return PushResult(PushOutcome.TRANSIENT, reason=f"APNs connection: {_describe(failure)}")

    def _result(self, response: httpx.Response, apns_id: str) -> PushResult:
        status = response.status_code
        if status == 200:
            echoed = response.headers.get("apns-id", "").strip().lower()
            return PushResult(PushOutcome.ACCEPTED, provider_message_id=echoed or apns_id)
        reason = _reason(response)
        shown = f"APNs {status} {reason}".rstrip()
        if status == 410 or (status == 400 and reason in GONE_REASONS):
            return PushResult(PushOutcome.GONE, reason=shown)
        if status == 429 or status >= 500:
            wait = retry_after_ms(response.headers.get("retry-after"), self._clock.now_ms())
            return PushResult(PushOutcome.TRANSIENT, reason=shown, retry_after_ms=wait)
        return PushResult(PushOutcome.PERMANENT, reason=shown)


def _reason(response: httpx.Response) -> str:
    """APNs' ``{"reason": "..."}`` word, or "" when the body has none we can trust."""
    try:
        parsed = response.json()
    except ValueError:
        return ""
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return reason if isinstance(reason, str) and _REASON_WORD.fullmatch(reason) else ""


def _describe(exc: httpx.HTTPError) -> str:
    """The error's kind; a certificate APNs' side cannot prove is said as such."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "TLS certificate not trusted"
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__


def _quiet_request_logs() -> None:
    """httpx logs every request's URL at INFO (here: the device token), and the HTTP/2
    header compressor logs header blocks at DEBUG (here: the provider token, encoded).
    Neither belongs in the service's log, whatever NOTIFY_LOG_LEVEL says."""
    for name in ("httpx", "hpack"):
        log = logging.getLogger(name)
        if log.level < logging.WARNING:  # NOTSET (0) too: it would follow the root's level
            log.setLevel(logging.WARNING)


def apns_sender(config: Config, clock: Clock) -> ApnsSender | None:
    """The sender ``NOTIFY_APNS_*`` asks for: None when no APNs variable is set.

    Raises ConfigError naming the first missing or unusable variable.
    """
    given = {
        "NOTIFY_APNS_KEY_FILE": config.apns_key_file,
        "NOTIFY_APNS_KEY_ID": config.apns_key_id,
        "NOTIFY_APNS_TEAM_ID": config.apns_team_id,
        "NOTIFY_APNS_TOPIC": config.apns_topic,
    }
    if not any(given.values()):
        return None
    for name, value in given.items():
        if not value:
            others = ", ".join(n for n in given if n != name)
            raise ConfigError(f"{name}: required for APNs (with {others})")
    try:
        key = load_signing_key(config.apns_key_file)
    except SigningKeyError as exc:
        raise ConfigError(f"NOTIFY_APNS_KEY_FILE: {exc}") from None
    if config.apns_ca_file:
        try:
            ssl.create_default_context(cafile=config.apns_ca_file)
        except (OSError, ssl.SSLError):
            raise ConfigError(
                f"NOTIFY_APNS_CA_FILE: {config.apns_ca_file!r} is not a readable PEM CA bundle"
            ) from None
    settings = ApnsSettings(
        endpoint=config.apns_endpoint or ENDPOINTS[config.apns_environment],
        topic=config.apns_topic,
        key_id=config.apns_key_id,
        team_id=config.apns_team_id,
        key=key,
        ca_file=config.apns_ca_file,
    )
    return ApnsSender(settings, clock)
