"""Android pushes through Firebase Cloud Messaging's HTTP v1 API.

One POST to ``{endpoint}/v1/projects/{project}/messages:send`` per device,
with a bearer token bought with the service account's key
(notify.delivery.service_account). The message carries what the tray shows
(``notification``: title, body, image) and what the app needs to open the
right screen (``data``, strings only: the row's store ``id``, category,
severity, ``url`` = the primary action's link, ...), and Android options:
``priority`` from the severity, ``ttl`` from ``expires_at_ms`` and the
``collapse_key`` (which the app reads with ``RemoteMessage.getCollapseKey()``:
the Android SDK drops a data key of that name, so it is not repeated there).

FCM's answer decides what happens next:

- 200: ACCEPTED, the provider message id is the message ``name``;
- 404 or ``UNREGISTERED``, and ``INVALID_ARGUMENT`` about the token
  (``message.token`` in the error's BadRequest details): GONE, the device is
  forgotten;
- 401: the access token was refused (revoked, or expired before we thought):
  a fresh token is fetched once and the push is sent again;
- 408, 429 and 5xx (``QUOTA_EXCEEDED``, ``UNAVAILABLE``, ``INTERNAL``),
  connection errors and timeouts: TRANSIENT, after ``Retry-After``;
- anything else (``SENDER_ID_MISMATCH``, ``THIRD_PARTY_AUTH_ERROR``, a bad
  payload): PERMANENT.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson

from notify.config import Config, ConfigError
from notify.core.clock import Clock
from notify.core.model import Device, DeviceType, Notification, Severity
from notify.core.ports import PushOutcome, PushResult
from notify.delivery import outbound
from notify.delivery.outbound import json_body, retry_after_ms
from notify.delivery.service_account import (
    AccessTokens,
    CredentialsError,
    ServiceAccount,
    TokenError,
    load_service_account,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_ENDPOINT = "https://fcm.googleapis.com"
DEFAULT_TIMEOUT_S = 10.0
# FCM refuses messages whose payload passes 4096 bytes.
MAX_PAYLOAD_BYTES = 4096
MAX_TTL_MS = 28 * 24 * 3600 * 1000  # FCM's longest (four weeks)
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_TRANSIENT = {408, 429}
_URGENT = (Severity.WARNING, Severity.ERROR)


def primary_url(row: Notification) -> str:
    """The deep link a tap opens: the primary action's url ("" without one)."""
    return next((a.url for a in row.actions if a.primary and a.url), "")


def ttl(row: Notification, now_ms: int) -> str:
    """What is left of the row's life as a protobuf Duration ("" when it has no expiry)."""
    if not row.expires_at_ms:
        return ""
    left = min(max(0, row.expires_at_ms - now_ms), MAX_TTL_MS)
    seconds, ms = divmod(left, 1000)
    return f"{seconds}.{ms:03d}s" if ms else f"{seconds}s"


def message(device: Device, row: Notification, now_ms: int) -> dict[str, Any]:
    """The ``messages:send`` body for one device, within FCM's payload limit."""
    notification = {"title": row.title, "body": row.body, "image": row.image_url}
    data = {
        "id": row.id,
        "notification_id": row.notification_id,
        "category": row.category,
        "severity": row.severity.name.lower() if row.severity else "",
        "url": primary_url(row),
        "subject_ref": row.subject_ref,
        "subject_type": row.subject_type,
        "data": row.data,
    }
    android: dict[str, Any] = {"priority": "high" if row.severity in _URGENT else "normal"}
    if row.expires_at_ms:
        android["ttl"] = ttl(row, now_ms)
    if row.collapse_key:
        android["collapse_key"] = row.collapse_key
        # The tray replaces the shown notification with the same tag.
        android["notification"] = {"tag": row.collapse_key}
    body: dict[str, Any] = {
        "message": {
            "token": device.token,
            "notification": {k: v for k, v in notification.items() if v},
            "data": {k: v for k, v in data.items() if v},
            "android": android,
        }
    }
    return _fit(body)


def _fit(body: dict[str, Any]) -> dict[str, Any]:
    """Drops the producer's JSON, then shortens the body, until the payload fits."""
    msg = body["message"]
    while len(orjson.dumps(body)) > MAX_PAYLOAD_BYTES:
        if "data" in msg["data"]:
            del msg["data"]["data"]  # the app can fetch the row by its id
            continue
        text = msg["notification"].get("body", "")
        if len(text) <= 1:
            break  # the title alone is too long: FCM will say so (PERMANENT)
        # Cut as many UTF-8 bytes as the payload is over, plus room for the ellipsis.
        over = len(orjson.dumps(body)) - MAX_PAYLOAD_BYTES
        encoded = text.encode()
        kept = encoded[: max(0, len(encoded) - over - len("…".encode()))]
        msg["notification"]["body"] = kept.decode(errors="ignore") + "…"
    return body


