"""Retries over real sockets: a tiny HTTP server fails on purpose in front of a real notifyd.

Time is a fake monotonic clock that moves only when the SDK sleeps, so the
waits are asserted exactly and the tests never really sleep.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from notify_client import (
    AsyncNotifyClient,
    InvalidArgument,
    NotifyClient,
    ResourceExhausted,
    RetryPolicy,
    Unavailable,
)
from notify_client.proto import pb

from tests.sdk.flaky import FakeTime, Script, flaky_server
from tests.support import ServerThread, dev_auth, running_server

POLICY = RetryPolicy(deadline=5.0, max_attempts=6, initial_backoff=0.05, max_backoff=2.0)


@pytest.fixture(scope="module")
def notifyd() -> Iterator[ServerThread]:
    with running_server() as server:
        yield server


def upstream(server: ServerThread) -> str:
    return f"http://127.0.0.1:{server.ports.internal}"


def sync_client(url: str, fake: FakeTime, **kwargs: object) -> NotifyClient:
    return NotifyClient(
        url,
        retry=POLICY,
        clock=fake.monotonic,
        sleep=fake.sleep,
        rng=random.Random(7),
        **kwargs,  # type: ignore[arg-type]
    )


def inbox(server: ServerThread, user: str) -> list[dict[str, object]]:
    answer = httpx.post(
        server.client_url("GetNotifications"), headers=dev_auth(user, "acme"), json={}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json().get("notifications", []))


def test_unavailable_twice_then_ok_reuses_the_generated_key(notifyd: ServerThread) -> None:
    script = Script(["unavailable", "unavailable"], upstream=upstream(notifyd))
    fake = FakeTime()
    with flaky_server(script) as url, sync_client(url, fake) as client:
        result = client.notify(tenant_id="acme", user_ids="user-retry-sync", title="hello")

    assert len(script.attempts) == 3
    keys = {attempt.request.notification_id for attempt in script.attempts}
    assert keys == {result.notification_id}
    assert len(result.notification_id) == 32
    # The very same request each time, not just the same key.
    assert len({attempt.request.SerializeToString() for attempt in script.attempts}) == 1
    assert (result.delivered, result.pending, result.failed) == (0, 1, 0)
    # Full jitter: each wait lies between 0 and the doubling cap.
    assert len(fake.sleeps) == 2
    assert 0 <= fake.sleeps[0] <= 0.05
    assert 0 <= fake.sleeps[1] <= 0.10
    # The server stored exactly one row, under the SDK's key.
    [row] = inbox(notifyd, "user-retry-sync")
    assert row["notificationId"] == result.notification_id
    assert row["title"] == "hello"


async def test_async_client_unavailable_twice_then_ok(notifyd: ServerThread) -> None:
    script = Script(["unavailable", "unavailable"], upstream=upstream(notifyd))
    fake = FakeTime()
    with flaky_server(script) as url:
        async with AsyncNotifyClient(
            url, retry=POLICY, clock=fake.monotonic, sleep=fake.async_sleep
        ) as client:
            result = await client.notify(
                tenant_id="acme", user_ids=["user-retry-async"], title="hi"
            )
    assert [a.request.notification_id for a in script.attempts] == [result.notification_id] * 3
    assert len(fake.sleeps) == 2
    [row] = inbox(notifyd, "user-retry-async")
    assert row["notificationId"] == result.notification_id


def test_a_caller_key_is_sent_as_given(notifyd: ServerThread) -> None:
    script = Script(["unavailable"], upstream=upstream(notifyd))
    fake = FakeTime()
    with flaky_server(script) as url, sync_client(url, fake) as client:
        result = client.notify(
            tenant_id="acme", user_ids="user-own-key", title="x", notification_id="order-7"
        )
    assert result.notification_id == "order-7"
    assert [a.request.notification_id for a in script.attempts] == ["order-7", "order-7"]


def test_retry_info_hint_is_honoured(notifyd: ServerThread) -> None:
    script = Script(["exhausted"], upstream=upstream(notifyd), retry_info_seconds=1.5)
    fake = FakeTime()
    with flaky_server(script) as url, sync_client(url, fake) as client:
        client.notify(tenant_id="acme", user_ids="user-hint", title="x")
    assert fake.sleeps == [1.5]
    assert len(script.attempts) == 2


def test_retry_after_header_is_honoured_without_retry_info(notifyd: ServerThread) -> None:
    script = Script(["exhausted"], upstream=upstream(notifyd), retry_after_header="3")
    fake = FakeTime()
    with flaky_server(script) as url, sync_client(url, fake) as client:
        client.notify(tenant_id="acme", user_ids="user-header", title="x")
    assert fake.sleeps == [3.0]


def test_a_hint_past_the_deadline_fails_at_once() -> None:
    script = Script(["exhausted"], retry_info_seconds=10.0, retry_after_header="10")
    fake = FakeTime()
    with (
        flaky_server(script) as url,
        sync_client(url, fake) as client,
        pytest.raises(ResourceExhausted) as caught,
    ):
        client.notify(tenant_id="acme", user_ids="u", title="x")
    assert caught.value.retry_after == 10.0
    assert caught.value.attempts == 1
    assert caught.value.code.value == "resource_exhausted"
    assert fake.sleeps == []


def test_other_errors_are_not_retried() -> None:
    script = Script(["invalid"])
    fake = FakeTime()
    with (
        flaky_server(script) as url,
        sync_client(url, fake) as client,
        pytest.raises(InvalidArgument, match="title is required"),
    ):
        client.notify(tenant_id="acme", user_ids="u", title="")
    assert len(script.attempts) == 1
    assert fake.sleeps == []


def test_attempts_are_bounded_and_every_wait_fits_the_deadline() -> None:
    script = Script(["unavailable"] * 50)
    fake = FakeTime()
    start = fake.now
    with (
        flaky_server(script) as url,
        sync_client(url, fake) as client,
        pytest.raises(Unavailable) as caught,
    ):
        client.notify(tenant_id="acme", user_ids="u", title="x", deadline=0.4)
    assert caught.value.attempts == len(script.attempts) <= POLICY.max_attempts
    assert fake.now - start < 0.4
    # Each attempt's own budget is what is left of the call's deadline.
    budgets = [int(a.headers["connect-timeout-ms"]) for a in script.attempts]
    assert budgets[0] in (399, 400)  # 400 ms, floored: never past the deadline
    assert budgets == sorted(budgets, reverse=True)


def test_data_change_retries_reuse_the_idempotency_key(notifyd: ServerThread) -> None:
    script = Script(["unavailable", "unavailable"], upstream=upstream(notifyd))
    fake = FakeTime()
    with flaky_server(script) as url, sync_client(url, fake) as client:
        result = client.publish_data_change(
            tenant_id="acme", user_ids=["user-dc"], subject_ref="task:1"
        )
    assert result.sessions == 0
    requests = [a.request for a in script.attempts]
    assert all(isinstance(r, pb.PublishDataChangeRequest) for r in requests)
    assert {r.idempotency_key for r in requests} == {result.idempotency_key}  # type: ignore[union-attr]
    assert len(requests) == 3


def test_token_from_the_environment_or_the_argument(
    notifyd: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_INTERNAL_TOKEN", "from-env")
    script = Script([], upstream=upstream(notifyd))
    fake = FakeTime()
    with flaky_server(script) as url:
        with sync_client(url, fake) as client:
            client.notify(tenant_id="acme", user_ids="u-env", title="x")
        with sync_client(url, fake, token="from-arg") as client:
            client.notify(tenant_id="acme", user_ids="u-env", title="x")
    tokens = [a.headers["x-notify-internal-token"] for a in script.attempts]
    assert tokens == ["from-env", "from-arg"]
