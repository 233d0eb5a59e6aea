"""Live events users can trust: data-change rounds, exact resume, limits.

Each scenario runs over Connect (JSON over HTTP/1.1) and gRPC (HTTP/2).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from elloloop.notify.v1 import notify_pb2_grpc
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families

from notify.core.commands import NotifyCommand
from notify.core.model import Channel, Notification
from tests.support import (
    CLIENT_SVC,
    INBOX_SYNC,
    ConnectStream,
    EndOfStream,
    ServerThread,
    dev_auth,
    envelope,
    notify_body,
    running_server,
)


class StreamEnded(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Stream:
    """One StreamEvents call, over either protocol, yielding pb.StreamEvent."""

    def __init__(self, read: Callable[[], pb.StreamEvent], close: Callable[[], None]) -> None:
        self._read = read
        self.close = close
        self.session_id = ""

    def next_any(self) -> pb.StreamEvent:
        event = self._read()
        self.session_id = event.session_id
        return event

    def next(self) -> pb.StreamEvent:
        """The next event, past the inbox's sync events (counts, update)."""
        while True:
            event = self.next_any()
            if event.WhichOneof("event") not in INBOX_SYNC:
                return event

    def next_of(self, kind: str) -> pb.StreamEvent:
        """The next event of that kind, skipping heartbeats and the inbox's sync events."""
        while True:
            event = self.next_any()
            if event.WhichOneof("event") == kind:
                return event
            assert event.WhichOneof("event") in ("heartbeat", *INBOX_SYNC), event


Opener = Callable[..., Stream]


