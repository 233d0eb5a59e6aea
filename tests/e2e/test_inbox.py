"""The inbox over real sockets, on every store: payload, state, filters, live sync, time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from elloloop.notify.v1 import notify_pb2_grpc
from google.protobuf import json_format

from notify.core.clock import ManualClock
from tests.support import (
    ConnectStream,
    EndOfStream,
    ServerThread,
    dev_auth,
    eventually,
    notify_body,
    running_server,
)

DATA = {
    "task": {"id": 42, "title": "Ünïcödé ✓ 日本語 🎉", "labels": ["a", "b"], "done": False},
    "who": None,
    "ratio": 0.25,
    "filler": "x" * 14_000,
}
ACTIONS = [
    {"id": "open", "label": "Open", "url": "/tasks/42", "primary": True},
    {"id": "docs", "label": "Docs", "url": "https://docs.example.com/x?y=1#z"},
]


def rich_body(notification_id: str, *users: str, **extra: Any) -> dict[str, Any]:
    return notify_body(
        notification_id,
        *users,
        severity="SEVERITY_WARNING",
        category="comments",
        actions=ACTIONS,
        data=DATA,
        tags=["tasks", "urgent"],
        imageUrl="https://cdn.example.com/a.png",
        **extra,
    )


def call(
    server: ServerThread, http: httpx.Client, method: str, user: str = "user-alice", **body: Any
) -> httpx.Response:
    return http.post(server.client_url(method), headers=dev_auth(user), json=body)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def mark(
    server: ServerThread, http: httpx.Client, user: str = "user-alice", **body: Any
) -> httpx.Response:
    return call(server, http, "MarkNotifications", user, **body)


def listing(
    server: ServerThread, http: httpx.Client, user: str = "user-alice", **body: Any
) -> list[str]:
    page = ok(call(server, http, "GetNotifications", user, **body))
    return [row["notificationId"] for row in page["notifications"]]


def counts(server: ServerThread, http: httpx.Client, user: str = "user-alice") -> dict[str, int]:
    raw = ok(call(server, http, "GetCounts", user))["counts"]
    return {key: int(value) for key, value in raw.items()}


class Watch:
    """A Connect stream that sees everything, inbox sync events included."""

    def __init__(self, http: httpx.Client, server: ServerThread, user: str = "user-alice") -> None:
        self.stream = ConnectStream(
            http, server.client_url("StreamEvents"), dev_auth(user), {}, skip=("heartbeat",)
        )

    def next_of(self, kind: str) -> dict[str, Any]:
        while True:
            event = self.stream.next()
            if kind in event:
                return dict(event[kind])

    def close(self) -> None:
        self.stream.close()


@pytest.fixture
def watch(server: ServerThread) -> Iterator[Any]:
    opened: list[tuple[Watch, httpx.Client]] = []

    def opener(user: str = "user-alice") -> Watch:
        client = httpx.Client(timeout=10)
        watcher = Watch(client, server, user)
        opened.append((watcher, client))
        return watcher

    yield opener
    for watcher, client in opened:
        watcher.close()
        client.close()


def test_a_rich_payload_round_trips_on_every_protocol(
    server: ServerThread, http: httpx.Client
) -> None:
    assert ok(http.post(server.internal_url(), json=rich_body("rich-1")))["pending"] == 1
    [row] = ok(call(server, http, "GetNotifications"))["notifications"]
    assert row["severity"] == "SEVERITY_WARNING"
    assert row["category"] == "comments"
    assert row["actions"] == [ACTIONS[0], {**ACTIONS[1], "primary": False}]
    assert row["data"] == DATA  # unicode, nesting, null, floats: byte for byte the same JSON
    assert row["tags"] == ["tasks", "urgent"]
    assert row["imageUrl"] == "https://cdn.example.com/a.png"
    # Connect binary.
    binary = http.post(
        server.client_url("GetNotifications"),
        headers={**dev_auth(), "Content-Type": "application/proto"},
        content=pb.GetNotificationsRequest().SerializeToString(),
    )
    assert binary.status_code == 200
    page = pb.GetNotificationsResponse.FromString(binary.content)
    assert json_format.MessageToDict(page.notifications[0].data) == DATA
    assert [a.id for a in page.notifications[0].actions] == ["open", "docs"]
    # gRPC, and a rich Notify sent over gRPC too.
    with grpc.insecure_channel(f"127.0.0.1:{server.ports.client}") as channel:
        client = notify_pb2_grpc.NotificationClientServiceStub(channel)
        via_grpc = client.GetNotifications(
            pb.GetNotificationsRequest(), metadata=[("authorization", "Bearer dev:user-alice:acme")]
        )
    assert json_format.MessageToDict(via_grpc.notifications[0].data) == DATA
    request = json_format.ParseDict(rich_body("rich-2", "user-bob"), pb.NotifyRequest())
    with grpc.insecure_channel(f"127.0.0.1:{server.ports.internal}") as channel:
        notify_pb2_grpc.NotificationInternalServiceStub(channel).Notify(request, timeout=10)
    [bob] = ok(call(server, http, "GetNotifications", "user-bob"))["notifications"]
    assert bob["data"] == DATA
    assert bob["severity"] == "SEVERITY_WARNING"


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"actions": [{"id": "x", "label": "Run", "url": "javascript:alert(1)"}]}, "url"),
        ({"actions": [{"id": "x", "label": "Run", "url": "JaVaScRiPt:alert(1)"}]}, "url"),
        ({"actions": [{"id": "x", "label": "Run", "url": "data:text/html,hi"}]}, "url"),
        ({"actions": [{"id": "x", "label": "Run", "url": "//evil.example.com"}]}, "url"),
        ({"actions": [{"id": "x", "label": "Run", "url": " javascript:alert(1)"}]}, "url"),
        ({"actions": [{"id": "x", "label": "", "url": "/a"}]}, "label"),
        ({"actions": [{"id": f"a{i}", "label": "A", "url": "/a"} for i in range(6)]}, "actions"),
        ({"imageUrl": "/relative.png"}, "image_url"),
        ({"category": "Not Valid"}, "category"),
        ({"tags": ["t"] * 21}, "tags"),
        ({"data": {"big": "x" * 17_000}}, "data"),
        ({"expiresAtMs": "1000"}, "expires_at_ms"),
        ({"deliverAtMs": str(int(time.time() * 1000) + 400 * 86_400_000)}, "deliver_at_ms"),
        ({"severity": 9}, "severity"),
    ],
)
def test_bad_payloads_are_invalid_argument_naming_the_field(
    server: ServerThread, http: httpx.Client, extra: dict[str, Any], why: str
) -> None:
    refused = http.post(server.internal_url(), json=notify_body("bad", **extra))
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "invalid_argument"
    assert why in refused.json()["message"]


def test_mark_by_ids_and_all_with_filters_and_counts(
    server: ServerThread, http: httpx.Client
) -> None:
    for i, category in enumerate(["billing", "comments", "comments"]):
        http.post(server.internal_url(), json=notify_body(f"n-{i}", category=category))
    assert counts(server, http) == {"unread": 3, "unseen": 3, "total": 3}
    rows = ok(call(server, http, "GetNotifications"))["notifications"]
    ids = {row["notificationId"]: row["id"] for row in rows}
    seen = ok(mark(server, http, all=True, mark="MARK_SEEN"))
    assert seen == {"updated": 3, "counts": {"unread": 3, "unseen": 0, "total": 3}}
    read = ok(mark(server, http, ids=[ids["n-0"]], mark="MARK_READ"))
    assert read["updated"] == 1
    again = ok(mark(server, http, ids=[ids["n-0"]], mark="MARK_READ"))
    assert again["updated"] == 0  # a repeat is a no-op
    comments = {"categories": ["comments"]}
    all_comments = ok(mark(server, http, all=True, filter=comments, mark="MARK_READ"))
    assert all_comments["updated"] == 2
    assert all_comments["counts"] == {"unread": 0, "unseen": 0, "total": 3}
    unread = ok(mark(server, http, ids=[ids["n-1"]], mark="MARK_UNREAD"))
    assert unread["counts"]["unread"] == 1
    assert listing(server, http, filter={"read": "READ_SCOPE_UNREAD"}) == ["n-1"]
    # Archived rows leave the listing and the counts.
    ok(mark(server, http, ids=[ids["n-1"]], mark="MARK_ARCHIVED"))
    assert listing(server, http) == ["n-2", "n-0"]
    assert counts(server, http) == {"unread": 0, "unseen": 0, "total": 2}
    assert listing(server, http, filter={"archived": "ARCHIVE_SCOPE_ARCHIVED"}) == ["n-1"]
    assert listing(server, http, filter={"archived": "ARCHIVE_SCOPE_ALL"}) == ["n-2", "n-1", "n-0"]
    page = ok(call(server, http, "GetNotifications"))
    assert page["unreadCount"] == page["counts"]["unread"] == 0
    # Another user's ids change nothing, and say nothing about existence.
    foreign = ok(mark(server, http, "user-bob", ids=[ids["n-2"]], mark="MARK_READ"))
    assert foreign["updated"] == 0


def test_selectors_and_marks_are_validated(server: ServerThread, http: httpx.Client) -> None:
    cases = [
        ({"mark": "MARK_READ"}, "exactly one"),
        ({"ids": ["a"], "all": True, "mark": "MARK_READ"}, "exactly one"),
        ({"all": True}, "mark is required"),
        ({"ids": [f"id-{i}" for i in range(501)], "mark": "MARK_READ"}, "500"),
        ({"all": True, "mark": "MARK_SNOOZED"}, "snooze_until_ms"),
        ({"all": True, "mark": "MARK_SNOOZED", "snoozeUntilMs": "1"}, "future"),
        ({"all": True, "mark": "MARK_ACTIONED"}, "action_id"),
        ({"ids": ["a"], "filter": {}, "mark": "MARK_READ"}, "filter"),
    ]
    for body, why in cases:
        refused = mark(server, http, **body)
        assert refused.status_code == 400, (body, refused.text)
        assert why in refused.json()["message"], (body, refused.json())
    assert call(server, http, "DeleteNotifications").status_code == 400


def test_action_click_marks_the_row_actioned_and_read(
    server: ServerThread, http: httpx.Client
) -> None:
    http.post(server.internal_url(), json=rich_body("act"))
    [row] = ok(call(server, http, "GetNotifications"))["notifications"]
    wrong = call(
        server, http, "MarkNotifications", ids=[row["id"]], mark="MARK_ACTIONED", actionId="nope"
    )
    assert wrong.status_code == 400
    assert "not an action" in wrong.json()["message"]
    done = ok(
        call(
            server,
            http,
            "MarkNotifications",
            ids=[row["id"]],
            mark="MARK_ACTIONED",
            actionId="open",
        )
    )
    assert done["updated"] == 1
    got = ok(call(server, http, "GetNotification", id=row["id"]))["notification"]
    assert got["actionId"] == "open"
    assert int(got["actionedAtMs"]) > 0
    assert got["status"] == "DELIVERY_STATUS_READ"
    assert call(server, http, "GetNotification", "user-bob", id=row["id"]).status_code == 404


def test_delete_by_ids_and_by_filter(server: ServerThread, http: httpx.Client) -> None:
    for i in range(4):
        http.post(server.internal_url(), json=notify_body(f"d-{i}", tags=["x"] if i % 2 else []))
    rows = ok(call(server, http, "GetNotifications"))["notifications"]
    first = ok(call(server, http, "DeleteNotifications", ids=[rows[0]["id"], "not-mine"]))
    assert first["deleted"] == 1
    assert first["counts"]["total"] == 3
    tagged = ok(call(server, http, "DeleteNotifications", all=True, filter={"tags": ["x"]}))
    assert tagged["deleted"] == 1  # d-3 was the first deleted
    assert listing(server, http) == ["d-2", "d-0"]


def test_a_stream_gets_counts_right_after_the_handshake(
    server: ServerThread, http: httpx.Client
) -> None:
    http.post(server.internal_url(), json=notify_body("before"))
    stream = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {}, skip=())
    try:
        assert "heartbeat" in stream.next()
        first = stream.next()
    finally:
        stream.close()
    assert first["counts"]["counts"] == {"unread": 1, "unseen": 1, "total": 1}


def test_two_tabs_see_each_others_marks_and_other_users_nothing(
    server: ServerThread, http: httpx.Client, watch: Any
) -> None:
    tab_a, tab_b, stranger = watch(), watch(), watch("user-bob")
    for tab in (tab_a, tab_b, stranger):
        tab.next_of("counts")  # the badge on open
    http.post(server.internal_url(), json=notify_body("sync-1"))
    for tab in (tab_a, tab_b):
        assert tab.next_of("notification")["notification"]["notificationId"] == "sync-1"
        assert tab.next_of("counts")["counts"]["unread"] == 1
    marked = ok(mark(server, http, all=True, mark="MARK_READ"))
    assert marked["updated"] == 1
    for tab in (tab_a, tab_b):
        update = tab.next_of("update")
        assert [n["status"] for n in update["notifications"]] == ["DELIVERY_STATUS_READ"]
        assert tab.next_of("counts")["counts"] == {"unread": 0, "unseen": 0, "total": 1}
    row_id = update["notifications"][0]["id"]
    ok(call(server, http, "DeleteNotifications", ids=[row_id]))
    for tab in (tab_a, tab_b):
        assert tab.next_of("update")["deletedIds"] == [row_id]
        assert tab.next_of("counts")["counts"] == {"unread": 0, "unseen": 0, "total": 0}
    # The stranger saw only its own badge; a Notify to it is the next thing it gets.
    http.post(server.internal_url(), json=notify_body("for-bob", "user-bob"))
    assert stranger.next_of("notification")["notification"]["notificationId"] == "for-bob"


def test_collapse_replaces_the_row_and_counts_it(
    server: ServerThread, http: httpx.Client, watch: Any
) -> None:
    tab = watch()
    tab.next_of("counts")
    http.post(
        server.internal_url(),
        json=notify_body("c-1", collapseKey="thread:7", title="1 new comment"),
    )
    first = tab.next_of("notification")["notification"]
    assert first["collapsedCount"] == 1
    http.post(
        server.internal_url(),
        json=notify_body("c-2", collapseKey="thread:7", title="2 new comments"),
    )
    assert tab.next_of("update")["deletedIds"] == [first["id"]]
    second = tab.next_of("notification")["notification"]
    assert (second["title"], second["collapsedCount"]) == ("2 new comments", 2)
    [row] = ok(call(server, http, "GetNotifications"))["notifications"]
    assert (row["notificationId"], row["collapsedCount"]) == ("c-2", 2)
    assert counts(server, http) == {"unread": 1, "unseen": 1, "total": 1}
    # A retry of the first collapses nothing (idempotency on notification_id holds).
    again = http.post(server.internal_url(), json=notify_body("c-2", collapseKey="thread:7")).json()
    assert again == {"delivered": 1, "pending": 0, "failed": 0}
    assert len(ok(call(server, http, "GetNotifications"))["notifications"]) == 1


def test_an_expired_row_disappears_from_list_counts_and_streams(
    store_overrides: dict[str, Any], http: httpx.Client
) -> None:
    clock = ManualClock(int(time.time() * 1000))
    with running_server(clock=clock, **store_overrides) as server:
        expires = clock.now_ms() + 60_000
        http.post(server.internal_url(), json=notify_body("soon-gone", expiresAtMs=str(expires)))
        http.post(server.internal_url(), json=notify_body("stays"))
        assert listing(server, http) == ["stays", "soon-gone"]
        tab = Watch(http, server)
        try:
            tab.next_of("counts")
            clock.advance(60)
            assert listing(server, http) == ["stays"]  # invisible at once
            assert server.server is not None
            assert server.call(server.server.scheduler.tick()) >= 1  # the sweep
            update = tab.next_of("update")
            assert len(update["deletedIds"]) == 1
            assert tab.next_of("counts")["counts"]["total"] == 1
        finally:
            tab.close()
        assert counts(server, http) == {"unread": 1, "unseen": 1, "total": 1}


def test_retention_purges_rows_read_long_ago_and_tells_the_streams(
    store_overrides: dict[str, Any], http: httpx.Client
) -> None:
    clock = ManualClock(int(time.time() * 1000))
    with running_server(clock=clock, retention=3600.0, **store_overrides) as server:
        assert server.server is not None
        for name in ("read-first", "unread", "read-later"):
            ok(http.post(server.internal_url(), json=notify_body(name)))
        ids = {
            row["notificationId"]: row["id"]
            for row in ok(call(server, http, "GetNotifications"))["notifications"]
        }
        ok(mark(server, http, ids=[ids["read-first"]], mark="MARK_READ"))
        clock.advance(1800)
        ok(mark(server, http, ids=[ids["read-later"]], mark="MARK_READ"))
        tab = Watch(http, server)
        try:
            tab.next_of("counts")
            clock.advance(1801)  # read-first was read an hour and a second ago
            assert server.call(server.server.scheduler.tick()) == 1
            assert tab.next_of("update")["deletedIds"] == [ids["read-first"]]
            assert tab.next_of("counts")["counts"] == {"unread": 1, "unseen": 1, "total": 2}
            assert listing(server, http) == ["read-later", "unread"]
            # The next sweep comes a minute later, not at every tick.
            clock.advance(59)
            assert server.call(server.server.scheduler.tick()) == 0
            clock.advance(1800)
            assert server.call(server.server.scheduler.tick()) == 1
            assert tab.next_of("update")["deletedIds"] == [ids["read-later"]]
        finally:
            tab.close()
        # Unread rows stay, however old.
        assert listing(server, http) == ["unread"]
        assert counts(server, http) == {"unread": 1, "unseen": 1, "total": 1}


def test_snooze_hides_then_brings_the_row_back_unread(
    store_overrides: dict[str, Any], http: httpx.Client
) -> None:
    clock = ManualClock(int(time.time() * 1000))
    with running_server(clock=clock, **store_overrides) as server:
        http.post(server.internal_url(), json=notify_body("nap"))
        [row] = ok(call(server, http, "GetNotifications"))["notifications"]
        ok(mark(server, http, ids=[row["id"]], mark="MARK_READ"))
        until = clock.now_ms() + 3_600_000
        snoozed = ok(
            call(
                server,
                http,
                "MarkNotifications",
                ids=[row["id"]],
                mark="MARK_SNOOZED",
                snoozeUntilMs=str(until),
            )
        )
        assert snoozed["counts"] == {"unread": 0, "unseen": 0, "total": 0}
        assert listing(server, http) == []
        assert listing(server, http, filter={"snoozed": True}) == ["nap"]
        tab = Watch(http, server)
        try:
            tab.next_of("counts")
            clock.advance(3600)
            assert server.server is not None
            server.call(server.server.scheduler.tick())
            woken = tab.next_of("update")["notifications"][0]
            assert woken["id"] == row["id"]
            assert woken["status"] == "DELIVERY_STATUS_PENDING"
            assert tab.next_of("counts")["counts"] == {"unread": 1, "unseen": 1, "total": 1}
        finally:
            tab.close()
        assert listing(server, http) == ["nap"]


def test_a_scheduled_row_appears_on_time(
    store_overrides: dict[str, Any], http: httpx.Client
) -> None:
    clock = ManualClock(int(time.time() * 1000))
    with running_server(clock=clock, **store_overrides) as server:
        tab = Watch(http, server)
        try:
            tab.next_of("counts")
            due = clock.now_ms() + 5_000
            sent = ok(
                http.post(server.internal_url(), json=notify_body("later", deliverAtMs=str(due)))
            )
            assert sent == {"delivered": 0, "pending": 1, "failed": 0}
            assert listing(server, http) == []
            assert counts(server, http) == {"unread": 0, "unseen": 0, "total": 0}
            assert server.server is not None
            assert server.call(server.server.scheduler.tick()) == 0  # not yet
            clock.advance(5)
            assert server.call(server.server.scheduler.tick()) == 1
            pushed = tab.next_of("notification")["notification"]
            assert pushed["notificationId"] == "later"
            assert pushed["status"] == "DELIVERY_STATUS_DELIVERED"
            assert tab.next_of("counts")["counts"]["unread"] == 1
        finally:
            tab.close()
        assert listing(server, http) == ["later"]


def test_a_scheduled_row_fires_by_itself_on_real_time(
    server: ServerThread, http: httpx.Client, watch: Any
) -> None:
    """No clock tricks: the scheduler's own timer brings it (both stores)."""
    tab = watch()
    tab.next_of("counts")
    due = int(time.time() * 1000) + 300
    http.post(server.internal_url(), json=notify_body("soon", deliverAtMs=str(due)))
    pushed = tab.next_of("notification")["notification"]
    assert pushed["notificationId"] == "soon"
    assert int(time.time() * 1000) >= due


