"""send_nowait: never waits for the network, bounded, and everything queued is sent or reported."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from notify_client import (
    AsyncBackgroundSender,
    AsyncNotifyClient,
    BackgroundSender,
    InvalidArgument,
    NotifyClient,
    NotifyError,
    QueueFull,
)
from notify_client.proto import pb

from tests.sdk.flaky import Script, flaky_server
from tests.support import ServerThread, dev_auth, running_server


@pytest.fixture(scope="module")
def notifyd() -> Iterator[ServerThread]:
    with running_server() as server:
        yield server


def upstream(server: ServerThread) -> str:
    return f"http://127.0.0.1:{server.ports.internal}"


def stored_ids(server: ServerThread, user: str) -> set[str]:
    answer = httpx.post(
        server.client_url("GetNotifications"), headers=dev_auth(user), json={"limit": 100}
    )
    assert answer.status_code == 200
    return {row["notificationId"] for row in answer.json().get("notifications", [])}


def test_everything_queued_is_sent(notifyd: ServerThread) -> None:
    with NotifyClient(upstream(notifyd)) as client:
        sender = BackgroundSender(client, workers=2)
        keys = {
            sender.send_nowait(tenant_id="acme", user_ids="user-bg", title=f"n{i}")
            for i in range(30)
        }
        assert sender.close(timeout=30)
    assert (sender.sent, sender.failed) == (30, 0)
    assert stored_ids(notifyd, "user-bg") == keys


def test_a_full_queue_refuses_at_once(notifyd: ServerThread) -> None:
    script = Script(["hold"], upstream=upstream(notifyd))
    with flaky_server(script) as url, NotifyClient(url) as client:
        sender = BackgroundSender(client, workers=1, max_queue=1)
        first = sender.send_nowait(tenant_id="acme", user_ids="user-full", title="held")
        assert script.arrived.wait(10)  # the worker holds the first in flight
        second = sender.send_nowait(tenant_id="acme", user_ids="user-full", title="queued")
        with pytest.raises(QueueFull):
            sender.send_nowait(tenant_id="acme", user_ids="user-full", title="refused")
        assert not sender.flush(timeout=0)
        script.release.set()
        assert sender.close(timeout=30)
    assert sender.sent == 2
    assert stored_ids(notifyd, "user-full") == {first, second}


def test_a_failed_send_goes_to_on_error() -> None:
    script = Script(["invalid"])
    failures: list[tuple[pb.NotifyRequest, NotifyError]] = []
    reported = threading.Event()

    def on_error(request: pb.NotifyRequest, error: NotifyError) -> None:
        failures.append((request, error))
        reported.set()

    with flaky_server(script) as url, NotifyClient(url) as client:
        sender = BackgroundSender(client, on_error=on_error)
        key = sender.send_nowait(tenant_id="acme", user_ids="u", title="bad")
        assert sender.close(timeout=30)
    assert reported.is_set()
    [(request, error)] = failures
    assert request.notification_id == key
    assert isinstance(error, InvalidArgument)
    assert sender.failed == 1


async def test_async_sender_flushes_on_exit(notifyd: ServerThread) -> None:
    async with AsyncNotifyClient(upstream(notifyd)) as client:
        async with AsyncBackgroundSender(client, concurrency=4) as sender:
            keys = {
                sender.send_nowait(tenant_id="acme", user_ids="user-abg", title=f"n{i}")
                for i in range(12)
            }
        assert (sender.sent, sender.failed) == (12, 0)
    assert stored_ids(notifyd, "user-abg") == keys


async def test_async_sender_bounded_and_close_sends_the_queue(notifyd: ServerThread) -> None:
    async with AsyncNotifyClient(upstream(notifyd)) as client:
        sender = AsyncBackgroundSender(client, max_queue=1)  # not started: nothing drains
        key = sender.send_nowait(tenant_id="acme", user_ids="user-abound", title="x")
        with pytest.raises(QueueFull):
            sender.send_nowait(tenant_id="acme", user_ids="user-abound", title="y")
        await sender.aclose()
    assert stored_ids(notifyd, "user-abound") == {key}
