"""The Quick Start (shared/seeds/004), step by step, over Connect JSON."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ConnectStream, ServerThread, dev_auth, notify_body

ALICE = dev_auth("user-alice", "acme")


def test_quick_start(server: ServerThread, http: httpx.Client) -> None:
    # 1. Confirm it's healthy.
    health = http.get(server.metrics_url("/healthz"))
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    # 2. Send a notification from a backend: no client connected yet.
    sent = http.post(
        server.internal_url(),
        headers={"Content-Type": "application/json"},
        json={
            "tenantId": "acme",
            "notificationId": "n-1",
            "userIds": ["user-alice"],
            "channels": ["DELIVERY_CHANNEL_IN_APP"],
            "subjectRef": "task:42",
            "subjectType": "task",
            "title": "New comment",
            "body": "Bob commented on Task 42",
        },
    )
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"delivered": 0, "pending": 1, "failed": 0}

    # 3. Subscribe, then repeat step 2 with another notificationId: it arrives live.
    stream = ConnectStream(
        http, server.client_url("StreamEvents"), ALICE, {"deviceType": "DEVICE_TYPE_BROWSER"}
    )
    try:
        handshake = stream.next()
        assert handshake["sessionId"]
        assert int(handshake["heartbeat"]["timestampMs"]) > 0
        again = http.post(server.internal_url(), json=notify_body("n-2", "user-alice"))
        assert again.json() == {"delivered": 1, "pending": 0, "failed": 0}
        event = stream.next()
        assert event["sessionId"] == handshake["sessionId"]
        live = event["notification"]["notification"]
        assert live["notificationId"] == "n-2"
        assert live["title"] == "title n-2"
        assert live["status"] == "DELIVERY_STATUS_DELIVERED"
    finally:
        stream.close()

    # 4. Page the inbox history.
    page = http.post(
        server.client_url("GetNotifications"),
        headers={**ALICE, "Content-Type": "application/json"},
        json={"limit": 20},
    )
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["nextCursor"] == ""
    assert body["unreadCount"] == 2
    first = body["notifications"][1]
    assert first["notificationId"] == "n-1"
    assert first["subjectRef"] == "task:42"
    assert first["subjectType"] == "task"
    assert first["title"] == "New comment"
    assert first["body"] == "Bob commented on Task 42"
    assert first["channel"] == "DELIVERY_CHANNEL_IN_APP"
    assert first["status"] == "DELIVERY_STATUS_PENDING"
    assert int(first["createdAtMs"]) > 0

    # 5. Mark it read.
    acked = http.post(
        server.client_url("AckNotification"),
        headers={**ALICE, "Content-Type": "application/json"},
        json={"id": first["id"]},
    )
    assert acked.status_code == 200, acked.text
    assert acked.json() == {}
    after = http.post(
        server.client_url("GetNotifications"), headers=ALICE, json={"limit": 20}
    ).json()
    read = next(n for n in after["notifications"] if n["id"] == first["id"])
    assert read["status"] == "DELIVERY_STATUS_READ"
    assert int(read["readAtMs"]) >= int(read["createdAtMs"])
    assert after["unreadCount"] == 1

    # 6. /metrics is a parseable exposition with real series.
    metrics = http.get(server.metrics_url("/metrics"))
    assert metrics.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    notify_calls = [
        s
        for s in families["notify_rpc_requests"].samples
        if s.labels["procedure"].endswith("/Notify") and s.name.endswith("_total")
    ]
    assert sum(s.value for s in notify_calls) == 2
    store_calls = {
        s.labels["operation"]: s.value
        for s in families["notify_store_operation_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert store_calls["create_notifications"] == 2
    assert store_calls["list_notifications"] == 2
    assert store_calls["mark_read"] == 1
    stored = {
        (s.labels["channel"], s.labels["status"]): s.value
        for s in families["notify_notifications_stored"].samples
        if s.name.endswith("_total")
    }
    assert stored == {("in_app", "pending"): 1, ("in_app", "delivered"): 1}