class FcmSender:
    """A DeviceSender for Android devices (FCM registration tokens)."""

    name = "fcm"
    device_types = frozenset({DeviceType.ANDROID})

    def __init__(
        self,
        account: ServiceAccount,
        clock: Clock,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._clock = clock
        project = quote(account.project_id, safe="")
        self._url = f"{endpoint.rstrip('/')}/v1/projects/{project}/messages:send"
        self._client = outbound.client(
            timeout=timeout,
            trust_env=True,  # the environment's proxy settings apply to Google's endpoints
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.tokens = AccessTokens(account, SCOPE, self._client, clock)

    def __repr__(self) -> str:
        return f"FcmSender({self._url!r})"

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, device: Device, row: Notification) -> PushResult:
        now_ms = self._clock.now_ms()
        if row.expires_at_ms and row.expires_at_ms <= now_ms:
            return PushResult(PushOutcome.PERMANENT, reason="expired before it was sent")
        content = orjson.dumps(message(device, row, now_ms))
        for attempt in (1, 2):
            try:
                token = await self.tokens.get()
            except TokenError as exc:
                outcome = PushOutcome.TRANSIENT if exc.transient else PushOutcome.PERMANENT
                return PushResult(outcome, reason=f"FCM {exc}")
            try:
                response = await self._client.post(
                    self._url,
                    content=content,
                    headers={
                        "authorization": f"Bearer {token}",
                        "content-type": "application/json; charset=utf-8",
                    },
                )
            except httpx.TimeoutException:
                return PushResult(PushOutcome.TRANSIENT, reason="FCM timed out")
            except httpx.HTTPError as exc:
                return PushResult(
                    PushOutcome.TRANSIENT, reason=f"FCM connection: {type(exc).__name__}"
                )
            if response.status_code == 401 and attempt == 1 and not _third_party(response):
                self.tokens.invalidate(token)  # revoked or lapsed early: buy a new one, once
                continue
            return self._answer(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer(self, response: httpx.Response) -> PushResult:
        status = response.status_code
        body = json_body(response)
        if 200 <= status < 300:
            name = body.get("name") if isinstance(body, dict) else None
            return PushResult(
                PushOutcome.ACCEPTED, provider_message_id=name if isinstance(name, str) else ""
            )
        error = _Error.of(body)
        reason = f"FCM HTTP {status} {error.code}".rstrip()
        if error.text:
            reason = f"{reason}: {error.text}"
        if status == 404 or error.code == "UNREGISTERED" or error.names_token:
            return PushResult(PushOutcome.GONE, reason=reason)
        if status in _TRANSIENT or status >= 500:
            wait = retry_after_ms(response.headers.get("retry-after"), self._clock.now_ms())
            return PushResult(PushOutcome.TRANSIENT, reason=reason, retry_after_ms=wait)
        return PushResult(PushOutcome.PERMANENT, reason=reason)


class _Error:
    """The parts of a google.rpc.Status error body that decide the outcome."""

    def __init__(self, code: str, text: str, names_token: bool) -> None:
        self.code = code  # FcmError.errorCode, else the canonical status
        self.text = text
        self.names_token = names_token  # INVALID_ARGUMENT about message.token

    @classmethod
    def of(cls, body: Any) -> _Error:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls("", "", False)
        status, text = error.get("status"), error.get("message")
        code = status if isinstance(status, str) else ""
        text = text if isinstance(text, str) else ""
        fields: list[str] = []
        for detail in error.get("details") or []:
            if not isinstance(detail, dict):
                continue
            if detail.get("@type") == _FCM_ERROR and isinstance(detail.get("errorCode"), str):
                code = detail["errorCode"]
            elif detail.get("@type") == _BAD_REQUEST:
                for violation in detail.get("fieldViolations") or []:
                    if isinstance(violation, dict):
                        fields.append(str(violation.get("field", "")))
        names_token = code == "INVALID_ARGUMENT" and (
            "message.token" in fields or "registration token" in text.lower()
        )
        return cls(code[:64], text[:200], names_token)


def _third_party(response: httpx.Response) -> bool:
    """A 401 about the APNs/web credentials uploaded to Firebase: a new token won't help."""
    return _Error.of(json_body(response)).code == "THIRD_PARTY_AUTH_ERROR"


def fcm_sender(config: Config, clock: Clock) -> FcmSender | None:
    """The sender ``NOTIFY_FCM_CREDENTIALS_FILE`` asks for; None when it is unset."""
    if not config.fcm_credentials_file:
        if config.fcm_endpoint:
            raise ConfigError(
                "NOTIFY_FCM_CREDENTIALS_FILE: required when NOTIFY_FCM_ENDPOINT is set"
            )
        return None
    try:
        account = load_service_account(config.fcm_credentials_file)
    except CredentialsError as exc:
        raise ConfigError(f"NOTIFY_FCM_CREDENTIALS_FILE: {exc}") from None
    return FcmSender(account, clock, endpoint=config.fcm_endpoint or DEFAULT_ENDPOINT)
