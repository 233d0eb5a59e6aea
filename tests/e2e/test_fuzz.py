"""Generated hostile requests against a real notifyd, for every RPC and protocol.

Each RPC gets ``NOTIFY_FUZZ_EXAMPLES`` (default 2,000) requests built by
hypothesis, spread over Connect JSON, Connect binary and gRPC: random and
near-valid bodies, gzip (real, fake, bombs), broken envelopes, bad timeouts,
bad credentials and undecodable header values. Every answer must be a
protocol error or a success: no HTTP 500 without a Connect body, no
``unknown`` code, no Python exception text; and at the end the process is
alive, its peak RSS bounded and its metrics free of ``unknown``.
``make fuzz`` runs 20,000 per RPC.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.e2e.test_process import Notifyd
from tests.support import CLIENT_SVC, INTERNAL_SVC

EXAMPLES = int(os.environ.get("NOTIFY_FUZZ_EXAMPLES", "2000"))
MAX_PEAK_GROWTH_MB = 150

RPCS = [
    (CLIENT_SVC, "GetNotifications", False),
    (CLIENT_SVC, "AckNotification", False),
    (CLIENT_SVC, "AckDataChange", False),
    (CLIENT_SVC, "RegisterPushToken", False),
    (CLIENT_SVC, "StreamEvents", True),
    (INTERNAL_SVC, "Notify", False),
    (INTERNAL_SVC, "PublishDataChange", False),
]

# What Python exception text looks like when it leaks into an answer.
LEAK = re.compile(
    r"Traceback|Error\(|Exception|codec can't|Not a gzipped|object has no attribute|"
    r"unexpected keyword|NoneType|KeyError",
)

FIELDS = [
    "tenantId", "notificationId", "userIds", "channels", "subjectRef", "subjectType", "title",
    "body", "limit", "cursor", "id", "token", "deviceType", "sessionId", "idempotencyKey",
    "resumeToken", "unreadOnly", "data",
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
near_valid = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(
    lambda d: json.dumps(d).encode()
)
bodies = st.one_of(
    st.binary(max_size=200),
    near_valid,
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b"{}"),
)
# Header values as HTTP/1.1 allows them on the wire (h11 checks): obs-text
# bytes (not UTF-8) included, no CR/LF/NUL, no surrounding whitespace.
header_values = (
    st.binary(min_size=1, max_size=20)
    .map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"").strip(b" \t"))
    .filter(lambda b: b != b"" and all(c >= 0x20 and c != 0x7F for c in b))
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    protocol = draw(st.sampled_from(["connect_json", "connect_proto", "grpc"]))
    body = draw(bodies)
    compression = draw(st.sampled_from(["none", "gzip", "fake_gzip", "bomb", "unknown"]))
    auth = draw(
        st.sampled_from(
            [
                "Bearer dev:user-alice:acme",
                "Bearer dev:bad",
                "Bearer",
                "Basic x",
                "",
                "Bearer x.y.z",
            ]
        )
    )
    timeout = draw(st.one_of(st.none(), header_values))
    junk = draw(
        st.lists(
            st.tuples(st.sampled_from(["x-a", "x-b", "user-agent"]), header_values), max_size=2
        )
    )
    envelope_flags = draw(st.sampled_from([0, 0, 1, 2, 0x80]))
    envelope_lie = draw(st.sampled_from([None, None, 0, 2**31, 2**32 - 1]))
    return {
        "protocol": protocol, "body": body, "compression": compression, "auth": auth,
        "timeout": timeout, "junk": junk, "flags": envelope_flags, "lie": envelope_lie,
    }  # fmt: skip


def _compress(body: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(body)
    if how == "fake_gzip":
        return body
    if how == "bomb":
        return _BOMB
    return body


_BOMB = gzip.compress(b"\0" * (16 * 1024 * 1024))  # 16 KB that inflate 1,000 times


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


class Target:
    def __init__(self) -> None:
        self.proc = Notifyd()
        started = self.proc.wait_for_log("notify started")
        self.ports = {
            CLIENT_SVC: int(started["client_port"]),
            INTERNAL_SVC: int(started["internal_port"]),
        }
        self.metrics_port = int(started["metrics_port"])
        self.http = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=4))
        self.channels = {
            svc: grpc.insecure_channel(f"127.0.0.1:{port}") for svc, port in self.ports.items()
        }
        self.baseline_kb = _status_kb(self.proc.proc.pid, "VmRSS")

    def close(self) -> None:
        self.http.close()
        for channel in self.channels.values():
            channel.close()
        self.proc.stop()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    running = Target()
    try:
        yield running
        assert running.proc.proc.poll() is None, "notifyd died"
        growth_mb = (_status_kb(running.proc.proc.pid, "VmHWM") - running.baseline_kb) / 1024
        assert growth_mb < MAX_PEAK_GROWTH_MB
        metrics = httpx.get(f"http://127.0.0.1:{running.metrics_port}/metrics").text
        assert 'code="unknown"' not in metrics
    finally:
        running.close()


def _check_connect(response: httpx.Response) -> None:
    text = response.content.decode("utf-8", "replace")
    assert not LEAK.search(text), text
    if response.status_code >= 500:
        error = response.json()  # a Connect body, always
        assert error["code"] != "unknown", error
    if response.status_code != 200 and response.headers.get("content-type") == "application/json":
        assert response.json().get("code") != "unknown"


def _send(target: Target, svc: str, method: str, stream: bool, req: dict[str, Any]) -> None:
    body = req["body"]
    if req["protocol"] == "grpc":
        _send_grpc(target, svc, method, req)
        return
    codec = "json" if req["protocol"] == "connect_json" else "proto"
    headers: list[tuple[bytes, bytes]] = [(name.encode(), value) for name, value in req["junk"]]
    if req["auth"]:
        headers.append((b"authorization", req["auth"].encode()))
    timeout = req["timeout"]
    if stream and (timeout is None or timeout.isdigit()):
        timeout = b"1"  # a stream that opens must still end at once
    if timeout is not None:
        headers.append((b"connect-timeout-ms", timeout))
    if stream:
        headers.append((b"content-type", f"application/connect+{codec}".encode()))
        payload = _compress(body, req["compression"])
        flags = req["flags"] | (1 if req["compression"] in ("gzip", "bomb", "fake_gzip") else 0)
        length = len(payload) if req["lie"] is None else req["lie"]
        content = struct.pack(">BI", flags & 0xFF, length) + payload
        if req["compression"] != "none":
            enc = b"br" if req["compression"] == "unknown" else b"gzip"
            headers.append((b"connect-content-encoding", enc))
    else:
        headers.append((b"content-type", f"application/{codec}".encode()))
        content = _compress(body, req["compression"])
        if req["compression"] != "none":
            enc = b"br" if req["compression"] == "unknown" else b"gzip"
            headers.append((b"content-encoding", enc))
    url = f"http://127.0.0.1:{target.ports[svc]}{svc}/{method}"
    if stream:
        _check_stream(target, url, headers, content)
        return
    response = target.http.post(url, headers=headers, content=content)
    _check_connect(response)


def _check_stream(
    target: Target, url: str, headers: list[tuple[bytes, bytes]], content: bytes
) -> None:
    """Reads up to the first frame: a message means the stream opened (then closes it)."""
    with target.http.stream("POST", url, headers=headers, content=content) as response:
        if response.status_code != 200:
            response.read()
            _check_connect(response)
            return
        buffer = b""
        for chunk in response.iter_raw():
            buffer += chunk
            if len(buffer) < 5:
                continue
            flags, length = struct.unpack(">BI", buffer[:5])
            if len(buffer) < 5 + length:
                continue
            payload = buffer[5 : 5 + length]
            assert not LEAK.search(payload.decode("utf-8", "replace")), payload
            if flags & 0x02:
                end = json.loads(gzip.decompress(payload) if flags & 0x01 else payload)
                assert (end.get("error") or {}).get("code") != "unknown", end
            return
        raise AssertionError(f"stream ended without an end frame: {buffer!r}")


def _send_grpc(target: Target, svc: str, method: str, req: dict[str, Any]) -> None:
    call = target.channels[svc].unary_stream if method == "StreamEvents" else None
    path = f"{svc}/{method}"
    metadata = []
    if req["auth"]:
        metadata.append(("authorization", req["auth"]))
    for name, value in req["junk"]:
        text = value.decode("latin-1")
        if name != "user-agent" and text.isascii() and text.isprintable():
            metadata.append((name, text))
    compression = grpc.Compression.Gzip if req["compression"] == "gzip" else None
    body = _BOMB if req["compression"] == "bomb" else req["body"]
    try:
        if call is not None:
            for _ in call(path)(body, metadata=metadata, timeout=0.2, compression=compression):
                pass
        else:
            target.channels[svc].unary_unary(path)(
                body, metadata=metadata, timeout=10, compression=compression
            )
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        details = exc.details() or ""  # type: ignore[attr-defined]
        assert code != grpc.StatusCode.UNKNOWN, details
        assert not LEAK.search(details), details


@pytest.mark.parametrize(("svc", "method", "stream"), RPCS, ids=[m for _, m, _ in RPCS])
def test_fuzz_rpc(target: Target, svc: str, method: str, stream: bool) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(requests())
    def one(req: dict[str, Any]) -> None:
        _send(target, svc, method, stream, req)

    one()
