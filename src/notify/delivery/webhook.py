"""Signed webhooks: the row as JSON, POSTed to the user's ``webhook`` address.

Requests follow the Standard Webhooks spec (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``, HMAC-SHA256 with the shared
``NOTIFY_WEBHOOK_SECRET``, signed with the ``standardwebhooks`` library), so
receivers verify them with any of its implementations. ``webhook-id`` is the
row id: a resend after a crash carries the same id, and receivers dedupe on
it. The body is ``{"type": "notification.created", "timestamp": ..., "data":
<the Notification as the API's JSON>}``.

The answer decides what happens next: 2xx is DELIVERED; 408, 429 and 5xx,
connection errors and timeouts are transient (a ``Retry-After`` is
honoured); any other status is permanent. Redirects are not followed (a
redirect could lead past the address guard, notify.delivery.ssrf).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import httpx
import orjson
from standardwebhooks import Webhook

from notify.core.clock import Clock
from notify.core.model import Channel, Notification, Status
from notify.core.ports import Delivery, Receipt
from notify.delivery import outbound, ssrf
from notify.wire import fastjson
from notify.wire.convert import notification_to_pb

DEFAULT_TIMEOUT_S = 10.0
_TRANSIENT = {408, 429}


def payload(row: Notification, now_ms: int) -> bytes:
    stamp = datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC)
    data = orjson.Fragment(fastjson.to_json(notification_to_pb(row)))
    return orjson.dumps(
        {
            "type": "notification.created",
            "timestamp": stamp.isoformat().replace("+00:00", "Z"),
            "data": data,
        }
    )


class WebhookProvider:
    name = "webhook"
    channel = Channel.WEBHOOK

    def __init__(
        self,
        secret: str,
        clock: Clock,
        *,
        allow_private: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._signer = Webhook(secret)
        self._clock = clock
        self._allow_private = allow_private
        self._client = outbound.client(
            timeout=timeout,
            trust_env=False,  # never through a proxy from the environment
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, deliveries: Sequence[Delivery]) -> list[Receipt]:
        return [await self._send(d) for d in deliveries]

    async def _send(self, delivery: Delivery) -> Receipt:
        try:
            destination = await ssrf.vet(delivery.address, allow_private=self._allow_private)
        except ssrf.Refused as exc:
            return Receipt(Status.FAILED, reason=str(exc))
        except ssrf.Unresolved as exc:
            return Receipt(Status.PENDING, reason=str(exc))
        now_ms = self._clock.now_ms()
        body = payload(delivery.row, now_ms)
        message_id = delivery.row.id
        stamp = datetime.datetime.fromtimestamp(now_ms // 1000, datetime.UTC)
        signature = self._signer.sign(message_id, stamp, body.decode())
        try:
            response = await self._client.post(
                destination.url,
                content=body,
                headers={
                    "host": destination.host,
                    "content-type": "application/json",
                    "webhook-id": message_id,
                    "webhook-timestamp": str(now_ms // 1000),
                    "webhook-signature": signature,
                },
                extensions={"sni_hostname": destination.host.rsplit(":", 1)[0].strip("[]")},
            )
        except httpx.TimeoutException:
            return Receipt(Status.PENDING, reason="webhook timed out")
        except httpx.HTTPError as exc:
            return Receipt(Status.PENDING, reason=f"webhook connection: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            return Receipt(
                Status.DELIVERED, at_ms=self._clock.now_ms(), provider_message_id=message_id
            )
        reason = f"HTTP {status}"
        if status in _TRANSIENT or status >= 500:
            wait = outbound.retry_after_ms(
                response.headers.get("retry-after"), self._clock.now_ms()
            )
            return Receipt(Status.PENDING, reason=reason, retry_after_ms=wait)
        return Receipt(Status.FAILED, reason=reason)
