"""Keyword arguments -> NotifyRequest: every field, and what is refused before the wire."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from connectrpc.code import Code
from google.protobuf.json_format import MessageToDict
from notify_client import Action, Unavailable
from notify_client.errors import InvalidArgument
from notify_client.payload import data_change_request, notify_request
from notify_client.retry import Attempts, RetryPolicy

from tests.sdk.flaky import FakeTime

NOW = 1_700_000_000.0


def test_every_field_is_encoded() -> None:
    request = notify_request(
        tenant_id="acme",
        user_ids=["u1", "u2"],
        title="t",
        body="b",
        notification_id="n-1",
        channels=["in_app", "email"],
        subject_ref="task:1",
        subject_type="task",
        severity="error",
        category="billing.invoice",
        actions=[
            Action("pay", "Pay", "https://x.test/pay", primary=True),
            Action("later", "Later"),
        ],
        data={"amount": 12.5, "lines": [{"sku": "a"}], "paid": False, "note": None},
        tags=["money", "urgent"],
        image_url="https://x.test/i.png",
        expires_in=timedelta(hours=1),
        deliver_at=datetime(2030, 1, 1, tzinfo=UTC),
        collapse_key="invoice:9",
        addresses={"u1": {"email": "u1@x.test"}},
        now=lambda: NOW,
    )
    assert MessageToDict(request) == {
        "tenantId": "acme",
        "notificationId": "n-1",
        "userIds": ["u1", "u2"],
        "channels": ["DELIVERY_CHANNEL_IN_APP", "DELIVERY_CHANNEL_EMAIL"],
        "subjectRef": "task:1",
        "subjectType": "task",
        "title": "t",
        "body": "b",
        "addresses": {"u1": {"byChannel": {"email": "u1@x.test"}}},
        "severity": "SEVERITY_ERROR",
        "category": "billing.invoice",
        "actions": [
            {"id": "pay", "label": "Pay", "url": "https://x.test/pay", "primary": True},
            {"id": "later", "label": "Later"},
        ],
        "data": {"amount": 12.5, "lines": [{"sku": "a"}], "paid": False, "note": None},
        "tags": ["money", "urgent"],
        "imageUrl": "https://x.test/i.png",
        "expiresAtMs": str(int((NOW + 3600) * 1000)),
        "deliverAtMs": "1893456000000",
        "collapseKey": "invoice:9",
    }


def test_defaults_a_fresh_key_and_one_user_as_a_string() -> None:
    a = notify_request(tenant_id="t", user_ids="user-1", title="x", now=lambda: NOW)
    b = notify_request(tenant_id="t", user_ids="user-1", title="x", now=lambda: NOW)
    assert list(a.user_ids) == ["user-1"]
    assert a.notification_id != b.notification_id
    assert not a.HasField("data")
    assert (a.severity, a.expires_at_ms, a.deliver_at_ms) == (0, 0, 0)


def test_expires_at_as_epoch_seconds() -> None:
    request = notify_request(
        tenant_id="t", user_ids="u", title="x", expires_at=NOW + 1.5, now=lambda: NOW
    )
    assert request.expires_at_ms == int(NOW * 1000) + 1500


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"expires_at": NOW, "expires_in": 5}, "not both"),
        ({"channels": ["pigeon"]}, "unknown channel 'pigeon'"),
        ({"severity": "fatal"}, "unknown severity 'fatal'"),
        ({"deliver_at": datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_refused_before_the_wire(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        notify_request(tenant_id="t", user_ids="u", title="x", now=lambda: NOW, **extra)  # type: ignore[arg-type]


def test_data_change_key() -> None:
    made = data_change_request(tenant_id="t", user_ids="u", subject_ref="s")
    given = data_change_request(tenant_id="t", user_ids=["u"], subject_ref="s", idempotency_key="k")
    assert len(made.idempotency_key) == 32
    assert given.idempotency_key == "k"


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5)
    assert [policy.backoff_cap(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_attempts_give_up_on_other_codes_and_at_the_limit() -> None:
    fake = FakeTime()
    attempts = Attempts(RetryPolicy(max_attempts=2), fake.monotonic, random.Random(0))
    attempts.timeout_ms()
    assert attempts.wait_before_retry(InvalidArgument("no")) is None
    assert attempts.wait_before_retry(Unavailable("later")) is not None
    attempts.timeout_ms()
    assert attempts.wait_before_retry(Unavailable("later")) is None
    assert Unavailable("x").code is Code.UNAVAILABLE
    assert str(Unavailable("down")) == "unavailable: down"
