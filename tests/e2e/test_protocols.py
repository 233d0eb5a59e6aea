"""Every protocol a Connect server speaks, on both API ports, with real clients.

grpcio (gRPC over cleartext HTTP/2), connect-python's own client (Connect
binary and JSON, gRPC, gRPC-Web), httpx over HTTP/2 for Connect over h2c, and
raw gRPC-Web over HTTP/1.1 as browsers send it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import httpx
import pyqwest
import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType
from elloloop.notify.v1 import notify_pb2 as pb
from elloloop.notify.v1 import notify_pb2_grpc
from elloloop.notify.v1.notify_connect import (
    NotificationClientServiceClientSync,
    NotificationInternalServiceClientSync,
)

from tests.support import ServerThread, dev_auth, envelope, next_past_sync, read_envelopes

AUTH = [("authorization", "Bearer dev:user-bob:acme")]


def notify_request(notification_id: str, user: str = "user-bob") -> pb.NotifyRequest:
    return pb.NotifyRequest(
        tenant_id="acme",
        notification_id=notification_id,
        user_ids=[user],
        channels=[pb.DELIVERY_CHANNEL_IN_APP],
        title=f"t-{notification_id}",
    )


@pytest.fixture
def channels(server: ServerThread) -> Iterator[tuple[grpc.Channel, grpc.Channel]]:
    client = grpc.insecure_channel(f"127.0.0.1:{server.ports.client}")
    internal = grpc.insecure_channel(f"127.0.0.1:{server.ports.internal}")
    yield client, internal
    client.close()
    internal.close()


def test_grpcio_unary_and_stream_on_both_ports(
    channels: tuple[grpc.Channel, grpc.Channel],
) -> None:
    client_channel, internal_channel = channels
    internal = notify_pb2_grpc.NotificationInternalServiceStub(internal_channel)
    client = notify_pb2_grpc.NotificationClientServiceStub(client_channel)

    stream = client.StreamEvents(
        pb.StreamEventsRequest(device_type=pb.DEVICE_TYPE_ANDROID), metadata=AUTH, timeout=30
    )
    try:
        handshake = next(stream)
        assert handshake.WhichOneof("event") == "heartbeat"
        assert handshake.session_id
        response = internal.Notify(notify_request("g-1"), timeout=10)
        assert (response.delivered, response.pending, response.failed) == (1, 0, 0)
        event = next_past_sync(stream)
        assert event.WhichOneof("event") == "notification"
        assert event.session_id == handshake.session_id
        assert event.notification.notification.notification_id == "g-1"
        assert event.notification.notification.status == pb.DELIVERY_STATUS_DELIVERED
    finally:
        stream.cancel()

    page = client.GetNotifications(pb.GetNotificationsRequest(limit=5), metadata=AUTH, timeout=10)
    assert [n.notification_id for n in page.notifications] == ["g-1"]
    assert page.unread_count == 1
    client.AckNotification(
        pb.AckNotificationRequest(id=page.notifications[0].id), metadata=AUTH, timeout=10
    )
    client.RegisterPushToken(
        pb.RegisterPushTokenRequest(device_type=pb.DEVICE_TYPE_IOS, token="apns-1"),
        metadata=AUTH,
        timeout=10,
    )
    client.AckDataChange(
        pb.AckDataChangeRequest(idempotency_key="k", session_id=handshake.session_id),
        metadata=AUTH,
        timeout=10,
    )
    after = client.GetNotifications(pb.GetNotificationsRequest(), metadata=AUTH, timeout=10)
    assert after.unread_count == 0
    assert after.notifications[0].status == pb.DELIVERY_STATUS_READ


def test_grpcio_errors_carry_codes(channels: tuple[grpc.Channel, grpc.Channel]) -> None:
    client_channel, internal_channel = channels
    client = notify_pb2_grpc.NotificationClientServiceStub(client_channel)
    internal = notify_pb2_grpc.NotificationInternalServiceStub(internal_channel)
    with pytest.raises(grpc.RpcError) as missing_auth:
        client.GetNotifications(pb.GetNotificationsRequest(), timeout=10)
    assert missing_auth.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as invalid:
        internal.Notify(pb.NotifyRequest(tenant_id="acme"), timeout=10)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "notification_id" in (invalid.value.details() or "")
    with pytest.raises(grpc.RpcError) as stream_error:
        next(client.StreamEvents(pb.StreamEventsRequest(), timeout=10))
    assert stream_error.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_service_on_the_wrong_port_is_unimplemented(
    channels: tuple[grpc.Channel, grpc.Channel],
) -> None:
    client_channel, internal_channel = channels
    wrong_internal = notify_pb2_grpc.NotificationInternalServiceStub(client_channel)
    wrong_client = notify_pb2_grpc.NotificationClientServiceStub(internal_channel)
    with pytest.raises(grpc.RpcError) as on_client_port:
        wrong_internal.Notify(notify_request("w-1"), timeout=10)
    assert on_client_port.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as on_internal_port:
        wrong_client.GetNotifications(pb.GetNotificationsRequest(), metadata=AUTH, timeout=10)
    assert on_internal_port.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_connect_wrong_port_is_404(server: ServerThread, http: httpx.Client) -> None:
    url = f"http://127.0.0.1:{server.ports.client}/elloloop.notify.v1.NotificationInternalService/Notify"
    assert http.post(url, json={}).status_code == 404


@pytest.mark.parametrize(
    ("protocol", "proto_json", "http_version"),
    [
        (ProtocolType.CONNECT, False, pyqwest.HTTPVersion.HTTP1),
        (ProtocolType.CONNECT, True, pyqwest.HTTPVersion.HTTP1),
        (ProtocolType.CONNECT, False, pyqwest.HTTPVersion.HTTP2),
        (ProtocolType.GRPC, False, pyqwest.HTTPVersion.HTTP2),
        (ProtocolType.GRPC_WEB, False, pyqwest.HTTPVersion.HTTP1),
        (ProtocolType.GRPC_WEB, True, pyqwest.HTTPVersion.HTTP2),
    ],
    ids=[
        "connect-proto-h1",
        "connect-json-h1",
        "connect-proto-h2",
        "grpc-h2",
        "grpcweb-h1",
        "grpcweb-json-h2",
    ],
)
def test_connect_python_client(
    server: ServerThread,
    protocol: ProtocolType,
    proto_json: bool,
    http_version: pyqwest.HTTPVersion,
) -> None:
    http_client = pyqwest.SyncClient(pyqwest.SyncHTTPTransport(http_version=http_version))
    options = {"protocol": protocol, "proto_json": proto_json, "http_client": http_client}
    internal = NotificationInternalServiceClientSync(
        f"http://127.0.0.1:{server.ports.internal}", **options
    )
    client = NotificationClientServiceClientSync(
        f"http://127.0.0.1:{server.ports.client}", **options
    )
    headers = {"authorization": "Bearer dev:user-carol:acme"}

    stream = client.stream_events(pb.StreamEventsRequest(), headers=headers, timeout_ms=30_000)
    handshake = next(stream)
    assert handshake.heartbeat.timestamp_ms > 0
    response = internal.notify(notify_request("c-1", "user-carol"))
    assert response.delivered == 1
    event = next_past_sync(stream)
    assert event.notification.notification.notification_id == "c-1"
    stream.close()  # type: ignore[attr-defined]

    page = client.get_notifications(pb.GetNotificationsRequest(limit=10), headers=headers)
    assert [n.notification_id for n in page.notifications] == ["c-1"]
    with pytest.raises(ConnectError) as not_found:
        client.ack_notification(pb.AckNotificationRequest(id="nope"), headers=headers)
    assert not_found.value.code == Code.NOT_FOUND


def test_connect_json_over_http2(server: ServerThread) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as h2:
        sent = h2.post(
            server.internal_url(),
            json={"tenantId": "acme", "notificationId": "h2-1", "userIds": ["user-dan"]},
        )
        assert sent.http_version == "HTTP/2"
        assert "server" not in sent.headers  # no banner on either HTTP version
        assert sent.json() == {"delivered": 0, "pending": 1, "failed": 0}
        page = h2.post(server.client_url("GetNotifications"), headers=dev_auth("user-dan"), json={})
        assert page.json()["notifications"][0]["notificationId"] == "h2-1"


def test_raw_grpc_web_over_http1(server: ServerThread, http: httpx.Client) -> None:
    """What @connectrpc/connect-web's gRPC-Web transport sends from a browser."""
    request = pb.GetNotificationsRequest(limit=3).SerializeToString()
    response = http.post(
        server.client_url("GetNotifications"),
        headers={
            **dev_auth(),
            "Content-Type": "application/grpc-web+proto",
            "X-Grpc-Web": "1",
        },
        content=envelope(request),
    )
    assert response.status_code == 200
    frames = list(read_envelopes(iter([response.content])))
    assert frames[0][0] == 0
    assert pb.GetNotificationsResponse.FromString(frames[0][1]).unread_count == 0
    trailer_flags, trailers = frames[-1]
    assert trailer_flags & 0x80
    assert b"grpc-status: 0" in trailers.lower() or b"grpc-status:0" in trailers.lower()


def test_unknown_json_fields_are_ignored(server: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        server.client_url("GetNotifications"),
        headers=dev_auth(),
        json={"limit": 5, "someFutureField": {"x": 1}},
    )
    assert response.status_code == 200, response.text


def test_connect_binary_unary(server: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        server.internal_url(),
        headers={"Content-Type": "application/proto"},
        content=notify_request("b-1").SerializeToString(),
    )
    assert response.status_code == 200
    assert "server" not in response.headers
    assert response.headers["content-type"] == "application/proto"
    assert pb.NotifyResponse.FromString(response.content).pending == 1


def test_connect_get_is_not_allowed_for_side_effects(
    server: ServerThread, http: httpx.Client
) -> None:
    """Notify has side effects, so it must not be callable with Connect GET."""
    message = json.dumps({"tenantId": "acme", "notificationId": "x", "userIds": ["u"]})
    response = http.get(server.internal_url(), params={"encoding": "json", "message": message})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
