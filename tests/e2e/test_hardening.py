"""Hostile traffic over real sockets: every limit answers in the request's protocol.

Request limits (body, envelope, gzip, headers, credentials first), protocol
errors for bad headers and timeouts, gRPC over HTTP/1.1, connection and stream
caps, the slowloris deadlines, and a malformed HTTP/2 header failing only its
own stream. RSS under attack is measured against a real process in
test_hardening_process.py.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from tests.support import (
    CLIENT_SVC,
    INTERNAL_SVC,
    ConnectStream,
    EndOfStream,
    ServerThread,
    dev_auth,
    envelope,
    notify_body,
    read_envelopes,
    running_server,
)

CAP = 64 * 1024  # a small NOTIFY_MAX_REQUEST_BYTES keeps the tests fast
BOMB = gzip.compress(b"\0" * (CAP * 50))  # inflates 50 times past the cap


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with running_server(
        max_request_bytes=CAP, http_header_timeout=0.5, http_body_timeout=0.5
    ) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def metric(server: ServerThread, name: str, **labels: str) -> float:
    text = httpx.get(server.metrics_url("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"code", "message"}
    return dict(body)


def raw_exchange(port: int, request: bytes, *, shut: bool = False) -> bytes:
    """Sends bytes, reads until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# --- request limits ---------------------------------------------------------


def test_gzip_bomb_is_resource_exhausted(server: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        server.client_url("GetNotifications"),
        headers={**dev_auth(), "Content-Type": "application/json", "Content-Encoding": "gzip"},
        content=BOMB,
    )
    assert response.status_code == 429
    assert error_of(response)["code"] == "resource_exhausted"


def test_anonymous_gzip_bomb_is_refused_before_inflating(
    server: ServerThread, http: httpx.Client
) -> None:
    response = http.post(
        server.client_url("GetNotifications"),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        content=BOMB,
    )
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_gzip_that_is_not_gzip_is_invalid_argument(
    server: ServerThread, http: httpx.Client
) -> None:
    response = http.post(
        server.client_url("GetNotifications"),
        headers={**dev_auth(), "Content-Type": "application/json", "Content-Encoding": "gzip"},
        content=b'{"limit": 5}',
    )
    assert response.status_code == 400
    assert error_of(response) == {"code": "invalid_argument", "message": "body is not valid gzip"}


def test_good_gzip_still_works(server: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        server.client_url("GetNotifications"),
        headers={**dev_auth(), "Content-Type": "application/json", "Content-Encoding": "gzip"},
        content=gzip.compress(b'{"limit": 5}'),
    )
    assert response.status_code == 200, response.text


def test_compressed_stream_envelope_bomb_ends_the_stream(
    server: ServerThread, http: httpx.Client
) -> None:
    with http.stream(
        "POST",
        server.client_url("StreamEvents"),
        headers={
            **dev_auth(),
            "Content-Type": "application/connect+json",
            "Connect-Content-Encoding": "gzip",
        },
        content=envelope(BOMB, flags=0x01),
    ) as response:
        frames = list(read_envelopes(response.iter_raw()))
    flags, payload = frames[-1]
    assert flags & 0x02
    assert json.loads(payload)["error"]["code"] == "resource_exhausted"


def test_declared_content_length_over_the_cap_is_answered_before_the_body(
    server: ServerThread,
) -> None:
    head = (
        f"POST {INTERNAL_SVC}/Notify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
    ).encode()
    answer = raw_exchange(server.ports.internal, head)  # not one body byte is sent
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 429 Too Many Requests"
    assert b"connection: close" in rest.lower()
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["code"] == "resource_exhausted"