@pytest.fixture(params=["connect", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_stream(protocol: str) -> Iterator[Callable[..., Stream]]:
    opened: list[Stream] = []
    resources: list[Any] = []

    def opener(
        server: ServerThread, user: str = "user-alice", tenant: str = "acme", resume_token: str = ""
    ) -> Stream:
        request = pb.StreamEventsRequest(
            device_type=pb.DEVICE_TYPE_BROWSER, resume_token=resume_token
        )
        if protocol == "connect":
            http = httpx.Client(timeout=10)
            resources.append(http)
            body = json_format.MessageToDict(request)
            connect = ConnectStream(
                http, server.client_url("StreamEvents"), dev_auth(user, tenant), body
            )

            def read_connect() -> pb.StreamEvent:
                try:
                    return json_format.ParseDict(connect.next(), pb.StreamEvent())
                except EndOfStream as end:
                    raise StreamEnded(end.code) from None

            stream = Stream(read_connect, connect.close)
        else:
            channel = grpc.insecure_channel(f"127.0.0.1:{server.ports.client}")
            resources.append(channel)
            call = notify_pb2_grpc.NotificationClientServiceStub(channel).StreamEvents(
                request, metadata=[("authorization", f"Bearer dev:{user}:{tenant}")], timeout=30
            )

            def read_grpc() -> pb.StreamEvent:
                try:
                    return next(call)
                except StopIteration:
                    raise StreamEnded("ok") from None
                except grpc.RpcError as error:
                    raise StreamEnded(error.code().name.lower()) from None

            stream = Stream(read_grpc, call.cancel)
        opened.append(stream)
        return stream

    yield opener
    for stream in opened:
        stream.close()
    for resource in resources:
        resource.close()


def publish(
    server: ServerThread, http: httpx.Client, key: str, *users: str, tenant: str = "acme"
) -> int:
    response = http.post(
        server.internal_url("PublishDataChange"),
        json={
            "tenantId": tenant,
            "userIds": list(users),
            "idempotencyKey": key,
            "subjectRef": "doc:7",
            "subjectType": "doc",
        },
    )
    assert response.status_code == 200, response.text
    return int(response.json()["sessions"])


def ack(
    server: ServerThread, http: httpx.Client, key: str, session_id: str, user: str = "user-alice"
) -> None:
    response = http.post(
        server.client_url("AckDataChange"),
        headers=dev_auth(user),
        json={"idempotencyKey": key, "sessionId": session_id},
    )
    assert response.status_code == 200, response.text


def metric(server: ServerThread, http: httpx.Client, name: str, **labels: str) -> float:
    text = http.get(server.metrics_url("/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture
def live_server() -> Iterator[ServerThread]:
    with running_server(live_retry_interval=0.05, live_retry_max_attempts=3) as srv:
        yield srv


def test_data_change_reaches_every_session_of_the_user_only(
    live_server: ServerThread, http: httpx.Client, open_stream: Opener
) -> None:
    mine = [open_stream(live_server), open_stream(live_server)]
    other_user = open_stream(live_server, "user-bob")
    other_tenant = open_stream(live_server, "user-alice", "globex")
    for stream in (*mine, other_user, other_tenant):
        stream.next()  # handshake
    assert publish(live_server, http, "k-1", "user-alice") == 2
    for stream in mine:
        event = stream.next_of("data_change")
        assert event.data_change.idempotency_key == "k-1"
        assert event.data_change.subject_ref == "doc:7"
        assert event.data_change.subject_type == "doc"
        ack(live_server, http, "k-1", stream.session_id)
    # The others got nothing: their next event is their own notification.
    http.post(live_server.internal_url(), json=notify_body("for-bob", "user-bob"))
    http.post(live_server.internal_url(), json=notify_body("for-globex", tenant="globex"))
    assert other_user.next_of("notification").notification.notification.notification_id == "for-bob"
    assert (
        other_tenant.next_of("notification").notification.notification.notification_id
        == "for-globex"
    )


def test_redelivered_until_acked_then_stops_and_gives_up_after_the_budget(
    live_server: ServerThread, http: httpx.Client, open_stream: Opener
) -> None:
    acker, ignorer = open_stream(live_server), open_stream(live_server)
    acker.next()
    ignorer.next()
    assert publish(live_server, http, "k-2", "user-alice") == 2
    assert acker.next_of("data_change").data_change.idempotency_key == "k-2"
    ack(live_server, http, "k-2", acker.session_id)
    # The first delivery plus NOTIFY_LIVE_RETRY_MAX_ATTEMPTS redeliveries.
    for _ in range(1 + 3):
        assert ignorer.next_of("data_change").data_change.idempotency_key == "k-2"
    assert metric(live_server, http, "notify_data_change_give_ups_total") == 1
    assert metric(live_server, http, "notify_data_change_redeliveries_total") >= 3
    # Nothing more for either: the next event each sees is this notification.
    http.post(live_server.internal_url(), json=notify_body("marker"))
    for stream in (acker, ignorer):
        assert stream.next_of("notification").notification.notification.notification_id == "marker"


def test_repeat_publish_starts_no_second_round_and_foreign_acks_do_nothing(
    live_server: ServerThread, http: httpx.Client, open_stream: Opener
) -> None:
    stream = open_stream(live_server)
    stream.next()
    assert publish(live_server, http, "k-3", "user-alice") == 1
    assert publish(live_server, http, "k-3", "user-alice") == 1
    assert stream.next_of("data_change").data_change.idempotency_key == "k-3"
    # Mallory names Alice's session: nothing changes, and the answer leaks nothing.
    ack(live_server, http, "k-3", stream.session_id, user="user-mallory")
    assert stream.next_of("data_change").data_change.idempotency_key == "k-3"  # redelivered
    ack(live_server, http, "k-3", stream.session_id)
    http.post(live_server.internal_url(), json=notify_body("after-ack"))
    assert stream.next_of("notification").notification.notification.notification_id == "after-ack"


def test_resume_replays_missed_notifications_in_order_then_continues_live(
    server: ServerThread, http: httpx.Client, open_stream: Opener
) -> None:
    first = open_stream(server)
    first.next()
    for i in (1, 2):
        http.post(server.internal_url(), json=notify_body(f"n-{i}"))
    seen = [first.next_of("notification").notification for _ in range(2)]
    assert all(event.resume_token for event in seen)
    first.close()
    missed = [f"n-{i}" for i in range(3, 8)]
    for notification_id in missed:
        http.post(server.internal_url(), json=notify_body(notification_id))
    resumed = open_stream(server, resume_token=seen[-1].resume_token)
    assert resumed.next().WhichOneof("event") == "heartbeat"
    replayed = [resumed.next_of("notification").notification for _ in missed]
    assert [e.notification.notification_id for e in replayed] == missed
    assert all(e.notification.status == pb.DELIVERY_STATUS_DELIVERED for e in replayed)
    http.post(server.internal_url(), json=notify_body("n-live"))
    assert resumed.next_of("notification").notification.notification.notification_id == "n-live"
    # Replayed rows are stored as delivered, not left pending.
    rows = http.post(server.client_url("GetNotifications"), headers=dev_auth(), json={}).json()
    assert {r["status"] for r in rows["notifications"]} == {"DELIVERY_STATUS_DELIVERED"}


def test_resume_is_exact_when_notifications_arrive_during_the_replay(
    server: ServerThread, http: httpx.Client, open_stream: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server.server is not None
    notifier = server.server.notifier
    store = notifier.store
    original = store.list_after

    def command(notification_id: str) -> NotifyCommand:
        return NotifyCommand(
            "acme", notification_id, ("user-alice",), (Channel.IN_APP,), "", "", notification_id, ""
        )

    async def racing_list_after(*args: Any, **kwargs: Any) -> list[Notification]:
        # One arrives after the session is registered but before the snapshot
        # (so it is both replayed and queued live), one after the snapshot.
        await notifier.notify(command("during-before-snapshot"))
        rows = await original(*args, **kwargs)
        await notifier.notify(command("during-after-snapshot"))
        return rows

    http.post(server.internal_url(), json=notify_body("seen"))
    first = open_stream(server)
    first.next()
    http.post(server.internal_url(), json=notify_body("seen-2"))
    token = first.next_of("notification").notification.resume_token
    first.close()
    http.post(server.internal_url(), json=notify_body("missed"))
    monkeypatch.setattr(store, "list_after", racing_list_after)
    resumed = open_stream(server, resume_token=token)
    resumed.next()
    got = [
        resumed.next_of("notification").notification.notification.notification_id for _ in range(3)
    ]
    assert got == ["missed", "during-before-snapshot", "during-after-snapshot"]
    # Then live, and nothing was sent twice: the next frame is the new one.
    http.post(server.internal_url(), json=notify_body("live"))
    assert resumed.next_of("notification").notification.notification.notification_id == "live"


def test_bad_resume_tokens(
    store_overrides: dict[str, Any], open_stream: Opener, http: httpx.Client
) -> None:
    with running_server(live_max_replay=3, **store_overrides) as server:
        with pytest.raises(StreamEnded) as malformed:
            open_stream(server, resume_token="not-a-token").next()
        assert malformed.value.code == "invalid_argument"
        stream = open_stream(server)
        stream.next()
        http.post(server.internal_url(), json=notify_body("base"))
        token = stream.next_of("notification").notification.resume_token
        stream.close()
        for i in range(4):
            http.post(server.internal_url(), json=notify_body(f"later-{i}"))
        too_old = open_stream(server, resume_token=token)
        too_old.next()  # the handshake comes first
        with pytest.raises(StreamEnded) as ended:
            too_old.next()
        assert ended.value.code == "out_of_range"


def test_per_user_stream_cap(open_stream: Opener, http: httpx.Client) -> None:
    with running_server(live_max_streams_per_user=2) as server:
        for _ in range(2):
            open_stream(server).next()
        with pytest.raises(StreamEnded) as refused:
            open_stream(server).next()
        assert refused.value.code == "resource_exhausted"
        open_stream(server, "user-bob").next()  # other users are not affected
        assert metric(server, http, "notify_streams_ended_total", reason="limit") == 1


def test_max_stream_age_ends_the_stream_cleanly(open_stream: Opener, http: httpx.Client) -> None:
    with running_server(live_max_stream_age=0.1) as server:
        stream = open_stream(server)
        stream.next()
        with pytest.raises(StreamEnded) as ended:
            stream.next_of("notification")
        assert ended.value.code == "ok"
        assert metric(server, http, "notify_streams_ended_total", reason="max_age") == 1


def send_until_the_slow_stream_ends(
    server: ServerThread, http: httpx.Client, fast: ConnectStream
) -> None:
    """Sends big notifications to user-alice, who has a stalled stream and ``fast``.

    Every one must reach the fast stream at once; the loop ends when the
    stalled stream's queue overflows and the server ends it.
    """
    assert server.server is not None
    hub = server.server.hub

    async def open_sessions() -> int:
        return len(hub)

    sent = 0
    while server.call(open_sessions()) == 2:
        assert sent < 500, "the slow stream was never ended"
        http.post(server.internal_url(), json=notify_body(f"big-{sent}", body="x" * 60_000))
        assert fast.next()["notification"]["notification"]["notificationId"] == f"big-{sent}"
        sent += 1
    assert metric(server, http, "notify_streams_ended_total", reason="slow_consumer") == 1


def test_slow_consumer_is_ended_and_others_keep_up(http: httpx.Client) -> None:
    """A client that stops reading fills its queue and is ended, never skipped."""
    with running_server(live_queue_size=8) as server:
        # The slow client: a raw socket with a tiny receive buffer that never reads.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", server.ports.client))
        request = envelope(b"{}")
        slow.sendall(
            f"POST {CLIENT_SVC}/StreamEvents HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer dev:user-alice:acme\r\n"
            "Content-Type: application/connect+json\r\n"
            f"Content-Length: {len(request)}\r\n\r\n".encode()
            + request
        )
        fast = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {})
        fast.next()
        send_until_the_slow_stream_ends(server, http, fast)
        # The fast stream still gets everything, in time.
        http.post(server.internal_url(), json=notify_body("after"))
        assert fast.next()["notification"]["notification"]["notificationId"] == "after"
        fast.close()
        # When the slow client finally reads, its stream ends with RESOURCE_EXHAUSTED.
        slow.settimeout(10)
        data = b""
        while b"reconnect and page what was missed" not in data:
            chunk = slow.recv(1 << 20)
            assert chunk, "the stream closed without its end-of-stream message"
            data += chunk
        assert b'"code": "resource_exhausted"' in data or b'"code":"resource_exhausted"' in data
        slow.close()


class RawGrpcStream:
    """StreamEvents over gRPC on a bare HTTP/2 connection whose flow control we hold.

    grpcio buffers whatever the server sends, so it cannot play a client that
    stops reading; with h2 directly, no WINDOW_UPDATE is sent until we say so.
    """

    def __init__(
        self, port: int, authorization: str, extra_headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        import h2.config
        import h2.connection

        self.sock = socket.create_connection(("127.0.0.1", port))
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            self.stream_id,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", f"127.0.0.1:{port}"),
                (":path", "/elloloop.notify.v1.NotificationClientService/StreamEvents"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("authorization", authorization),
                *extra_headers,
            ],
        )
        self.conn.send_data(self.stream_id, envelope(b""), end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        self.data = b""
        self.trailers: dict[str, str] = {}

    def read(self, *, open_window: bool) -> None:
        """Reads one chunk off the socket; with open_window, hands the window back."""
        import h2.events

        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        for event in self.conn.receive_data(chunk):
            if isinstance(event, h2.events.DataReceived):
                self.data += event.data
                if open_window:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
            elif isinstance(event, h2.events.TrailersReceived):
                self.trailers = {k.decode(): v.decode() for k, v in event.headers}
        self.sock.sendall(self.conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


def test_slow_grpc_consumer_is_ended_and_others_keep_up(http: httpx.Client) -> None:
    """The same over gRPC: HTTP/2 flow control stalls the stream, the queue fills."""
    with running_server(live_queue_size=8) as server:
        slow = RawGrpcStream(server.ports.client, "Bearer dev:user-alice:acme")
        while len(slow.data) < 5:
            slow.read(open_window=False)  # the handshake arrives; then we stop reading
        fast = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {})
        fast.next()
        send_until_the_slow_stream_ends(server, http, fast)
        fast.close()
        # Reading again, the client gets what was buffered, then the status.
        slow.sock.settimeout(10)
        while not slow.trailers:
            slow.read(open_window=True)
        assert slow.trailers["grpc-status"] == str(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
        assert "reconnect" in slow.trailers["grpc-message"]
        slow.close()
