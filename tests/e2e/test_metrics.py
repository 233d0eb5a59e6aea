"""Every metric family moves as traffic flows, and no label carries an id."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ConnectStream, ServerThread, dev_auth, eventually, notify_body


def scrape(
    server: ServerThread, http: httpx.Client
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = http.get(server.metrics_url("/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and all((k, v) in sample_labels for k, v in labels.items())
    )


def test_families_move_with_traffic(server: ServerThread, http: httpx.Client) -> None:
    assert server.server is not None
    before = scrape(server, http)
    assert total(before, "notify_build_info", driver=server.server.store.driver) == 1
    stream = ConnectStream(
        http,
        server.client_url("StreamEvents"),
        dev_auth("user-metrics", "tenant-metrics"),
        {"deviceType": 2},
    )
    stream.next()
    http.post(
        server.internal_url(), json=notify_body("m-1", "user-metrics", tenant="tenant-metrics")
    )
    stream.next()
    http.post(
        server.internal_url("PublishDataChange"),
        json={"tenantId": "tenant-metrics", "userIds": ["user-metrics"], "idempotencyKey": "dc-1"},
    )
    stream.next()
    during = scrape(server, http)
    stream.close()
    http.post(
        server.client_url("GetNotifications"), headers={"Authorization": "Bearer nope"}, json={}
    )

    notify_ok = {
        "procedure": "/elloloop.notify.v1.NotificationInternalService/Notify",
        "code": "ok",
        "protocol": "connect",
    }
    assert total(during, "notify_rpc_requests_total", **notify_ok) == 1
    assert total(during, "notify_rpc_duration_seconds_count", **notify_ok) == 1
    assert (
        total(during, "notify_notifications_stored_total", channel="in_app", status="delivered")
        == 1
    )
    assert total(during, "notify_streams_open", device_type="android") == 1
    assert total(during, "notify_stream_events_sent_total", kind="heartbeat") >= 1
    assert total(during, "notify_stream_events_sent_total", kind="notification") == 1
    assert total(during, "notify_stream_events_sent_total", kind="data_change") == 1
    assert total(during, "notify_delivery_latency_seconds_count") == 1
    assert (
        total(
            during,
            "notify_store_operation_duration_seconds_count",
            operation="create_notifications",
        )
        == 1
    )

    # The stream is counted once it ends: the client went away.
    stream_rpc = {"procedure": "/elloloop.notify.v1.NotificationClientService/StreamEvents"}
    eventually(
        lambda: total(scrape(server, http), "notify_rpc_requests_total", **stream_rpc) == 1,
        what="the ended stream to be counted",
    )
    after = scrape(server, http)
    assert total(after, "notify_rpc_requests_total", code="unauthenticated") == 1
    assert total(after, "notify_rpc_requests_total", code="canceled", **stream_rpc) == 1
    assert total(after, "notify_streams_ended_total", reason="client_gone") == 1

    pool = {
        labels: value
        for (name, labels), value in after.items()
        if name == "notify_store_pool_connections"
    }
    if server.server.store.driver == "postgres":
        assert pool[(("state", "size"),)] >= 1
        assert 0 <= pool[(("state", "in_use"),)] <= pool[(("state", "size"),)]
    else:
        assert pool == {}

    # No label value is ever a tenant, user, notification or session id.
    for (_name, labels), _value in after.items():
        for _key, value in labels:
            assert "metrics" not in value
            assert "m-1" not in value
            assert "dc-1" not in value