def test_a_missed_deadline_fires_after_a_restart_on_postgres(
    store_overrides: dict[str, Any], http: httpx.Client
) -> None:
    if not store_overrides:
        pytest.skip("the memory store keeps nothing across a restart")
    clock = ManualClock(int(time.time() * 1000))
    with running_server(clock=clock, **store_overrides) as server:
        due = clock.now_ms() + 10_000
        http.post(server.internal_url(), json=notify_body("across", deliverAtMs=str(due)))
    clock.advance(20)  # the deadline passes while nothing runs
    with running_server(clock=clock, **store_overrides) as restarted:
        eventually(lambda: listing(restarted, http) == ["across"], what="the missed row")


def test_json_enums_are_names(server: ServerThread, http: httpx.Client) -> None:
    http.post(server.internal_url(), json=rich_body("names"))
    raw = call(server, http, "GetNotifications").content
    assert b'"SEVERITY_WARNING"' in raw
    assert json.loads(raw)["counts"]["unread"] == 1


def test_stream_ends_if_the_client_is_not_authenticated(
    server: ServerThread, http: httpx.Client
) -> None:
    stream = ConnectStream(http, server.client_url("StreamEvents"), {}, {}, skip=())
    with pytest.raises(EndOfStream) as ended:
        stream.next()
    stream.close()
    assert ended.value.code == "unauthenticated"