def test_streamed_body_is_cut_at_the_cap(server: ServerThread, http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(CAP // 1024 + 10):  # chunked: no Content-Length to refuse early
            yield b" " * 1024

    response = http.post(
        server.internal_url(), headers={"Content-Type": "application/json"}, content=chunks()
    )
    assert response.status_code == 429
    assert error_of(response)["code"] == "resource_exhausted"


def test_stream_envelope_declaring_4_gib_is_refused_from_its_header(
    server: ServerThread,
) -> None:
    head = (
        f"POST {CLIENT_SVC}/StreamEvents HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer dev:user-alice:acme\r\n"
        "Content-Type: application/connect+json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    frame_header = struct.pack(">BI", 0, 2**32 - 1)
    chunk = b"%x\r\n%s\r\n" % (len(frame_header), frame_header)
    answer = raw_exchange(server.ports.client, head + chunk)  # then nothing more
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"resource_exhausted"' in answer


def test_compressed_flag_without_an_encoding_is_invalid_argument(
    server: ServerThread, http: httpx.Client
) -> None:
    with http.stream(
        "POST",
        server.client_url("StreamEvents"),
        headers={**dev_auth(), "Content-Type": "application/connect+json"},
        content=envelope(b"{}", flags=0x01),
    ) as response:
        flags, payload = list(read_envelopes(response.iter_raw()))[-1]
    assert flags == 0x02
    assert json.loads(payload)["error"]["code"] == "invalid_argument"


def test_non_utf8_header_is_invalid_argument(server: ServerThread) -> None:
    body = b'{"limit": 1}'
    request = (
        (
            f"POST {CLIENT_SVC}/GetNotifications HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer dev:user-alice:acme\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        ).encode()
        + b"X-Junk: \xff\xfe\r\n\r\n"
        + body
    )
    answer = raw_exchange(server.ports.client, request)
    assert answer.startswith(b"HTTP/1.1 400")
    error = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert error == {"code": "invalid_argument", "message": "a header is not valid UTF-8"}


def test_too_many_headers_is_resource_exhausted(server: ServerThread, http: httpx.Client) -> None:
    headers = {**dev_auth(), **{f"x-h{i}": "v" for i in range(120)}}
    response = http.post(server.client_url("GetNotifications"), headers=headers, json={})
    assert response.status_code == 429
    assert error_of(response)["code"] == "resource_exhausted"


def test_oversized_request_head_gets_431(server: ServerThread) -> None:
    # A head that never ends: cut once it passes the cap, not buffered on.
    request = b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 1024)
    assert raw_exchange(server.ports.client, request).startswith(b"HTTP/1.1 431")
    assert metric(server, "notify_connections_cut_total", reason="headers_too_large") >= 1


def test_grpc_over_http1_is_415_unimplemented(server: ServerThread, http: httpx.Client) -> None:
    before = metric(server, "notify_rpc_requests_total", protocol="grpc", code="unimplemented")
    response = http.post(
        server.internal_url(),
        headers={"Content-Type": "application/grpc", "TE": "trailers"},
        content=envelope(b""),
    )
    assert response.status_code == 415
    assert response.headers["grpc-status"] == "12"
    assert "HTTP/2" in response.headers["grpc-message"]
    after = metric(server, "notify_rpc_requests_total", protocol="grpc", code="unimplemented")
    assert after == before + 1


def test_405_and_415_are_recorded_as_unimplemented(
    server: ServerThread, http: httpx.Client
) -> None:
    def unimplemented() -> float:
        return metric(server, "notify_rpc_requests_total", code="unimplemented")

    before = unimplemented()
    assert http.get(server.internal_url()).status_code == 405
    wrong_type = http.post(server.internal_url(), headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert unimplemented() == before + 2
    assert metric(server, "notify_rpc_requests_total", code="unknown") == 0


def test_failed_gzip_stream_is_logged_with_its_code(
    server: ServerThread, http: httpx.Client
) -> None:
    before = metric(server, "notify_rpc_requests_total", code="unauthenticated")
    with http.stream(
        "POST",
        server.client_url("StreamEvents"),
        headers={
            "Authorization": "Bearer not-a-jwt",
            "Content-Type": "application/connect+json",
            "Connect-Accept-Encoding": "gzip",
        },
        content=envelope(b"{}"),
    ) as response:
        flags, payload = list(read_envelopes(response.iter_raw()))[-1]
    assert flags == 0x03  # end of stream, compressed
    assert json.loads(gzip.decompress(payload))["error"]["code"] == "unauthenticated"
    assert metric(server, "notify_rpc_requests_total", code="unauthenticated") == before + 1


# --- gRPC edges over raw HTTP/2 ---------------------------------------------


class RawH2:
    """A minimal h2c client that can send what grpcio never would."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        config = h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
        )
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self._flush()
        self.events: dict[int, list[h2.events.Event]] = {}
        self.terminated: h2.events.ConnectionTerminated | None = None

    def _flush(self) -> None:
        try:
            self.sock.sendall(self.conn.data_to_send())
        except (BrokenPipeError, ConnectionResetError):
            if self.terminated is None:
                raise  # hung up without a GOAWAY
            # After its GOAWAY the server may close before our last frames
            # (a SETTINGS ack, say) reach it: the read below sees the close.

    def call(self, path: str, extra: list[tuple[str, str]], body: bytes) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "127.0.0.1"),
            (":path", path),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            *extra,
        ]
        self.conn.send_headers(stream_id, headers)
        data = envelope(body)
        for start in range(0, len(data), 16384):
            self.conn.send_data(stream_id, data[start : start + 16384])
        self.conn.end_stream(stream_id)
        self._flush()
        self.events[stream_id] = []
        return stream_id

    def finish(self, stream_id: int) -> list[h2.events.Event]:
        """Reads until that stream ends or is reset."""
        while not any(
            isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
            for e in self.events[stream_id]
        ):
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:  # the close, seen as a reset after our late write
                data = b""
            assert data, "connection closed"
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    self.terminated = event
                sid = getattr(event, "stream_id", None)
                if sid in self.events:
                    self.events[sid].append(event)
                if isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            self._flush()
        return self.events[stream_id]

    def grpc_status(self, stream_id: int) -> tuple[str, str]:
        headers: dict[bytes, bytes] = {}
        for event in self.finish(stream_id):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                headers.update(dict(event.headers))
        return headers[b"grpc-status"].decode(), headers.get(b"grpc-message", b"").decode()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_h2(server: ServerThread) -> Iterator[RawH2]:
    client = RawH2(server.ports.client)
    try:
        yield client
    finally:
        client.close()


GET_NOTIFICATIONS = f"{CLIENT_SVC}/GetNotifications"
AUTH = [("authorization", "Bearer dev:user-alice:acme")]


@pytest.mark.parametrize("timeout", ["garbage", "S", "1.5S", "999999999S", "-1S"])
def test_bad_grpc_timeout_is_invalid_argument_in_trailers(raw_h2: RawH2, timeout: str) -> None:
    stream = raw_h2.call(GET_NOTIFICATIONS, [*AUTH, ("grpc-timeout", timeout)], b"")
    status, message = raw_h2.grpc_status(stream)
    assert status == "3"
    assert "grpc-timeout" in message


@pytest.mark.parametrize(
    "bad",
    [
        [("x-padded", " leading space")],
        [("x-padded", "trailing space ")],
        [("X-Upper", "v")],
        [("connection", "keep-alive")],
    ],
)
def test_malformed_header_resets_only_its_stream(raw_h2: RawH2, bad: list[tuple[str, str]]) -> None:
    good = raw_h2.call(GET_NOTIFICATIONS, AUTH, b"")  # in flight on the same connection
    broken = raw_h2.call(GET_NOTIFICATIONS, [*AUTH, *bad], b"")
    resets = [e for e in raw_h2.finish(broken) if isinstance(e, h2.events.StreamReset)]
    assert resets
    assert resets[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert raw_h2.grpc_status(good)[0] == "0"
    after = raw_h2.call(GET_NOTIFICATIONS, AUTH, b"")  # and the connection goes on
    assert raw_h2.grpc_status(after)[0] == "0"
    assert raw_h2.terminated is None


def test_wrong_service_on_a_reused_connection_keeps_it(raw_h2: RawH2) -> None:
    wrong = raw_h2.call(f"{INTERNAL_SVC}/Notify", AUTH, b"x" * 60_000)
    responses = [e for e in raw_h2.finish(wrong) if isinstance(e, h2.events.ResponseReceived)]
    assert dict(responses[0].headers)[b":status"] == b"404"  # gRPC clients: UNIMPLEMENTED
    again = raw_h2.call(GET_NOTIFICATIONS, AUTH, b"")
    assert raw_h2.grpc_status(again)[0] == "0"
    assert raw_h2.terminated is None


# --- connection hygiene -----------------------------------------------------


def test_slowloris_head_is_closed_after_the_header_timeout(
    server: ServerThread, http: httpx.Client
) -> None:
    with socket.create_connection(("127.0.0.1", server.ports.client), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nX-Slow: a")  # and never the rest
        # Other callers are served meanwhile.
        ok = http.post(server.client_url("GetNotifications"), headers=dev_auth(), json={})
        assert ok.status_code == 200
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408")
    assert 0.4 < elapsed < 5
    assert metric(server, "notify_connections_cut_total", reason="header_timeout") >= 1


def test_half_http2_preface_is_closed_after_the_header_timeout(server: ServerThread) -> None:
    started = time.monotonic()
    assert raw_exchange(server.ports.client, b"PRI * HTTP/2.0\r\n") == b""
    assert 0.4 < time.monotonic() - started < 5
    assert metric(server, "notify_connections_cut_total", reason="sniff_timeout") >= 1


def test_slow_body_is_ended_after_the_body_timeout(server: ServerThread) -> None:
    head = (
        f"POST {CLIENT_SVC}/GetNotifications HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer dev:user-alice:acme\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{"
    ).encode()
    started = time.monotonic()
    answer = raw_exchange(server.ports.client, head)
    assert 0.4 < time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 504")
    assert b"connection: close" in answer.lower()
    assert b'"code": "deadline_exceeded"' in answer


def test_idle_keep_alive_connection_is_closed() -> None:
    with running_server(http_idle_timeout=0.3) as server:
        body = b"{}"
        request = (
            f"POST {CLIENT_SVC}/GetNotifications HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer dev:user-alice:acme\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        started = time.monotonic()
        answer = raw_exchange(server.ports.client, request)  # keep-alive: the server closes
        assert answer.startswith(b"HTTP/1.1 200")
        assert 0.25 < time.monotonic() - started < 5


def _kept_alive(port: int) -> socket.socket:
    """A connection the server has admitted: one request answered on it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 ")
    return sock


def test_connection_cap_answers_503_and_counts() -> None:
    with running_server(max_connections=3) as server:
        port = server.ports.client
        held = [_kept_alive(port), _kept_alive(server.ports.internal), _kept_alive(port)]
        try:
            refused = raw_exchange(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            assert refused.startswith(b"HTTP/1.1 503")
            assert json.loads(refused.partition(b"\r\n\r\n")[2])["code"] == "resource_exhausted"
            # HTTP/2 gets GOAWAY ENHANCE_YOUR_CALM, which gRPC clients retry.
            h2_client = RawH2(port)
            try:
                with pytest.raises(AssertionError, match="connection closed"):
                    h2_client.finish(h2_client.call(GET_NOTIFICATIONS, AUTH, b""))
                assert h2_client.terminated is not None
                assert h2_client.terminated.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
            finally:
                h2_client.close()
            assert metric(server, "notify_connections_refused_total", reason="max_connections") >= 2
            assert metric(server, "notify_connections_open") == 3
        finally:
            for sock in held:
                sock.close()
        # Closed connections give their place back.
        deadline = time.monotonic() + 10
        while metric(server, "notify_connections_open") != 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert _kept_alive(port).close() is None


def test_per_ip_cap() -> None:
    with running_server(max_connections_per_ip=2) as server:
        port = server.ports.client
        held = [_kept_alive(port), _kept_alive(port)]
        try:
            refused = raw_exchange(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            assert refused.startswith(b"HTTP/1.1 503")
            assert (
                metric(server, "notify_connections_refused_total", reason="max_connections_per_ip")
                == 1
            )
        finally:
            for sock in held:
                sock.close()


def test_global_stream_cap_is_resource_exhausted() -> None:
    with running_server(live_max_streams=2) as server, httpx.Client(timeout=10) as http:
        url = server.client_url("StreamEvents")
        streams = [ConnectStream(http, url, dev_auth(f"user-{i}"), {}) for i in range(2)]
        try:
            for stream in streams:
                assert "heartbeat" in stream.next()
            third = ConnectStream(http, url, dev_auth("user-third"), {})
            with pytest.raises(EndOfStream) as ended:
                third.next()
            third.close()
            assert ended.value.code == "resource_exhausted"
        finally:
            for stream in streams:
                stream.close()


def test_precheck_does_not_hide_unknown_procedures(
    server: ServerThread, http: httpx.Client
) -> None:
    response = http.post(
        f"http://127.0.0.1:{server.ports.client}{INTERNAL_SVC}/Notify", json=notify_body("x")
    )
    assert response.status_code == 404


# --- configuration and the gzip ratio cap -----------------------------------


def test_limits_are_configurable_and_validated() -> None:
    from notify.config import ConfigError, load_config

    env = {
        "NOTIFY_AUTH_DEV_MODE": "true",
        "NOTIFY_MAX_REQUEST_BYTES": "1024",
        "NOTIFY_HTTP_HEADER_TIMEOUT": "2s",
        "NOTIFY_MAX_CONNECTIONS_PER_IP": "0",
        "NOTIFY_LIVE_MAX_STREAMS": "5",
    }
    config = load_config(env)
    assert (config.max_request_bytes, config.http_header_timeout) == (1024, 2.0)
    assert (config.max_connections_per_ip, config.live_max_streams) == (0, 5)
    assert load_config({"NOTIFY_AUTH_DEV_MODE": "true"}).max_request_bytes == 4 * 1024 * 1024
    with pytest.raises(ConfigError, match="NOTIFY_MAX_CONNECTIONS_PER_IP"):
        load_config({**env, "NOTIFY_MAX_CONNECTIONS_PER_IP": "-1"})


def test_gzip_ratio_cap() -> None:
    from connectrpc.code import Code
    from connectrpc.errors import ConnectError

    from notify.api.compression import BoundedGzip

    codec = BoundedGzip(max_bytes=64 * 1024 * 1024, max_ratio=100)
    text = b'{"userIds": ["u"]}' * 1000
    assert codec.decompress(gzip.compress(text)) == text  # small: under the ratio floor
    assert codec.decompress(gzip.compress(b"a") + gzip.compress(b"b")) == b"ab"
    with pytest.raises(ConnectError) as refused:
        codec.decompress(gzip.compress(b"\0" * (8 * 1024 * 1024)))
    assert refused.value.code == Code.RESOURCE_EXHAUSTED
    with pytest.raises(ConnectError) as truncated:
        codec.decompress(gzip.compress(text)[:-12])
    assert truncated.value.code == Code.INVALID_ARGUMENT
