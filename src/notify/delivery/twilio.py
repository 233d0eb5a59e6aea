"""SMS and WhatsApp through Twilio's Messages API, from the outbox.

One POST to ``{base}/2010-04-01/Accounts/{sid}/Messages.json`` per row
(basic auth: the Account SID and auth token; form fields ``To``, ``From`` or
``MessagingServiceSid``, ``Body``). WhatsApp is the same call with both
numbers written ``whatsapp:+E164``. The address is the user's
``addresses[user].by_channel["sms"|"whatsapp"]``: an E.164 number, or the row
is FAILED without a request. The text is the title and the body, cut to fit
(notify.delivery.sms_text). The provider message id is the message SID.

Twilio's answer decides what happens next: 2xx is DELIVERED (accepted by
Twilio; the handset's receipt is a later status callback); 408, 429 and 5xx
(Twilio 20429, 20500, 20503), connection errors and timeouts are retried
after ``Retry-After``; any other answer is FAILED with Twilio's code and
message (21211 invalid To, 21610 the recipient replied STOP, 21614 not a
mobile number, 21408 region not enabled, 63016 WhatsApp outside its 24-hour
window, 20003 wrong credentials, ...).

One client (one connection pool, one set of credentials) serves both
channels' providers; the auth token never appears in a reason or a log.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from notify.config import Config, ConfigError
from notify.core.clock import Clock
from notify.core.model import Channel, Status
from notify.core.phone import WHATSAPP_PREFIX, e164, whatsapp_number
from notify.core.ports import Delivery, Provider, Receipt
from notify.delivery import outbound
from notify.delivery.outbound import json_body, retry_after_ms
from notify.delivery.sms_text import compose, fit_sms, fit_whatsapp

DEFAULT_BASE_URL = "https://api.twilio.com"
DEFAULT_TIMEOUT_S = 10.0
_TRANSIENT_STATUS = {408, 429}
_TRANSIENT_CODES = {20429, 20500, 20503}


class TwilioClient:
    """The account's credentials and connection pool, shared by the SMS and WhatsApp providers."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        clock: Clock,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._clock = clock
        self._secret = auth_token
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._client = outbound.client(
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=timeout,
            trust_env=True,  # the environment's proxy settings apply to Twilio's API
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            headers={"accept": "application/json"},
        )

    def __repr__(self) -> str:  # never the token
        return f"TwilioClient({self._url!r})"

    async def close(self) -> None:
        await self._client.aclose()

    async def create_message(self, fields: dict[str, str]) -> Receipt:
        try:
            response = await self._client.post(self._url, data=fields)
        except httpx.TimeoutException:
            return Receipt(Status.PENDING, reason="Twilio timed out")
        except httpx.HTTPError as exc:
            return Receipt(Status.PENDING, reason=f"Twilio connection: {type(exc).__name__}")
        body = json_body(response)
        status = response.status_code
        if 200 <= status < 300:
            sid = body.get("sid") if isinstance(body, dict) else None
            return Receipt(
                Status.DELIVERED,
                at_ms=self._clock.now_ms(),
                provider_message_id=sid if isinstance(sid, str) else "",
            )
        code = body.get("code") if isinstance(body, dict) else None
        text = body.get("message") if isinstance(body, dict) else None
        reason = f"Twilio {code}" if isinstance(code, int) else f"Twilio HTTP {status}"
        if isinstance(text, str) and text:
            reason = f"{reason}: {text[:300]}"
        reason = reason.replace(self._secret, "[redacted]") if self._secret else reason
        if status in _TRANSIENT_STATUS or status >= 500 or code in _TRANSIENT_CODES:
            wait = retry_after_ms(response.headers.get("retry-after"), self._clock.now_ms())
            return Receipt(Status.PENDING, reason=reason, retry_after_ms=wait)
        return Receipt(Status.FAILED, reason=reason)


class TwilioProvider:
    """One channel (SMS or WhatsApp) over a shared TwilioClient."""

    name: str
    channel: Channel

    def __init__(self, channel: Channel, client: TwilioClient, sender: str) -> None:
        if channel not in (Channel.SMS, Channel.WHATSAPP):
            raise ValueError(f"Twilio sends SMS and WhatsApp, not {channel.name}")
        self.channel = channel
        self.name = f"twilio-{channel.name.lower()}"
        self._client = client
        self._whatsapp = channel is Channel.WHATSAPP
        if self._whatsapp:
            self._from = {"From": WHATSAPP_PREFIX + sender.removeprefix(WHATSAPP_PREFIX)}
        elif sender.startswith("MG"):
            self._from = {"MessagingServiceSid": sender}
        else:
            self._from = {"From": sender}

    async def send(self, deliveries: Sequence[Delivery]) -> list[Receipt]:
        return [await self._send(d) for d in deliveries]

    async def _send(self, delivery: Delivery) -> Receipt:
        row = delivery.row
        text = compose(row.title, row.body)
        if self._whatsapp:
            number = whatsapp_number(delivery.address)
            to, text = WHATSAPP_PREFIX + (number or ""), fit_whatsapp(text)
        else:
            number = e164(delivery.address)
            to, text = number or "", fit_sms(text)
        if number is None:
            return Receipt(
                Status.FAILED, reason="invalid phone number (E.164 needed, like +14155550123)"
            )
        return await self._client.create_message({"To": to, **self._from, "Body": text})


class TwilioChannels:
    """The providers the configuration asks for (none, SMS, WhatsApp or both) and their client."""

    def __init__(self, client: TwilioClient | None, providers: Sequence[TwilioProvider]) -> None:
        self.client = client
        self.providers: list[Provider] = list(providers)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


def twilio_channels(config: Config, clock: Clock) -> TwilioChannels:
    """SMS when ``NOTIFY_TWILIO_FROM`` is set, WhatsApp when ``NOTIFY_TWILIO_WHATSAPP_FROM``
    is; both need the SID and token. Raises ConfigError naming the variable that is missing."""
    given = {
        "NOTIFY_TWILIO_AUTH_TOKEN": config.twilio_auth_token,
        "NOTIFY_TWILIO_FROM": config.twilio_from,
        "NOTIFY_TWILIO_WHATSAPP_FROM": config.twilio_whatsapp_from,
        "NOTIFY_TWILIO_BASE_URL": config.twilio_base_url,
    }
    if not config.twilio_account_sid:
        named = next((name for name, value in given.items() if value), None)
        if named is not None:
            raise ConfigError(f"NOTIFY_TWILIO_ACCOUNT_SID: required when {named} is set")
        return TwilioChannels(None, [])
    if not config.twilio_auth_token:
        raise ConfigError(
            "NOTIFY_TWILIO_AUTH_TOKEN: required when NOTIFY_TWILIO_ACCOUNT_SID is set"
        )
    if not (config.twilio_from or config.twilio_whatsapp_from):
        raise ConfigError(
            "NOTIFY_TWILIO_FROM: required when NOTIFY_TWILIO_ACCOUNT_SID is set"
            " (or NOTIFY_TWILIO_WHATSAPP_FROM for WhatsApp only)"
        )
    client = TwilioClient(
        config.twilio_account_sid,
        config.twilio_auth_token,
        clock,
        base_url=config.twilio_base_url or DEFAULT_BASE_URL,
    )
    providers = []
    if config.twilio_from:
        providers.append(TwilioProvider(Channel.SMS, client, config.twilio_from))
    if config.twilio_whatsapp_from:
        providers.append(TwilioProvider(Channel.WHATSAPP, client, config.twilio_whatsapp_from))
    return TwilioChannels(client, providers)