def test_a_resumed_stream_replays_missed_marks_and_deletes_exactly_once(
    server: ServerThread, http: httpx.Client
) -> None:
    first = Watch(http, server)
    first.next_of("counts")
    http.post(server.internal_url(), json=notify_body("keep"))
    http.post(server.internal_url(), json=notify_body("drop"))
    kept = first.next_of("notification")
    dropped = first.next_of("notification")
    token = dropped["resumeToken"]
    first.close()
    # While the stream is away: a mark, a delete, a new row.
    ok(mark(server, http, ids=[kept["notification"]["id"]], mark="MARK_READ"))
    ok(call(server, http, "DeleteNotifications", ids=[dropped["notification"]["id"]]))
    http.post(server.internal_url(), json=notify_body("new"))
    resumed = ConnectStream(
        http,
        server.client_url("StreamEvents"),
        dev_auth(),
        {"resumeToken": token},
        skip=("heartbeat", "counts"),
    )
    try:
        missed_row = resumed.next()["notification"]
        assert missed_row["notification"]["notificationId"] == "new"
        update = resumed.next()["update"]
        assert [n["id"] for n in update["notifications"]] == [kept["notification"]["id"]]
        assert update["notifications"][0]["status"] == "DELIVERY_STATUS_READ"
        assert update["deletedIds"] == [dropped["notification"]["id"]]
        # Then live, and nothing twice: the next frame is the next change.
        http.post(server.internal_url(), json=notify_body("live"))
        assert resumed.next()["notification"]["notification"]["notificationId"] == "live"
        latest = update["resumeToken"]
    finally:
        resumed.close()
    # Resuming from the update's token replays only what came after it.
    again = ConnectStream(
        http,
        server.client_url("StreamEvents"),
        dev_auth(),
        {"resumeToken": latest},
        skip=("heartbeat", "counts"),
    )
    try:
        assert again.next()["notification"]["notification"]["notificationId"] == "live"
        http.post(server.internal_url(), json=notify_body("after"))
        assert again.next()["notification"]["notification"]["notificationId"] == "after"
    finally:
        again.close()


def test_old_resume_tokens_still_replay_rows(server: ServerThread, http: httpx.Client) -> None:
    """Tokens made before the change log (r1:) resume rows as they always did."""
    import base64

    http.post(server.internal_url(), json=notify_body("base"))
    [row] = ok(call(server, http, "GetNotifications"))["notifications"]
    legacy = base64.urlsafe_b64encode(f"r1:{row['createdAtMs']}:{row['id']}".encode())
    http.post(server.internal_url(), json=notify_body("next"))
    stream = ConnectStream(
        http,
        server.client_url("StreamEvents"),
        dev_auth(),
        {"resumeToken": legacy.decode().rstrip("=")},
        skip=("heartbeat", "counts"),
    )
    try:
        assert stream.next()["notification"]["notification"]["notificationId"] == "next"
    finally:
        stream.close()
