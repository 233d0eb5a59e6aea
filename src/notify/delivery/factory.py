"""Builds the external providers the configuration asks for.

Email runs when ``NOTIFY_EMAIL_SMTP_URL`` is set, webhooks when
``NOTIFY_WEBHOOK_SECRET`` is, SMS and WhatsApp when ``NOTIFY_TWILIO_*`` say
so; the push channels run when a DeviceSender for one of their device types
is configured (Web Push with ``NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY``, FCM with
``NOTIFY_FCM_CREDENTIALS_FILE``, APNs with ``NOTIFY_APNS_KEY_FILE``):
``WEB_PUSH`` over browser senders, ``MOBILE_PUSH`` over Android and iOS
senders, each fanning out to every device of the user. A channel without a
provider keeps its rows queued (PENDING) until one is configured.
"""

from __future__ import annotations

from collections.abc import Callable

from notify.config import Config
from notify.core.clock import Clock
from notify.core.model import Channel
from notify.core.ports import DeviceSender, Provider
from notify.delivery.apns import apns_sender
from notify.delivery.email import EmailProvider, EmailRenderer, parse_smtp_url
from notify.delivery.fcm import fcm_sender
from notify.delivery.push import CHANNEL_DEVICE_TYPES, DeviceDirectory, PushProvider
from notify.delivery.twilio import twilio_channels
from notify.delivery.webhook import WebhookProvider
from notify.delivery.webpush import webpush_sender
from notify.metrics import Metrics

# Every DeviceSender builder: None when its provider is not configured, a
# ConfigError naming the variable when half configured. One line per sender.
SENDERS: tuple[Callable[[Config, Clock], DeviceSender | None], ...] = (
    webpush_sender,
    fcm_sender,
    apns_sender,
)


class ExternalProviders:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        *,
        devices: DeviceDirectory,
        metrics: Metrics,
    ) -> None:
        self.providers: list[Provider] = []
        self._webhook: WebhookProvider | None = None
        self._push: list[PushProvider] = []
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
        senders = [s for build in SENDERS if (s := build(config, clock)) is not None]
        for channel in (Channel.WEB_PUSH, Channel.MOBILE_PUSH):
            mine = [s for s in senders if s.device_types <= CHANNEL_DEVICE_TYPES[channel]]
            if mine:
                push = PushProvider(
                    channel, mine, devices, clock, results=metrics.push_device_results
                )
                self._push.append(push)
                self.providers.append(push)

    async def close(self) -> None:
        if self._webhook is not None:
            await self._webhook.close()
        await self._twilio.close()
        for push in self._push:
            await push.close()
