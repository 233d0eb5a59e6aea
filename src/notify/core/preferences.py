"""Delivery preferences: which (category, channel) pairs a user receives. Pure values, no I/O.

The most specific rule wins: the user's (category, channel), then (category,
any), (any, channel), (any, any); then the tenant's defaults in the same
order; then enabled. A category the tenant marks required (security alerts)
skips the user's rules, so nobody can opt out of it; the tenant's own
defaults still apply to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from notify.core.model import Channel


@dataclass(frozen=True, slots=True)
class PreferenceRule:
    """``category`` "" is every category; ``channel`` UNSPECIFIED is every channel."""

    category: str
    channel: Channel
    enabled: bool

    @property
    def key(self) -> tuple[str, Channel]:
        return (self.category, self.channel)


@dataclass(frozen=True, slots=True)
class TenantPreferences:
    defaults: tuple[PreferenceRule, ...] = ()
    required_categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Preferences:
    """A user's rules and their tenant's: everything ``enabled`` needs."""

    rules: tuple[PreferenceRule, ...] = ()
    tenant: TenantPreferences = TenantPreferences()

    def enabled(self, category: str, channel: Channel) -> bool:
        if category not in self.tenant.required_categories:
            found = _decide(self.rules, category, channel)
            if found is not None:
                return found
        found = _decide(self.tenant.defaults, category, channel)
        return True if found is None else found


def _decide(rules: Sequence[PreferenceRule], category: str, channel: Channel) -> bool | None:
    by_key = {rule.key: rule.enabled for rule in rules}
    for key in (
        (category, channel),
        (category, Channel.UNSPECIFIED),
        ("", channel),
        ("", Channel.UNSPECIFIED),
    ):
        found = by_key.get(key)
        if found is not None:
            return found
    return None


def merge_rules(
    current: Iterable[PreferenceRule], changes: Iterable[PreferenceRule], *, replace: bool
) -> tuple[PreferenceRule, ...]:
    """UpdatePreferences: a later rule for the same (category, channel) replaces the earlier.

    The answer is sorted by key, so every driver stores and returns the same order.
    """
    merged: dict[tuple[str, Channel], PreferenceRule] = {}
    if not replace:
        merged.update((rule.key, rule) for rule in current)
    merged.update((rule.key, rule) for rule in changes)
    return tuple(merged[key] for key in sorted(merged))


def normalise_rules(rules: Iterable[PreferenceRule]) -> tuple[PreferenceRule, ...]:
    """One rule per key (the last given wins), sorted by key."""
    return merge_rules((), rules, replace=True)
