"""Where the Go reference is wrong, and what this service promises instead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from notify.core.clock import ManualClock
from tests.support import ConnectStream, ServerThread, dev_auth, notify_body, running_server


def inbox(
    server: ServerThread,
    http: httpx.Client,
    user: str = "user-alice",
    tenant: str = "acme",
    **body: object,
) -> dict:
    response = http.post(
        server.client_url("GetNotifications"), headers=dev_auth(user, tenant), json=body
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def open_stream(server: ServerThread, http: httpx.Client) -> Iterator[object]:
    streams: list[ConnectStream] = []

    def opener(user: str = "user-alice", tenant: str = "acme") -> ConnectStream:
        stream = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(user, tenant), {})
        streams.append(stream)
        assert "heartbeat" in stream.next()  # the handshake: the session is registered
        return stream

    yield opener
    for stream in streams:
        stream.close()


def next_notification(stream: ConnectStream) -> dict:
    while True:
        event = stream.next()
        if "notification" in event:
            return dict(event["notification"]["notification"])


def test_one_row_per_tenant_user_channel(server: ServerThread, http: httpx.Client) -> None:
    body = notify_body(
        "multi",
        "user-alice",
        "user-alice",
        "user-bob",
        channels=["DELIVERY_CHANNEL_IN_APP", "DELIVERY_CHANNEL_EMAIL", "DELIVERY_CHANNEL_IN_APP"],
    )
    response = http.post(server.internal_url(), json=body).json()
    # In-app has no live stream and email has no provider: all four rows pending.
    assert response == {"delivered": 0, "pending": 4, "failed": 0}
    # Every channel's rows: the default listing is the in-app inbox.
    every = {"filter": {"channels": ["DELIVERY_CHANNEL_IN_APP", "DELIVERY_CHANNEL_EMAIL"]}}
    rows = inbox(server, http, **every)["notifications"]
    assert sorted(r["channel"] for r in rows) == [
        "DELIVERY_CHANNEL_EMAIL",
        "DELIVERY_CHANNEL_IN_APP",
    ]
    assert len(inbox(server, http, "user-bob", **every)["notifications"]) == 2


def test_empty_channels_means_in_app(server: ServerThread, http: httpx.Client) -> None:
    http.post(server.internal_url(), json=notify_body("default", channels=[]))
    rows = inbox(server, http)["notifications"]
    assert [r["channel"] for r in rows] == ["DELIVERY_CHANNEL_IN_APP"]


def test_retry_creates_and_pushes_nothing(
    server: ServerThread, http: httpx.Client, open_stream
) -> None:  # type: ignore[no-untyped-def]
    stream = open_stream()
    first = http.post(server.internal_url(), json=notify_body("once")).json()
    assert first == {"delivered": 1, "pending": 0, "failed": 0}
    assert next_notification(stream)["notificationId"] == "once"
    retry = http.post(server.internal_url(), json=notify_body("once", title="changed")).json()
    assert retry == first
    http.post(server.internal_url(), json=notify_body("after"))
    # The retry pushed nothing: the next frame is the later notification.
    assert next_notification(stream)["notificationId"] == "after"
    rows = inbox(server, http)["notifications"]
    assert [r["notificationId"] for r in rows] == ["after", "once"]
    assert rows[1]["title"] == "title once"


def test_retry_after_read_reports_delivered(server: ServerThread, http: httpx.Client) -> None:
    http.post(server.internal_url(), json=notify_body("read-then-retry"))
    row = inbox(server, http)["notifications"][0]
    http.post(server.client_url("AckNotification"), headers=dev_auth(), json={"id": row["id"]})
    retry = http.post(server.internal_url(), json=notify_body("read-then-retry")).json()
    assert retry == {"delivered": 1, "pending": 0, "failed": 0}
    assert inbox(server, http)["notifications"][0]["status"] == "DELIVERY_STATUS_READ"


def test_push_is_scoped_to_tenant_and_user(
    server: ServerThread, http: httpx.Client, open_stream
) -> None:  # type: ignore[no-untyped-def]
    acme_alice = open_stream("user-alice", "acme")
    globex_alice = open_stream("user-alice", "globex")
    acme_bob = open_stream("user-bob", "acme")
    assert (
        http.post(server.internal_url(), json=notify_body("for-acme", tenant="acme")).json()[
            "delivered"
        ]
        == 1
    )
    assert (
        http.post(server.internal_url(), json=notify_body("for-globex", tenant="globex")).json()[
            "delivered"
        ]
        == 1
    )
    http.post(server.internal_url(), json=notify_body("for-bob", "user-bob", tenant="acme"))
    assert next_notification(acme_alice)["notificationId"] == "for-acme"
    assert next_notification(globex_alice)["notificationId"] == "for-globex"
    assert next_notification(acme_bob)["notificationId"] == "for-bob"
    # Nothing crossed over: each stream's next frame is its own next notification.
    http.post(server.internal_url(), json=notify_body("acme-2", tenant="acme"))
    http.post(server.internal_url(), json=notify_body("globex-2", tenant="globex"))
    assert next_notification(acme_alice)["notificationId"] == "acme-2"
    assert next_notification(globex_alice)["notificationId"] == "globex-2"
    assert [r["notificationId"] for r in inbox(server, http, tenant="globex")["notifications"]] == [
        "globex-2",
        "for-globex",
    ]


def test_delivered_only_when_a_live_stream_got_it(
    server: ServerThread, http: httpx.Client, open_stream
) -> None:  # type: ignore[no-untyped-def]
    offline = http.post(server.internal_url(), json=notify_body("offline")).json()
    assert offline == {"delivered": 0, "pending": 1, "failed": 0}
    stream = open_stream()
    online = http.post(server.internal_url(), json=notify_body("online")).json()
    assert online == {"delivered": 1, "pending": 0, "failed": 0}
    pushed = next_notification(stream)
    assert pushed["status"] == "DELIVERY_STATUS_DELIVERED"
    rows = {r["notificationId"]: r for r in inbox(server, http)["notifications"]}
    assert rows["offline"]["status"] == "DELIVERY_STATUS_PENDING"
    assert int(rows["offline"].get("deliveredAtMs", "0")) == 0
    assert rows["online"]["status"] == "DELIVERY_STATUS_DELIVERED"
    assert rows["online"]["deliveredAtMs"] == pushed["deliveredAtMs"]
    assert int(rows["online"]["deliveredAtMs"]) >= int(rows["online"]["createdAtMs"])
    # Unread counts every row below READ, pending and delivered alike.
    assert inbox(server, http)["unreadCount"] == 2


def test_paging_never_skips_or_repeats_rows_sharing_a_millisecond(
    store_overrides: dict[str, Any], http: httpx.Client
) -> None:
    # The clock stands still: every row is created in the same millisecond.
    with running_server(clock=ManualClock(1_748_390_400_000), **store_overrides) as server:
        sent = [f"tie-{i:02d}" for i in range(45)]
        for notification_id in sent:
            assert (
                http.post(server.internal_url(), json=notify_body(notification_id)).status_code
                == 200
            )
        seen: list[dict] = []
        cursor = ""
        pages = 0
        while True:
            page = inbox(server, http, limit=7, cursor=cursor)
            seen.extend(page["notifications"])
            pages += 1
            assert page["unreadCount"] == 45
            cursor = page["nextCursor"]
            if not cursor:
                break
        assert pages == 7
        assert sorted(r["notificationId"] for r in seen) == sorted(sent)
        assert len({r["id"] for r in seen}) == 45
        assert {r["createdAtMs"] for r in seen} == {"1748390400000"}
        # Newest first: within one millisecond, the later-created row (larger id) first.
        assert [r["id"] for r in seen] == sorted((r["id"] for r in seen), reverse=True)
        assert [r["notificationId"] for r in seen] == list(reversed(sent))


def test_unread_only_and_limits(server: ServerThread, http: httpx.Client) -> None:
    for i in range(130):
        http.post(server.internal_url(), json=notify_body(f"n-{i}"))
    assert len(inbox(server, http)["notifications"]) == 20
    assert len(inbox(server, http, limit=-5)["notifications"]) == 20
    assert len(inbox(server, http, limit=1000)["notifications"]) == 100
    newest = inbox(server, http, limit=3)["notifications"]
    http.post(
        server.client_url("AckNotification"), headers=dev_auth(), json={"id": newest[0]["id"]}
    )
    again = http.post(
        server.client_url("AckNotification"), headers=dev_auth(), json={"id": newest[0]["id"]}
    )
    assert again.status_code == 200  # repeating an ack is a no-op
    unread = inbox(server, http, limit=3, unreadOnly=True)
    assert [r["id"] for r in unread["notifications"]] == [
        newest[1]["id"],
        newest[2]["id"],
        unread["notifications"][2]["id"],
    ]
    assert newest[0]["id"] not in {r["id"] for r in unread["notifications"]}
    assert unread["unreadCount"] == 129
    read = inbox(server, http, limit=1)["notifications"][0]
    assert read["status"] == "DELIVERY_STATUS_READ"
