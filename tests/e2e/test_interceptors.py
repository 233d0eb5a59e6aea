"""Cross-cutting behaviour lives in interceptors, not in each handler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from connectrpc.method import IdempotencyLevel, MethodInfo
from connectrpc.server import ConnectASGIApplication, Endpoint
from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.interceptors import Ctx, caller, interceptors_for
from notify.auth import ClientAuthenticator, Principal
from notify.config import Config
from notify.core.events import (
    BusEvent,
    DataChangeAcked,
    DataChangePublished,
    DataChangeReached,
    InboxChanged,
    NotificationsCreated,
    NotificationsTaken,
)
from tests.e2e.test_live_events import RawGrpcStream
from tests.support import (
    JWT_SECRET,
    ConnectStream,
    EndOfStream,
    ServerThread,
    dev_auth,
    make_jwt,
    notify_body,
    serving,
)

SECRET_PATH = "/test.v1.SecretService/Peek"


class SecretService:
    """A service that exists only in this test: its one RPC forgets nothing, by construction."""

    def __init__(self) -> None:
        self.callers: list[Principal] = []

    async def peek(
        self, request: pb.AckNotificationRequest, ctx: Ctx
    ) -> pb.AckNotificationResponse:
        self.callers.append(caller())
        return pb.AckNotificationResponse()


class SecretApp(ConnectASGIApplication[SecretService]):
    def __init__(self, service: SecretService, authenticator: ClientAuthenticator) -> None:
        super().__init__(
            service=service,
            endpoints=lambda svc: {
                SECRET_PATH: Endpoint.unary(
                    method=MethodInfo(
                        name="Peek",
                        service_name="test.v1.SecretService",
                        input=pb.AckNotificationRequest,
                        output=pb.AckNotificationResponse,
                        idempotency_level=IdempotencyLevel.UNKNOWN,
                    ),
                    function=svc.peek,
                )
            },
            interceptors=interceptors_for(
                lambda headers: authenticator.authenticate(headers.get("authorization"))
            ),
        )

    @property
    def path(self) -> str:
        return "/test.v1.SecretService"


@pytest.fixture
def secret() -> Iterator[tuple[SecretService, int]]:
    config = Config(jwt_secret=JWT_SECRET, internal_token="x" * 32)
    service = SecretService()
    with serving(SecretApp(service, ClientAuthenticator(config))) as port:
        yield service, port


def test_a_new_rpc_is_authenticated_by_the_interceptor_alone(
    secret: tuple[SecretService, int], http: httpx.Client
) -> None:
    service, port = secret
    url = f"http://127.0.0.1:{port}{SECRET_PATH}"
    for headers in ({}, {"Authorization": "Bearer forged"}, dev_auth()):
        refused = http.post(url, json={}, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthenticated"
    assert service.callers == []  # the handler never ran
    token = make_jwt(sub="carol", tenant="initech")
    accepted = http.post(url, json={}, headers={"Authorization": f"Bearer {token}"})
    assert accepted.status_code == 200
    assert service.callers == [Principal("initech", "carol")]


async def test_a_handler_served_without_the_interceptor_fails_closed() -> None:
    from notify.core.errors import Unauthenticated

    with pytest.raises(Unauthenticated):
        caller()


def test_connect_stream_deadline_ends_with_deadline_exceeded(
    server: ServerThread, http: httpx.Client
) -> None:
    headers = {**dev_auth(), "Connect-Timeout-Ms": "500"}
    started = time.monotonic()
    stream = ConnectStream(http, server.client_url("StreamEvents"), headers, {})
    try:
        assert "heartbeat" in stream.next()  # the handshake
        with pytest.raises(EndOfStream) as ended:
            stream.next()
    finally:
        stream.close()
    assert ended.value.code == "deadline_exceeded"
    assert time.monotonic() - started < 1.5  # at the deadline, not at the heartbeat


def test_grpc_stream_deadline_ends_with_deadline_exceeded(server: ServerThread) -> None:
    started = time.monotonic()
    stream = RawGrpcStream(
        server.ports.client, "Bearer dev:user-alice:acme", (("grpc-timeout", "500m"),)
    )
    try:
        stream.sock.settimeout(10)
        while not stream.trailers:
            stream.read(open_window=True)
    finally:
        stream.close()
    assert stream.trailers["grpc-status"] == str(grpc.StatusCode.DEADLINE_EXCEEDED.value[0])
    assert time.monotonic() - started < 1.5


def test_a_second_bus_subscriber_observes_every_publish(
    server: ServerThread, http: httpx.Client
) -> None:
    assert server.server is not None
    seen: list[BusEvent] = []

    async def subscribe() -> Any:
        assert server.server is not None
        return server.server.bus.subscribe(seen.append)

    unsubscribe = server.call(subscribe())
    stream = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {})
    try:
        session_id = stream.next()["sessionId"]
        notified = http.post(server.internal_url(), json=notify_body("n-bus")).json()
        assert notified["delivered"] == 1
        published = http.post(
            server.internal_url("PublishDataChange"),
            json={"tenantId": "acme", "userIds": ["user-alice"], "idempotencyKey": "k-bus"},
        ).json()
        assert published == {"sessions": 1}
        acked = http.post(
            server.client_url("AckDataChange"),
            headers=dev_auth(),
            json={"idempotencyKey": "k-bus", "sessionId": session_id},
        )
        assert acked.status_code == 200
    finally:
        stream.close()
        unsubscribe()
    kinds = [type(e) for e in seen]
    assert kinds == [
        NotificationsCreated,
        NotificationsTaken,
        InboxChanged,  # the user's new counts, for the badge
        DataChangePublished,
        DataChangeReached,
        DataChangeAcked,
    ]
    created = seen[0]
    assert isinstance(created, NotificationsCreated)
    assert [r.notification_id for r in created.rows] == ["n-bus"]
    taken = seen[1]
    assert isinstance(taken, NotificationsTaken)
    assert taken.row_ids == (created.rows[0].id,)
    assert (taken.origin, taken.ticket) == (created.origin, created.ticket)
    counts = seen[2]
    assert isinstance(counts, InboxChanged)
    assert counts.counts is not None
    assert counts.counts.unread == 1
    ack = seen[5]
    assert isinstance(ack, DataChangeAcked)
    assert (ack.tenant_id, ack.user_id, ack.session_id) == ("acme", "user-alice", session_id)
