"""The providers this server runs, by channel, built once from configuration."""

from __future__ import annotations

from collections.abc import Iterable

from notify.core.model import Channel
from notify.core.ports import Provider


class ProviderRegistry:
    def __init__(self, providers: Iterable[Provider]) -> None:
        self._by_channel: dict[Channel, Provider] = {}
        for provider in providers:
            if provider.channel in self._by_channel:
                raise ValueError(f"two providers for {provider.channel.name}")
            self._by_channel[provider.channel] = provider

    def get(self, channel: Channel) -> Provider | None:
        """The channel's provider; None means its rows stay PENDING."""
        return self._by_channel.get(channel)

    @property
    def active_channels(self) -> tuple[Channel, ...]:
        """What an empty ``channels`` in Notify means: every channel with a provider."""
        return tuple(sorted(self._by_channel))
