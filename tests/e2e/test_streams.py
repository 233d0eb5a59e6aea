"""StreamEvents: handshake, heartbeats, fan-out to every session, cleanup."""

from __future__ import annotations

import grpc
import httpx
from elloloop.notify.v1 import notify_pb2 as pb
from elloloop.notify.v1 import notify_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    ConnectStream,
    ServerThread,
    dev_auth,
    eventually,
    notify_body,
    running_server,
)


def open_streams(server: ServerThread) -> int:
    assert server.server is not None
    return len(server.server.hub)


def gauge(server: ServerThread, http: httpx.Client, device: str) -> float:
    text = http.get(server.metrics_url("/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == "notify_streams_open":
            for sample in family.samples:
                if sample.labels.get("device_type") == device:
                    return sample.value
    return 0.0


def test_heartbeats_arrive_every_interval(http: httpx.Client) -> None:
    with running_server(live_heartbeat_interval=0.05) as server:
        stream = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {})
        try:
            events = [stream.next() for _ in range(4)]
        finally:
            stream.close()
    session_ids = {e["sessionId"] for e in events}
    assert len(session_ids) == 1
    assert session_ids != {""}
    stamps = [int(e["heartbeat"]["timestampMs"]) for e in events]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] >= 3 * 50 - 5


def test_every_session_of_the_user_gets_it(server: ServerThread, http: httpx.Client) -> None:
    streams = [
        ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {"deviceType": kind})
        for kind in ("DEVICE_TYPE_BROWSER", "DEVICE_TYPE_BROWSER", "DEVICE_TYPE_IOS")
    ]
    try:
        session_ids = {s.next()["sessionId"] for s in streams}
        assert len(session_ids) == 3
        assert http.post(server.internal_url(), json=notify_body("fan")).json()["delivered"] == 1
        for stream in streams:
            event = stream.next()
            assert event["notification"]["notification"]["notificationId"] == "fan"
        assert gauge(server, http, "browser") == 2
        assert gauge(server, http, "ios") == 1
    finally:
        for stream in streams:
            stream.close()


def test_stream_is_freed_the_moment_the_client_goes_away(
    server: ServerThread, http: httpx.Client
) -> None:
    stream = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {"deviceType": 1})
    stream.next()
    assert open_streams(server) == 1
    stream.close()
    # The heartbeat interval is 30 s: only watching the disconnect frees it this soon.
    eventually(lambda: open_streams(server) == 0, what="the session to be released")
    assert gauge(server, http, "browser") == 0
    response = http.post(server.internal_url(), json=notify_body("after-close")).json()
    assert response == {"delivered": 0, "pending": 1, "failed": 0}


def test_grpc_cancel_frees_the_stream(server: ServerThread) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports.client}") as channel:
        client = notify_pb2_grpc.NotificationClientServiceStub(channel)
        call = client.StreamEvents(
            pb.StreamEventsRequest(), metadata=[("authorization", "Bearer dev:u:t")]
        )
        next(call)
        assert open_streams(server) == 1
        call.cancel()
        eventually(lambda: open_streams(server) == 0, what="the gRPC session to be released")
