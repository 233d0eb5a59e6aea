"""The most specific rule wins, the user's before the tenant's; required categories skip the
user's rules."""

from __future__ import annotations

from notify.core.model import Channel
from notify.core.preferences import (
    PreferenceRule,
    Preferences,
    TenantPreferences,
    merge_rules,
)

ANY = Channel.UNSPECIFIED


def test_specificity_order() -> None:
    prefs = Preferences(
        (
            PreferenceRule("", ANY, False),
            PreferenceRule("", Channel.EMAIL, True),
            PreferenceRule("news", ANY, False),
            PreferenceRule("news", Channel.WEBHOOK, True),
        )
    )
    assert prefs.enabled("news", Channel.WEBHOOK)  # (category, channel)
    assert not prefs.enabled("news", Channel.EMAIL)  # (category, any) beats (any, channel)
    assert prefs.enabled("billing", Channel.EMAIL)  # (any, channel)
    assert not prefs.enabled("billing", Channel.IN_APP)  # (any, any)


def test_tenant_defaults_then_enabled() -> None:
    tenant = TenantPreferences((PreferenceRule("", Channel.EMAIL, False),))
    assert not Preferences((), tenant).enabled("x", Channel.EMAIL)
    assert Preferences((), tenant).enabled("x", Channel.IN_APP)  # nothing says: enabled
    mine = Preferences((PreferenceRule("", Channel.EMAIL, True),), tenant)
    assert mine.enabled("x", Channel.EMAIL)  # any user rule beats every tenant rule


def test_required_categories_ignore_the_users_rules_only() -> None:
    tenant = TenantPreferences(
        (PreferenceRule("security", Channel.WEBHOOK, False),), required_categories=("security",)
    )
    prefs = Preferences((PreferenceRule("", ANY, False),), tenant)
    assert prefs.enabled("security", Channel.EMAIL)
    assert not prefs.enabled("security", Channel.WEBHOOK)  # the tenant's own default holds
    assert not prefs.enabled("other", Channel.EMAIL)


def test_merge_by_key_or_replace() -> None:
    a_off, a_on = PreferenceRule("a", ANY, False), PreferenceRule("a", ANY, True)
    b = PreferenceRule("", Channel.EMAIL, False)
    assert merge_rules([a_off], [b, a_on], replace=False) == (b, a_on)
    assert merge_rules([a_off], [b], replace=True) == (b,)
