"""Preferences over the wire, on both drivers: rules, tenant defaults, required categories,
and Notify skipping what they turn off (idempotency holds across a preference change)."""

from __future__ import annotations

import httpx

from tests.support import ServerThread, dev_auth, notify_body

IN_APP, EMAIL = "DELIVERY_CHANNEL_IN_APP", "DELIVERY_CHANNEL_EMAIL"


def rule(category: str, channel: str, enabled: bool) -> dict[str, object]:
    return {
        "category": category,
        "channel": channel or "DELIVERY_CHANNEL_UNSPECIFIED",
        "enabled": enabled,
    }


def notify(server: ServerThread, http: httpx.Client, nid: str, category: str, *users: str) -> dict:
    body = notify_body(nid, *users, channels=[IN_APP, EMAIL], category=category)
    response = http.post(server.internal_url(), json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def stored(server: ServerThread, http: httpx.Client, user: str) -> list[tuple[str, str]]:
    response = http.post(
        server.client_url("GetNotifications"),
        headers=dev_auth(user),
        json={"limit": 100, "filter": {"channels": [IN_APP, EMAIL]}},
    )
    assert response.status_code == 200, response.text
    rows = response.json().get("notifications", [])
    return sorted((r["notificationId"], r["channel"]) for r in rows)


def test_rules_defaults_and_required_categories(server: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        server.internal_url("SetTenantPreferences"),
        json={
            "tenantId": "acme",
            "defaults": [rule("", EMAIL, False)],
            "requiredCategories": ["security"],
        },
    )
    assert response.status_code == 200, response.text
    response = http.post(
        server.client_url("UpdatePreferences"),
        headers=dev_auth("user-alice"),
        json={"rules": [rule("marketing", "", False), rule("", EMAIL, True)]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["preferences"] == {
        "rules": [rule("", EMAIL, True), rule("marketing", "", False)],
        "tenantDefaults": [rule("", EMAIL, False)],
        "requiredCategories": ["security"],
    }

    # Alice turned marketing off everywhere; Bob has no rules, so the tenant's
    # default keeps his email off.
    assert notify(server, http, "m-1", "marketing", "user-alice", "user-bob")["skipped"] == 3
    # Security is required: Alice's rules are ignored, the tenant's default is not.
    assert notify(server, http, "s-1", "security", "user-alice", "user-bob")["skipped"] == 2
    # Billing: Alice's own rule turns her email on.
    assert notify(server, http, "b-1", "billing", "user-alice").get("skipped", 0) == 0
    assert stored(server, http, "user-alice") == [
        ("b-1", EMAIL),
        ("b-1", IN_APP),
        ("s-1", IN_APP),
    ]
    assert stored(server, http, "user-bob") == [("m-1", IN_APP), ("s-1", IN_APP)]

    got = http.post(server.client_url("GetPreferences"), headers=dev_auth("user-bob"), json={})
    assert got.json()["preferences"] == {
        "rules": [],
        "tenantDefaults": [rule("", EMAIL, False)],
        "requiredCategories": ["security"],
    }


def test_merge_replace_and_validation(server: ServerThread, http: httpx.Client) -> None:
    url = server.client_url("UpdatePreferences")
    http.post(url, headers=dev_auth(), json={"rules": [rule("a", IN_APP, False)]})
    both = [rule("a", IN_APP, True), rule("b", "", False)]
    merged = http.post(url, headers=dev_auth(), json={"rules": both})
    assert merged.json()["preferences"]["rules"] == [rule("a", IN_APP, True), rule("b", "", False)]
    replaced = http.post(
        url, headers=dev_auth(), json={"rules": [rule("c", EMAIL, False)], "replace": True}
    )
    assert replaced.json()["preferences"]["rules"] == [rule("c", EMAIL, False)]
    bad = http.post(url, headers=dev_auth(), json={"rules": [rule("Bad Category", "", False)]})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_argument"
    assert "rules[0].category" in bad.json()["message"]
    bad = http.post(
        server.internal_url("SetTenantPreferences"),
        json={"tenantId": "acme", "requiredCategories": [""]},
    )
    assert bad.json()["code"] == "invalid_argument"


def test_a_retry_after_a_preference_change_creates_a_skipped_row_once(
    server: ServerThread, http: httpx.Client
) -> None:
    url = server.client_url("UpdatePreferences")
    http.post(url, headers=dev_auth(), json={"rules": [rule("digest", IN_APP, False)]})
    assert notify(server, http, "d-1", "digest", "user-alice")["skipped"] == 1
    http.post(url, headers=dev_auth(), json={"rules": [rule("digest", IN_APP, True)]})
    first = notify(server, http, "d-1", "digest", "user-alice")
    again = notify(server, http, "d-1", "digest", "user-alice")
    assert first.get("skipped", 0) == again.get("skipped", 0) == 0
    assert first["pending"] == again["pending"] == 2  # in-app and email, stored once each
    assert stored(server, http, "user-alice") == [("d-1", EMAIL), ("d-1", IN_APP)]
    # Turned off again, a retry skips nothing it already stored twice and deletes nothing.
    http.post(url, headers=dev_auth(), json={"rules": [rule("digest", IN_APP, False)]})
    third = notify(server, http, "d-1", "digest", "user-alice")
    assert (third["skipped"], third["pending"]) == (1, 1)
    assert stored(server, http, "user-alice") == [("d-1", EMAIL), ("d-1", IN_APP)]
