"""Both producer clients against a real notifyd over real sockets."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from notify_client import (
    Action,
    AsyncNotifyClient,
    NotifyClient,
    RetryPolicy,
    Unauthenticated,
)

from notify.core.clock import ManualClock
from notify.core.ratelimit import Rate
from tests.sdk.flaky import FakeTime
from tests.support import (
    CLIENT_SVC,
    INTERNAL_TOKEN,
    JWT_SECRET,
    ConnectStream,
    ServerThread,
    dev_auth,
    running_server,
)


@pytest.fixture
def notifyd(server: ServerThread) -> ServerThread:
    """The dev-mode server of conftest, once per store driver."""
    return server


def internal(server: ServerThread) -> str:
    return f"http://127.0.0.1:{server.ports.internal}"


def inbox(server: ServerThread, user: str, tenant: str = "acme") -> dict[str, object]:
    answer = httpx.post(
        server.client_url("GetNotifications"), headers=dev_auth(user, tenant), json={}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture
def stream(notifyd: ServerThread) -> Iterator[ConnectStream]:
    """A live StreamEvents of user-alice@acme, past its handshake."""
    with httpx.Client(timeout=10) as http:
        live = ConnectStream(
            http,
            f"http://127.0.0.1:{notifyd.ports.client}{CLIENT_SVC}/StreamEvents",
            dev_auth(),
            {},
        )
        try:
            assert "heartbeat" in live.next()
            yield live
        finally:
            live.close()


def test_sync_notify_reaches_a_live_stream_and_the_inbox(
    notifyd: ServerThread, stream: ConnectStream
) -> None:
    with NotifyClient(internal(notifyd)) as client:
        result = client.notify(
            tenant_id="acme",
            user_ids=["user-alice"],
            title="New comment",
            body="Bob commented on Task 42",
            subject_ref="task:42",
            subject_type="task",
            channels=["in_app"],
            severity="warning",
            category="comments",
            actions=[Action("open", "Open", "/tasks/42", primary=True)],
            data={"task": 42, "who": ["bob"]},
            tags=["tasks"],
            image_url="https://example.com/a.png",
            expires_in=3600,
            collapse_key="task:42",
        )
    assert (result.delivered, result.pending, result.failed) == (1, 0, 0)
    pushed = stream.next()["notification"]["notification"]
    assert pushed["notificationId"] == result.notification_id
    assert pushed["title"] == "New comment"
    assert pushed["subjectRef"] == "task:42"
    [row] = inbox(notifyd, "user-alice")["notifications"]  # type: ignore[misc]
    assert row["notificationId"] == result.notification_id
    assert row["body"] == "Bob commented on Task 42"


async def test_async_notify_and_its_retry_is_a_no_op(
    notifyd: ServerThread, stream: ConnectStream
) -> None:
    async with AsyncNotifyClient(internal(notifyd)) as client:
        first = await client.notify(tenant_id="acme", user_ids="user-alice", title="once")
        again = await client.notify(
            tenant_id="acme",
            user_ids="user-alice",
            title="once",
            notification_id=first.notification_id,
        )
        after = await client.notify(tenant_id="acme", user_ids="user-alice", title="after")
    assert (first.delivered, first.pending) == (1, 0)
    # The same idempotency key answers as before, and creates and pushes nothing.
    assert again == first
    assert stream.next()["notification"]["notification"]["title"] == "once"
    assert stream.next()["notification"]["notification"]["title"] == "after"
    rows = inbox(notifyd, "user-alice")["notifications"]
    assert [r["notificationId"] for r in rows] == [after.notification_id, first.notification_id]  # type: ignore[attr-defined]


def test_sync_publish_data_change_reaches_the_stream(
    notifyd: ServerThread, stream: ConnectStream
) -> None:
    with NotifyClient(internal(notifyd)) as client:
        result = client.publish_data_change(
            tenant_id="acme", user_ids=["user-alice"], subject_ref="task:42", subject_type="task"
        )
    assert result.sessions == 1
    change = stream.next()["dataChange"]
    assert change == {
        "idempotencyKey": result.idempotency_key,
        "subjectRef": "task:42",
        "subjectType": "task",
    }


async def test_async_publish_data_change(notifyd: ServerThread, stream: ConnectStream) -> None:
    async with AsyncNotifyClient(internal(notifyd)) as client:
        result = await client.publish_data_change(
            tenant_id="acme", user_ids="user-alice", subject_ref="doc:1", idempotency_key="dc-1"
        )
    assert result == type(result)("dc-1", 1)
    assert stream.next()["dataChange"]["idempotencyKey"] == "dc-1"


def test_rate_limit_hint_from_a_real_server_is_waited_out() -> None:
    """The real limiter answers RESOURCE_EXHAUSTED + hint; the SDK waits exactly that, then passes.

    Both clocks are fakes: the SDK's sleep advances the server's limiter clock.
    """
    server_clock = ManualClock()
    fake = FakeTime()

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        server_clock.advance(seconds)

    with (
        running_server(clock=server_clock, rate_limit_producer=Rate(1, 60.0)) as limited,
        NotifyClient(
            internal(limited),
            retry=RetryPolicy(deadline=120.0),
            clock=fake.monotonic,
            sleep=sleep,
            rng=random.Random(1),
        ) as client,
    ):
        client.notify(tenant_id="acme", user_ids="user-alice", title="first")
        second = client.notify(tenant_id="acme", user_ids="user-alice", title="second")
        assert fake.sleeps == [60.0]  # one token a minute: the server's RetryInfo
        assert second.pending == 1
        assert len(inbox(limited, "user-alice")["notifications"]) == 2  # type: ignore[arg-type]


def test_internal_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with running_server(
        dev_mode=False, jwt_secret=JWT_SECRET, internal_token=INTERNAL_TOKEN
    ) as secured:
        monkeypatch.delenv("NOTIFY_INTERNAL_TOKEN", raising=False)
        with NotifyClient(internal(secured)) as client, pytest.raises(Unauthenticated) as caught:
            client.notify(tenant_id="acme", user_ids="user-alice", title="x")
        assert caught.value.code.value == "unauthenticated"
        assert caught.value.attempts == 1
        monkeypatch.setenv("NOTIFY_INTERNAL_TOKEN", INTERNAL_TOKEN)
        with NotifyClient(internal(secured)) as client:
            assert client.notify(tenant_id="acme", user_ids="user-alice", title="x").pending == 1
