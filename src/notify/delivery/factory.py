"""Builds the external providers the configuration asks for.

Email runs when ``NOTIFY_EMAIL_SMTP_URL`` is set, webhooks when
``NOTIFY_WEBHOOK_SECRET`` is, SMS and WhatsApp when ``NOTIFY_TWILIO_*`` say
so; a channel without a provider keeps its rows queued (PENDING) until one
is configured.
"""

from __future__ import annotations

from notify.config import Config
from notify.core.clock import Clock
from notify.core.ports import Provider
from notify.delivery.email import EmailProvider, EmailRenderer, parse_smtp_url
from notify.delivery.twilio import twilio_channels
from notify.delivery.webhook import WebhookProvider


class ExternalProviders:
    def __init__(self, config: Config, clock: Clock) -> None:
        self.providers: list[Provider] = []
        self._webhook: WebhookProvider | None = None
        if config.email_smtp_url:
            renderer = EmailRenderer(
                config.email_from,
                preferences_url=config.preferences_url,
                templates=config.email_templates,
            )
            self.providers.append(
                EmailProvider(parse_smtp_url(config.email_smtp_url), renderer, clock)
            )
        if config.webhook_secret:
            self._webhook = WebhookProvider(
                config.webhook_secret, clock, allow_private=config.webhook_allow_private
            )
            self.providers.append(self._webhook)
        self._twilio = twilio_channels(config, clock)  # SMS and WhatsApp, when configured
        self.providers.extend(self._twilio.providers)

    async def close(self) -> None:
        if self._webhook is not None:
            await self._webhook.close()
        await self._twilio.close()
