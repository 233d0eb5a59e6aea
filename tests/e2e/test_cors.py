"""CORS on the client port, as browsers see it: preflights and the responses after them.

Each server here is configured through ``allowed_origins`` (NOTIFY_ALLOWED_ORIGINS)
and answers real HTTP/1.1 requests carrying the headers a browser adds to a
cross-origin ``fetch`` from @connectrpc/connect-web.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    ConnectStream,
    ServerThread,
    dev_auth,
    envelope,
    notify_body,
    read_envelopes,
    running_server,
)

APP = "http://localhost:5173"
EVIL = "http://evil.example"

# Every request header connect-web (Connect and gRPC-Web transports) may send.
CONNECT_REQUEST_HEADERS = (
    "content-type",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-accept-encoding",
    "connect-content-encoding",
    "authorization",
    "grpc-timeout",
    "x-grpc-web",
    "x-user-agent",
    "accept-encoding",
    "content-encoding",
)
EXPOSED = (
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "content-encoding",
    "connect-content-encoding",
)


def tokens(value: str | None) -> set[str]:
    return {token.strip().lower() for token in (value or "").split(",") if token.strip()}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def preflight(
    http: httpx.Client,
    server: ServerThread,
    origin: str,
    *,
    method: str = "POST",
    headers: tuple[str, ...] = ("content-type", "connect-protocol-version", "authorization"),
    rpc: str = "GetNotifications",
) -> httpx.Response:
    return http.options(
        server.client_url(rpc),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": ",".join(headers),
        },
    )


@pytest.fixture
def app_server() -> Iterator[ServerThread]:
    with running_server(allowed_origins=(APP, "https://other.example")) as srv:
        yield srv


@pytest.fixture
def any_server() -> Iterator[ServerThread]:
    with running_server(allowed_origins=("*",)) as srv:
        yield srv


def test_preflight_from_allowed_origin(app_server: ServerThread, http: httpx.Client) -> None:
    for rpc in ("GetNotifications", "StreamEvents", "AckNotification"):
        response = preflight(http, app_server, APP, headers=CONNECT_REQUEST_HEADERS, rpc=rpc)
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert response.headers["access-control-allow-origin"] == APP
        assert response.headers["access-control-allow-credentials"] == "true"
        assert {"post", "get", "options"} <= tokens(
            response.headers["access-control-allow-methods"]
        )
        allowed = tokens(response.headers["access-control-allow-headers"])
        assert set(CONNECT_REQUEST_HEADERS) <= allowed
        assert int(response.headers["access-control-max-age"]) >= 600
        assert "origin" in tokens(response.headers["vary"])


def test_preflight_matches_each_configured_origin_exactly(
    app_server: ServerThread, http: httpx.Client
) -> None:
    response = preflight(http, app_server, "https://other.example")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://other.example"
    # Near misses are other origins: scheme, port and subdomain all count.
    for origin in (
        "https://localhost:5173",
        "http://localhost:5174",
        "http://localhost",
        "https://evil.other.example",
        "https://other.example.evil",
        "null",
    ):
        response = preflight(http, app_server, origin)
        assert response.status_code == 403, origin
        assert cors_headers(response) == {}, origin


def test_preflight_from_disallowed_origin_gets_no_cors_headers(
    app_server: ServerThread, http: httpx.Client
) -> None:
    response = preflight(http, app_server, EVIL, headers=CONNECT_REQUEST_HEADERS)
    assert response.status_code == 403
    assert cors_headers(response) == {}
    assert "origin" in tokens(response.headers["vary"])


def test_simple_post_from_allowed_origin_exposes_headers(
    app_server: ServerThread, http: httpx.Client
) -> None:
    response = http.post(
        app_server.client_url("GetNotifications"),
        headers={**dev_auth(), "Origin": APP, "Connect-Protocol-Version": "1"},
        json={"limit": 5},
    )
    assert response.status_code == 200, response.text
    assert response.json()["notifications"] == []
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert set(EXPOSED) <= tokens(response.headers["access-control-expose-headers"])
    assert "origin" in tokens(response.headers["vary"])
    # Exactly one Allow-Origin: a browser rejects a response with two.
    assert len(response.headers.get_list("access-control-allow-origin")) == 1


def test_error_responses_carry_cors_headers_too(
    app_server: ServerThread, http: httpx.Client
) -> None:
    """A browser can only read an error's code when the error response is CORS-enabled."""
    response = http.post(
        app_server.client_url("GetNotifications"),
        headers={"Origin": APP, "Content-Type": "application/json"},
        json={},
    )
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["access-control-allow-origin"] == APP


def test_simple_post_from_disallowed_origin_gets_no_cors_headers(
    app_server: ServerThread, http: httpx.Client
) -> None:
    """The server still answers (CORS is enforced by the browser), but never allows it."""
    response = http.post(
        app_server.client_url("GetNotifications"),
        headers={**dev_auth(), "Origin": EVIL},
        json={},
    )
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert "origin" in tokens(response.headers["vary"])


