"""GET /v1/events: the live stream as Server-Sent Events, over real sockets.

Every stream scenario runs over HTTP/1.1 (uvicorn) and HTTP/2 prior knowledge
(hypercorn), the two ways the client port serves a request.
"""

from __future__ import annotations

import base64
import json
import signal
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from prometheus_client.parser import text_string_to_metric_families

from notify.core.ratelimit import Rate
from tests.e2e.test_process import Notifyd
from tests.sse_client import EventStream, SSEvent
from tests.support import (
    ConnectStream,
    ServerThread,
    dev_auth,
    eventually,
    make_jwt,
    notify_body,
    running_server,
)

DEV_TOKEN = "dev:user-alice:acme"

Opener = Callable[..., EventStream]


@pytest.fixture(params=["http1", "h2c"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_events(transport: str) -> Iterator[Opener]:
    """Opens ``GET /v1/events`` on a server; every stream and client is closed afterwards."""
    clients: list[httpx.Client] = []
    streams: list[EventStream] = []

    def opener(
        server: ServerThread,
        headers: dict[str, str] | None = None,
        **params: str,
    ) -> EventStream:
        client = (
            httpx.Client(timeout=10)
            if transport == "http1"
            else httpx.Client(timeout=10, http1=False, http2=True)
        )
        clients.append(client)
        base = f"http://127.0.0.1:{server.ports.client}"
        if headers is None and "access_token" not in params:
            headers = dev_auth()
        stream = EventStream(client, base, headers, params, owns_client=True)
        expected = "HTTP/1.1" if transport == "http1" else "HTTP/2"
        assert stream.response.http_version == expected
        streams.append(stream)
        return stream

    yield opener
    for stream in streams:
        stream.close()
    for client in clients:
        client.close()


def notify(http: httpx.Client, server: ServerThread, notification_id: str, **extra: Any) -> None:
    response = http.post(server.internal_url(), json=notify_body(notification_id, **extra))
    assert response.status_code == 200, response.text


def title_of(event: SSEvent) -> str:
    return str(event.data["notification"]["notification"]["notificationId"])


def metric(server: ServerThread, http: httpx.Client, name: str, **labels: str) -> float:
    text = http.get(server.metrics_url("/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def open_sessions(server: ServerThread) -> int:
    assert server.server is not None
    hub = server.server.hub

    async def count() -> int:
        return len(hub)

    return server.call(count())


# --------------------------------------------------------------------------- the stream


def test_handshake_counts_then_live_notifications(
    server: ServerThread, http: httpx.Client, open_events: Opener
) -> None:
    stream = open_events(server)
    assert stream.response.headers["content-type"] == "text/event-stream"
    assert stream.response.headers["cache-control"] == "no-store"
    assert stream.block().retry == 1000  # the reconnect hint comes first
    handshake = stream.block()
    assert handshake.event == "heartbeat"
    session_id = handshake.data["sessionId"]
    assert session_id
    assert handshake.id is None  # nothing to resume from yet
    counts = stream.block()
    assert counts.event == "counts"
    assert counts.data == {
        "sessionId": session_id,
        "counts": {"counts": {"unread": 0, "unseen": 0, "total": 0}},
    }
    notify(http, server, "n-1", title="Build finished")
    live = stream.next()
    assert live.event == "notification"
    assert live.data["sessionId"] == session_id
    row = live.data["notification"]["notification"]
    assert (row["notificationId"], row["title"]) == ("n-1", "Build finished")
    # The event id is the notification's resume token.
    assert live.id == live.data["notification"]["resumeToken"]
    assert live.id


def test_data_is_the_same_json_as_the_connect_stream(
    server: ServerThread, http: httpx.Client, open_events: Opener
) -> None:
    connect = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {})
    try:
        connect.next()
        sse = open_events(server)
        sse.next()
        notify(
            http,
            server,
            "rich",
            severity="SEVERITY_ERROR",
            tags=["api", "prod"],
            data={"deploy": 91, "nested": {"ok": True, "list": [1, "two"]}},
            actions=[{"id": "logs", "label": "Open logs", "url": "/logs", "primary": True}],
            body="line one\nline two\r\nline three",
        )
        over_connect = connect.next()
        over_sse = sse.next().data
    finally:
        connect.close()
    assert over_sse["notification"] == over_connect["notification"]
    assert over_sse["notification"]["notification"]["body"] == "line one\nline two\r\nline three"


def test_heartbeats_are_comments_at_the_stream_interval(
    open_events: Opener, http: httpx.Client
) -> None:
    with running_server(live_heartbeat_interval=0.05) as server:
        stream = open_events(server)
        stream.next()  # the handshake is an event: it carries the session id
        beats: list[int] = []
        while len(beats) < 3:
            block = stream.block()
            assert block.event in ("", "counts"), block
            for comment in block.comments:
                word, _, stamp = comment.partition(" ")
                assert word == "heartbeat"
                beats.append(int(stamp))
        assert beats == sorted(beats)
        assert beats[-1] - beats[0] >= 2 * 50 - 5
        assert metric(server, http, "notify_stream_events_sent_total", kind="heartbeat") >= 4


def test_data_change_and_update_events(
    server: ServerThread, http: httpx.Client, open_events: Opener
) -> None:
    stream = open_events(server)
    session_id = stream.next().data["sessionId"]
    notify(http, server, "n-1")
    notification = stream.next_of("notification")
    published = http.post(
        server.internal_url("PublishDataChange"),
        json={
            "tenantId": "acme",
            "userIds": ["user-alice"],
            "idempotencyKey": "k-1",
            "subjectRef": "doc:7",
            "subjectType": "doc",
        },
    )
    assert published.json() == {"sessions": 1}
    change = stream.next_of("data_change")
    assert change.data["dataChange"] == {
        "idempotencyKey": "k-1",
        "subjectRef": "doc:7",
        "subjectType": "doc",
    }
    assert change.id is None
    acked = http.post(
        server.client_url("AckDataChange"),
        headers=dev_auth(),
        json={"idempotencyKey": "k-1", "sessionId": session_id},
    )
    assert acked.status_code == 200
    marked = http.post(
        server.client_url("MarkNotifications"),
        headers=dev_auth(),
        json={"all": True, "mark": "MARK_READ"},
    )
    assert marked.json()["updated"] == 1
    update = stream.next_of("update")
    assert update.data["update"]["notifications"][0]["status"] == "DELIVERY_STATUS_READ"
    # An update advances the resume position too: its token is the event id.
    assert update.id == update.data["update"]["resumeToken"]
    assert update.id != notification.id


# --------------------------------------------------------------------------- resume


def test_last_event_id_resumes_exactly_once(
    server: ServerThread, http: httpx.Client, open_events: Opener
) -> None:
    first = open_events(server)
    first.next()
    for i in (1, 2):
        notify(http, server, f"n-{i}")
    seen = [first.next_of("notification") for _ in range(2)]
    assert [title_of(e) for e in seen] == ["n-1", "n-2"]
    first.close()
    eventually(lambda: open_sessions(server) == 0, what="the first stream to close")
    missed = [f"n-{i}" for i in range(3, 7)]
    for notification_id in missed:
        notify(http, server, notification_id)
    resumed = open_events(server, {**dev_auth(), "Last-Event-ID": str(seen[-1].id)})
    assert resumed.next().event == "heartbeat"
    replayed = [resumed.next_of("notification") for _ in missed]
    assert [title_of(e) for e in replayed] == missed
    statuses = {e.data["notification"]["notification"]["status"] for e in replayed}
    assert statuses == {"DELIVERY_STATUS_DELIVERED"}
    # Then live, and nothing twice: the next notification is the new one.
    notify(http, server, "n-live")
    assert title_of(resumed.next_of("notification")) == "n-live"


def test_resume_token_parameter_and_last_event_id_precedence(
    server: ServerThread, http: httpx.Client, open_events: Opener
) -> None:
    first = open_events(server)
    first.next()
    for i in (1, 2, 3):
        notify(http, server, f"n-{i}")
    ids = [first.next_of("notification").id for _ in range(3)]
    first.close()
    # The query parameter resumes like StreamEventsRequest.resume_token ...
    by_param = open_events(server, resume_token=str(ids[0]))
    by_param.next()
    assert [title_of(by_param.next_of("notification")) for _ in range(2)] == ["n-2", "n-3"]
    by_param.close()
    # ... and Last-Event-ID wins over it: a browser reconnects to the same URL
    # (with the old token) and sends the id of the last event it got.
    both = open_events(server, {**dev_auth(), "Last-Event-ID": str(ids[1])}, resume_token=ids[0])
    both.next()
    assert title_of(both.next_of("notification")) == "n-3"
    notify(http, server, "n-4")
    assert title_of(both.next_of("notification")) == "n-4"


def test_a_resume_too_far_behind_is_409_before_the_stream(
    open_events: Opener, http: httpx.Client
) -> None:
    with running_server(live_max_replay=3) as server:
        stream = open_events(server)
        stream.next()
        notify(http, server, "base")
        token = str(stream.next_of("notification").id)
        stream.close()
        for i in range(4):
            notify(http, server, f"later-{i}")
        too_old = open_events(server, {**dev_auth(), "Last-Event-ID": token})
        assert too_old.status == 409
        assert too_old.error is not None
        assert too_old.error["code"] == "out_of_range"
        assert "GetNotifications" in too_old.error["message"]
        eventually(lambda: open_sessions(server) == 0, what="the refused session to close")
        labels = {"procedure": "/v1/events", "protocol": "sse", "code": "out_of_range"}
        assert metric(server, http, "notify_rpc_requests_total", **labels) == 1


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("headers", "params", "status", "code"),
    [
        ({}, {}, 401, "unauthenticated"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, {}, 401, "unauthenticated"),
        ({}, {"access_token": ""}, 401, "unauthenticated"),
        ({}, {"access_token": "not-a-jwt"}, 401, "unauthenticated"),
        (dev_auth(), {"access_token": DEV_TOKEN}, 400, "invalid_argument"),
        (dev_auth(), {"device_type": "toaster"}, 400, "invalid_argument"),
        (dev_auth(), {"device_type": "99"}, 400, "invalid_argument"),
        (dev_auth(), {"resume_token": "not-a-token"}, 400, "invalid_argument"),
        ({**dev_auth(), "Last-Event-ID": "not-a-token"}, {}, 400, "invalid_argument"),
    ],
)
def test_refusals_are_an_http_status_and_a_connect_error(
    server: ServerThread,
    open_events: Opener,
    http: httpx.Client,
    headers: dict[str, str],
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    refused = open_events(server, headers, **params)
    assert refused.status == status
    assert refused.error is not None
    assert refused.error["code"] == code
    assert refused.error["message"]
    assert refused.response.headers["content-type"] == "application/json"
    assert open_sessions(server) == 0
    labels = {"procedure": "/v1/events", "protocol": "sse", "code": code}
    assert metric(server, http, "notify_rpc_requests_total", **labels) == 1


def test_query_strings_that_cannot_be_read(server: ServerThread, http: httpx.Client) -> None:
    base = f"http://127.0.0.1:{server.ports.client}/v1/events"
    duplicate = http.get(f"{base}?device_type=browser&device_type=ios", headers=dev_auth())
    assert duplicate.status_code == 400
    assert "more than once" in duplicate.json()["message"]
    many = "&".join(f"x{i}=1" for i in range(40))
    assert http.get(f"{base}?{many}", headers=dev_auth()).status_code == 400
    # Unknown parameters are ignored, as unknown JSON fields are.
    with EventStream(http, base.removesuffix("/v1/events"), dev_auth(), {"foo": "bar"}) as ok:
        assert ok.status == 200


def test_device_type_spellings(server: ServerThread, http: httpx.Client) -> None:
    base = f"http://127.0.0.1:{server.ports.client}"
    for spelling, label in [
        ("browser", "browser"),
        ("DEVICE_TYPE_IOS", "ios"),
        ("2", "android"),
        ("", "unspecified"),
    ]:
        with EventStream(http, base, dev_auth(), {"device_type": spelling}) as stream:
            stream.next()
            assert metric(server, http, "notify_streams_open", device_type=label) == 1
        eventually(lambda: open_sessions(server) == 0, what="the stream to close")


def test_only_get(server: ServerThread, http: httpx.Client) -> None:
    url = f"http://127.0.0.1:{server.ports.client}/v1/events"
    response = http.post(url, headers=dev_auth())
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["code"] == "unimplemented"


def test_streaming_switched_off(http: httpx.Client) -> None:
    with running_server(live_connections_enabled=False) as server:
        url = f"http://127.0.0.1:{server.ports.client}/v1/events"
        response = http.get(url, headers=dev_auth())
        assert response.status_code == 501
        assert response.json()["code"] == "unimplemented"


def test_jwt_in_the_header_or_the_query(http: httpx.Client, open_events: Opener) -> None:
    with running_server(dev_mode=False, jwt_secret="s" * 40, internal_token="i" * 40) as server:
        token = make_jwt(secret="s" * 40)
        by_header = open_events(server, {"Authorization": f"Bearer {token}"})
        assert by_header.next().event == "heartbeat"
        by_query = open_events(server, {}, access_token=token)
        assert by_query.next().event == "heartbeat"
        expired = open_events(server, {}, access_token=make_jwt(secret="s" * 40, expires_in=-600))
        assert expired.status == 401
        assert expired.error == {"code": "unauthenticated", "message": "token has expired"}
        forged = open_events(server, {}, access_token=make_jwt(secret="f" * 40))
        assert (forged.status, forged.error) == (
            401,
            {"code": "unauthenticated", "message": "token is invalid"},
        )
        dev = open_events(server, {}, access_token=DEV_TOKEN)
        assert dev.status == 401


# --------------------------------------------------------------------------- limits


def test_per_user_stream_limit_is_shared_with_stream_events(
    open_events: Opener, http: httpx.Client
) -> None:
    with running_server(live_max_streams_per_user=2) as server:
        connect = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {})
        try:
            connect.next()
            open_events(server).next()
            refused = open_events(server)
            assert refused.status == 429
            assert refused.error is not None
            assert refused.error["code"] == "resource_exhausted"
            assert open_events(server, dev_auth("user-bob")).next().event == "heartbeat"
            assert metric(server, http, "notify_streams_ended_total", reason="limit") == 1
        finally:
            connect.close()


def test_max_streams_per_process(open_events: Opener) -> None:
    with running_server(live_max_streams=1) as server:
        open_events(server).next()
        refused = open_events(server, dev_auth("user-bob"))
        assert refused.status == 429
        assert refused.error is not None
        assert "too many open streams" in refused.error["message"]


def test_rate_limit_spends_the_callers_bucket_with_a_retry_hint(
    open_events: Opener, http: httpx.Client
) -> None:
    with running_server(rate_limit_client=Rate(1, 60.0)) as server:
        open_events(server).next()
        refused = open_events(server)
        assert refused.status == 429
        assert int(refused.response.headers["retry-after"]) >= 1
        assert refused.error is not None
        assert refused.error["code"] == "resource_exhausted"
        (detail,) = refused.error["details"]
        assert detail["type"] == "google.rpc.RetryInfo"
        retry = RetryInfo.FromString(base64.b64decode(detail["value"] + "=="))
        assert retry.retry_delay.seconds >= 1
        # The same bucket as the Connect calls of that user.
        unary = http.post(server.client_url("GetCounts"), headers=dev_auth(), json={})
        assert unary.status_code == 429
        # Another user has a bucket of their own.
        assert open_events(server, dev_auth("user-bob")).status == 200


def test_max_stream_age_ends_the_stream_cleanly(open_events: Opener, http: httpx.Client) -> None:
    with running_server(live_max_stream_age=0.1) as server:
        stream = open_events(server)
        stream.next()
        assert stream.until_end() == {}
        assert metric(server, http, "notify_streams_ended_total", reason="max_age") == 1
        labels = {"procedure": "/v1/events", "protocol": "sse", "code": "ok"}
        assert metric(server, http, "notify_rpc_requests_total", **labels) == 1


def test_slow_consumer_is_ended_with_resource_exhausted(
    open_events: Opener, http: httpx.Client
) -> None:
    with running_server(live_queue_size=2) as server:
        stream = open_events(server)
        stream.next()
        # The test reads nothing while Notifies pile up: the socket's buffers fill,
        # then the session's queue, and the server ends the stream.
        for i in range(300):
            if open_sessions(server) == 0:
                break
            notify(http, server, f"big-{i}", body="x" * 60_000)
        else:
            raise AssertionError("the stalled stream was never ended")
        assert metric(server, http, "notify_streams_ended_total", reason="slow_consumer") == 1
        end = stream.until_end()  # past everything queued before it
        assert end == {
            "error": {
                "code": "resource_exhausted",
                "message": "stream fell too far behind; reconnect and page what was missed",
            }
        }


# --------------------------------------------------------------------------- the port


def test_the_stream_ends_when_the_client_goes_away(
    server: ServerThread, http: httpx.Client, open_events: Opener
) -> None:
    stream = open_events(server)
    stream.next()
    assert metric(server, http, "notify_streams_open", device_type="unspecified") == 1
    stream.close()
    eventually(lambda: open_sessions(server) == 0, what="the session to close")
    assert metric(server, http, "notify_streams_open", device_type="unspecified") == 0
    # The response itself is over too (over HTTP/2 it must not wait on a dead connection).
    assert server.server is not None
    client_listener = server.server._api_listeners[0]

    async def idle() -> bool:
        return client_listener.idle()

    eventually(lambda: server.call(idle()), what="the client port to have no connection left")
    eventually(
        lambda: (
            metric(
                server, http, "notify_rpc_requests_total", procedure="/v1/events", code="canceled"
            )
            == 1
        ),
        what="the stream to be counted",
    )


def test_cors_as_on_the_client_port(http: httpx.Client, open_events: Opener) -> None:
    app = "http://127.0.0.1:5173"
    with running_server(allowed_origins=(app,)) as server:
        allowed = open_events(server, {"Origin": app}, access_token=DEV_TOKEN)
        assert allowed.status == 200
        assert allowed.response.headers["access-control-allow-origin"] == app
        assert allowed.response.headers["access-control-allow-credentials"] == "true"
        assert "origin" in allowed.response.headers["vary"].lower()
        refused = open_events(server, {"Origin": app})  # an error is readable cross-origin too
        assert refused.status == 401
        assert refused.response.headers["access-control-allow-origin"] == app
        evil = open_events(server, {"Origin": "http://evil.example"}, access_token=DEV_TOKEN)
        assert "access-control-allow-origin" not in evil.response.headers
        # fetch-based SSE clients send these, which preflights them.
        base = f"http://127.0.0.1:{server.ports.client}"
        preflight = http.options(
            base + "/v1/events",
            headers={
                "Origin": app,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization,last-event-id",
            },
        )
        assert preflight.status_code == 204
        allowed_headers = preflight.headers["access-control-allow-headers"].lower()
        assert "last-event-id" in allowed_headers
        assert "authorization" in allowed_headers


def test_drain_ends_event_streams_with_unavailable(open_events: Opener, http: httpx.Client) -> None:
    with running_server() as server:
        stream = open_events(server)
        stream.next()
        server.begin_shutdown()
        assert stream.until_end() == {
            "error": {"code": "unavailable", "message": "server is shutting down; reconnect"}
        }
        server.join()


def test_access_token_is_never_logged(
    server: ServerThread, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "dev:user-alice:acme"
    base = f"http://127.0.0.1:{server.ports.client}"
    with caplog.at_level("DEBUG"):
        with EventStream(http, base, {}, {"access_token": secret}) as stream:
            stream.next()
        bad = http.get(f"{base}/v1/events?access_token=forged-{secret}")
        assert bad.status_code == 401
        missing = http.get(f"{base}/v1/nothing?access_token={secret}")
        assert missing.status_code != 200
        eventually(
            lambda: sum(getattr(r, "procedure", "") == "/v1/events" for r in caplog.records) == 2,
            what="the request log lines",
        )
    # Everything the server logged (the test's own httpx logs the URLs it asks for).
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    lines = [json.dumps(r.__dict__, default=str) + r.getMessage() for r in server_side]
    assert any('"user": "user-alice"' in line for line in lines)
    assert not [line for line in lines if secret in line]
    # Where a server's access log is on, it shows the parameter, redacted.
    access = [r.getMessage() for r in server_side if r.name == "uvicorn.access"]
    assert all("access_token=REDACTED" in line for line in access if "access_token" in line)


def test_sigterm_ends_event_streams_and_the_token_is_in_no_log_line() -> None:
    """The real notifyd, outside dev mode: a JWT in access_token, then SIGTERM."""
    secret = "s" * 40
    notifyd = Notifyd(
        NOTIFY_AUTH_DEV_MODE="false",
        NOTIFY_AUTH_JWT_SECRET=secret,
        NOTIFY_INTERNAL_TOKEN="i" * 40,
        NOTIFY_SHUTDOWN_TIMEOUT="10s",
    )
    try:
        started = notifyd.wait_for_log("notify started")
        base = f"http://127.0.0.1:{started['client_port']}"
        token = make_jwt(secret=secret)
        with httpx.Client(timeout=10) as http:
            refused = http.get(f"{base}/v1/events?access_token={token}x")
            assert refused.status_code == 401
            with EventStream(http, base, {}, {"access_token": token}) as stream:
                assert stream.next().event == "heartbeat"
                notifyd.proc.send_signal(signal.SIGTERM)
                assert stream.until_end() == {
                    "error": {
                        "code": "unavailable",
                        "message": "server is shutting down; reconnect",
                    }
                }
        assert notifyd.proc.wait(timeout=15) == 0
        notifyd.wait_for_log("notify stopped")
    finally:
        notifyd.stop()
    lines = [json.loads(line) for line in notifyd.log]
    events = [line for line in lines if line.get("procedure") == "/v1/events"]
    assert {(line["protocol"], line["code"]) for line in events} == {
        ("sse", "unauthenticated"),
        ("sse", "unavailable"),
    }
    signature = token.rsplit(".", 1)[1]
    assert not [line for line in notifyd.log if signature in line or "access_token" in line]
