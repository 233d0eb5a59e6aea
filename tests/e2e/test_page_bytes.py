"""Pages written from kept row bytes follow every state change, in every codec, on every store."""

from __future__ import annotations

import grpc
import httpx
from elloloop.notify.v1 import notify_pb2 as pb
from elloloop.notify.v1 import notify_pb2_grpc
from google.protobuf import json_format

from tests.e2e.test_inbox import call, mark, ok, rich_body
from tests.support import ServerThread, dev_auth

ALICE = [("authorization", "Bearer dev:user-alice:acme")]


def pages(server: ServerThread, http: httpx.Client) -> list[pb.GetNotificationsResponse]:
    """The first page as Connect JSON, Connect binary and gRPC, each as a message."""
    as_json = call(server, http, "GetNotifications", limit=10)
    assert as_json.status_code == 200, as_json.text
    via_json = json_format.Parse(as_json.content, pb.GetNotificationsResponse())
    binary = http.post(
        server.client_url("GetNotifications"),
        headers={**dev_auth(), "Content-Type": "application/proto"},
        content=pb.GetNotificationsRequest(limit=10).SerializeToString(),
    )
    assert binary.status_code == 200
    assert binary.headers["content-type"] == "application/proto"
    via_binary = pb.GetNotificationsResponse.FromString(binary.content)
    with grpc.insecure_channel(f"127.0.0.1:{server.ports.client}") as channel:
        client = notify_pb2_grpc.NotificationClientServiceStub(channel)
        via_grpc = client.GetNotifications(
            pb.GetNotificationsRequest(limit=10), metadata=ALICE, timeout=10
        )
    return [via_json, via_binary, via_grpc]


def test_a_served_page_shows_each_later_mark_in_every_codec(
    server: ServerThread, http: httpx.Client
) -> None:
    for number in range(3):
        assert ok(http.post(server.internal_url(), json=rich_body(f"kept-{number}")))["pending"]
    first = pages(server, http)
    assert first[0] == first[1] == first[2]
    assert len(first[0].notifications) == 3
    assert all(row.status == pb.DELIVERY_STATUS_PENDING for row in first[0].notifications)
    newest = first[0].notifications[0]
    # Served twice, so each codec's bytes for these rows are kept; now change their state.
    assert pages(server, http) == first
    ok(mark(server, http, ids=[newest.id], mark="MARK_READ"))
    ok(mark(server, http, ids=[newest.id], mark="MARK_ACTIONED", actionId="open"))
    ok(mark(server, http, all=True, mark="MARK_SEEN"))
    after = pages(server, http)
    assert after[0] == after[1] == after[2]
    row = after[0].notifications[0]
    assert row.id == newest.id
    assert row.status == pb.DELIVERY_STATUS_READ
    assert row.read_at_ms > 0
    assert row.action_id == "open"
    assert row.actioned_at_ms > 0
    assert all(r.seen_at_ms > 0 for r in after[0].notifications)
    assert after[0].counts.unread == after[0].unread_count == 2
    assert after[0].counts.unseen == 0
    # The payload is untouched: only the state fields moved.
    for before, now in zip(first[0].notifications, after[0].notifications, strict=True):
        assert (before.title, before.data, list(before.actions), list(before.tags)) == (
            now.title,
            now.data,
            list(now.actions),
            list(now.tags),
        )
    # Unread again: the earlier state's bytes are not served back from the first encoding.
    ok(mark(server, http, ids=[newest.id], mark="MARK_UNREAD"))
    again = pages(server, http)
    assert again[0] == again[1] == again[2]
    assert again[0].notifications[0].status == pb.DELIVERY_STATUS_PENDING
    assert again[0].notifications[0].read_at_ms == 0