def test_requests_without_origin_are_untouched(
    app_server: ServerThread, http: httpx.Client
) -> None:
    response = http.post(app_server.client_url("GetNotifications"), headers=dev_auth(), json={})
    assert response.status_code == 200
    assert cors_headers(response) == {}


def test_grpc_web_from_allowed_origin(app_server: ServerThread, http: httpx.Client) -> None:
    """connect-web's gRPC-Web transport: binary frames, status in a trailer frame."""
    pre = preflight(
        http,
        app_server,
        APP,
        headers=("content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"),
    )
    assert pre.status_code == 204
    response = http.post(
        app_server.client_url("GetNotifications"),
        headers={
            **dev_auth(),
            "Origin": APP,
            "Content-Type": "application/grpc-web+proto",
            "X-Grpc-Web": "1",
            "X-User-Agent": "connect-es/2",
            "Grpc-Timeout": "5S",
        },
        content=envelope(pb.GetNotificationsRequest(limit=3).SerializeToString()),
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    exposed = tokens(response.headers["access-control-expose-headers"])
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed
    frames = list(read_envelopes(iter([response.content])))
    assert pb.GetNotificationsResponse.FromString(frames[0][1]).unread_count == 0
    assert frames[-1][0] & 0x80


def test_stream_from_allowed_origin(app_server: ServerThread, http: httpx.Client) -> None:
    stream = ConnectStream(
        http,
        app_server.client_url("StreamEvents"),
        {**dev_auth(), "Origin": APP},
        {"deviceType": "DEVICE_TYPE_BROWSER"},
    )
    try:
        assert stream.response.headers["access-control-allow-origin"] == APP
        assert stream.next()["sessionId"]
        http.post(app_server.internal_url(), json=notify_body("cors-1"))
        assert stream.next()["notification"]["notification"]["notificationId"] == "cors-1"
    finally:
        stream.close()


def test_wildcard_config(any_server: ServerThread, http: httpx.Client) -> None:
    response = preflight(http, any_server, EVIL, headers=CONNECT_REQUEST_HEADERS)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    # `*` in Allow-Headers would not cover Authorization: it is listed by name.
    assert set(CONNECT_REQUEST_HEADERS) <= tokens(response.headers["access-control-allow-headers"])

    simple = http.post(
        any_server.client_url("GetNotifications"),
        headers={**dev_auth(), "Origin": "https://anything.example"},
        json={},
    )
    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in simple.headers
    assert "grpc-status" in tokens(simple.headers["access-control-expose-headers"])


def test_wildcard_with_exact_origins(http: httpx.Client) -> None:
    """An exact match is echoed (with credentials); every other origin gets `*` without."""
    with running_server(allowed_origins=(APP, "*")) as server:
        exact = preflight(http, server, APP)
        assert exact.headers["access-control-allow-origin"] == APP
        assert exact.headers["access-control-allow-credentials"] == "true"
        other = preflight(http, server, EVIL)
        assert other.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in other.headers


def test_configured_origins_are_normalized(http: httpx.Client) -> None:
    """Browsers send lower-case origins without a trailing slash."""
    with running_server(allowed_origins=("HTTP://LocalHost:5173/",)) as server:
        response = preflight(http, server, APP)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == APP


def test_no_origins_configured(server: ServerThread, http: httpx.Client) -> None:
    """The default: no browser origin is allowed, and a preflight is refused, not 405."""
    response = preflight(http, server, APP)
    assert response.status_code == 403
    assert cors_headers(response) == {}
    simple = http.post(
        server.client_url("GetNotifications"), headers={**dev_auth(), "Origin": APP}, json={}
    )
    assert simple.status_code == 200
    assert cors_headers(simple) == {}


def test_options_without_preflight_headers_reaches_the_app(
    app_server: ServerThread, http: httpx.Client
) -> None:
    """Only a real preflight (Origin + Access-Control-Request-Method) is answered by CORS."""
    response = http.options(app_server.client_url("GetNotifications"), headers={"Origin": APP})
    assert response.status_code != 204
    assert response.headers["access-control-allow-origin"] == APP


def test_internal_port_has_no_cors(app_server: ServerThread, http: httpx.Client) -> None:
    """Producers are backends, never browsers: the internal port stays closed to them."""
    response = http.options(
        app_server.internal_url(),
        headers={"Origin": APP, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
    simple = http.post(
        app_server.internal_url(), headers={"Origin": APP}, json=notify_body("cors-internal")
    )
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


def test_preflights_are_not_counted_as_rpcs(app_server: ServerThread, http: httpx.Client) -> None:
    for origin in (APP, EVIL):
        preflight(http, app_server, origin)
    http.post(app_server.client_url("GetNotifications"), headers=dev_auth(), json={})
    text = http.get(app_server.metrics_url("/metrics")).text
    samples = [
        sample
        for family in text_string_to_metric_families(text)
        if family.name == "notify_rpc_requests"
        for sample in family.samples
        if sample.name == "notify_rpc_requests_total" and sample.value > 0
    ]
    labels = [json.dumps(sample.labels, sort_keys=True) for sample in samples]
    assert len(samples) == 1, labels
    assert samples[0].labels["procedure"].endswith("/GetNotifications")
