"""A fan-out's frames written straight to HTTP/1.1 streams (notify.api.directframes).

Over real sockets: the frames a stream gets that way are the ones the ASGI
path writes, byte for byte once decompressed, in order, exactly once, in
both codecs; a stream that asked for compression keeps the ASGI path; Server-Sent
Events get theirs too.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb

from notify.api import directframes
from notify.service.live import StreamItem
from tests.sse_client import EventStream
from tests.support import (
    ServerThread,
    dev_auth,
    envelope,
    notify_body,
    read_envelopes,
    running_server,
)


@pytest.fixture
def direct_sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The session id of every frame written through a ConnectFrameSink (server thread)."""
    sent: list[str] = []
    lock = threading.Lock()
    original = directframes.ConnectFrameSink.send

    def counted(self: directframes.ConnectFrameSink, item: StreamItem) -> None:
        with lock:
            sent.append(self._session_id)
        original(self, item)

    monkeypatch.setattr(directframes.ConnectFrameSink, "send", counted)
    return sent


class RawStream:
    """A Connect server stream over HTTP/1.1, frames as (flags, bytes) as they come."""

    def __init__(self, http: httpx.Client, url: str, content_type: str, **headers: str) -> None:
        request = b"{}" if content_type.endswith("json") else b""
        self._cm = http.stream(
            "POST",
            url,
            headers={**dev_auth(), "Content-Type": content_type, **headers},
            content=envelope(request),
        )
        self._frames: Iterator[tuple[int, bytes]] = read_envelopes(self._cm.__enter__().iter_raw())

    def next(self) -> tuple[int, bytes]:
        return next(self._frames)

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def _json_message(flags: int, payload: bytes) -> bytes:
    """A JSON stream message's bytes, decompressed if the frame says it is compressed."""
    return gzip.decompress(payload) if flags & 0x01 else payload


def _kind(message: dict[str, Any]) -> str:
    return next(k for k in message if k != "sessionId")


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with running_server() as srv:
        yield srv


def test_direct_frames_are_the_asgi_paths_bytes(
    server: ServerThread, http: httpx.Client, direct_sends: list[str]
) -> None:
    url = server.client_url("StreamEvents")
    direct = RawStream(http, url, "application/connect+json")
    compressed = RawStream(
        http, url, "application/connect+json", **{"Connect-Accept-Encoding": "gzip"}
    )
    try:
        # The handshake and the badge come through the ASGI path on both.
        heads = [json.loads(_json_message(*s.next())) for s in (direct, compressed) for _ in "ab"]
        assert [_kind(m) for m in heads] == ["heartbeat", "counts", "heartbeat", "counts"]
        ids = {"direct": heads[0]["sessionId"], "compressed": heads[2]["sessionId"]}
        assert http.post(server.internal_url(), json=notify_body("same")).json()["delivered"] == 1
        frames = {name: [direct.next(), direct.next()] for name in ("direct",)}
        frames["compressed"] = [compressed.next(), compressed.next()]
    finally:
        direct.close()
        compressed.close()
    assert [flags for flags, _ in frames["direct"]] == [0, 0]
    assert [flags for flags, _ in frames["compressed"]] == [1, 1]  # connect-python's gzip
    for (_, mine), (flags, theirs) in zip(frames["direct"], frames["compressed"], strict=True):
        theirs_plain = _json_message(flags, theirs)
        assert mine == theirs_plain.replace(ids["compressed"].encode(), ids["direct"].encode())
    kinds = [_kind(json.loads(payload)) for _, payload in frames["direct"]]
    assert kinds == ["notification", "counts"]
    # Both of the direct stream's frames went the direct way; none of the other's.
    assert direct_sends == [ids["direct"], ids["direct"]]


def test_binary_streams_get_direct_frames_too(
    server: ServerThread, http: httpx.Client, direct_sends: list[str]
) -> None:
    stream = RawStream(http, server.client_url("StreamEvents"), "application/connect+proto")
    try:
        hello = pb.StreamEvent.FromString(stream.next()[1])
        assert hello.WhichOneof("event") == "heartbeat"
        assert pb.StreamEvent.FromString(stream.next()[1]).WhichOneof("event") == "counts"
        assert http.post(server.internal_url(), json=notify_body("bin")).json()["delivered"] == 1
        raw = stream.next()[1]
        pushed = pb.StreamEvent.FromString(raw)
        badge = pb.StreamEvent.FromString(stream.next()[1])
    finally:
        stream.close()
    assert pushed.session_id == hello.session_id
    assert pushed.notification.notification.notification_id == "bin"
    assert pushed.notification.resume_token
    assert badge.counts.counts.unread == 1
    assert raw == pushed.SerializeToString(deterministic=True)  # what protobuf writes
    assert direct_sends == [hello.session_id, hello.session_id]


def test_a_burst_arrives_in_order_exactly_once_between_heartbeats(
    http: httpx.Client, direct_sends: list[str]
) -> None:
    # Heartbeats every 5 ms take the queue path, between frames written directly.
    with running_server(live_heartbeat_interval=0.005) as srv:
        stream = RawStream(http, srv.client_url("StreamEvents"), "application/connect+json")
        try:
            assert _kind(json.loads(stream.next()[1])) == "heartbeat"
            for number in range(40):
                answer = http.post(srv.internal_url(), json=notify_body(f"burst-{number}"))
                assert answer.json()["delivered"] == 1
            seen: list[str] = []
            tokens: list[str] = []
            kinds: set[str] = set()
            while len(seen) < 40:
                message = json.loads(stream.next()[1])
                kinds.add(_kind(message))
                if "notification" in message:
                    seen.append(message["notification"]["notification"]["notificationId"])
                    tokens.append(message["notification"]["resumeToken"])
        finally:
            stream.close()
    assert seen == [f"burst-{n}" for n in range(40)]
    assert len(set(tokens)) == 40
    assert "heartbeat" in kinds
    assert direct_sends  # the direct path was taken on the way


def test_server_sent_events_get_direct_frames_over_http1(
    server: ServerThread, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    original = directframes.SseFrameSink.send

    def counted(self: directframes.SseFrameSink, item: StreamItem) -> None:
        sent.append(type(item).__name__)
        original(self, item)

    monkeypatch.setattr(directframes.SseFrameSink, "send", counted)
    with EventStream(http, f"http://127.0.0.1:{server.ports.client}", dev_auth()) as stream:
        hello = stream.next_of("heartbeat")
        badge = stream.next_of("counts")  # the badge, by the ASGI path
        assert badge.data["counts"]["counts"].get("total", 0) == 0
        for number in range(3):
            answer = http.post(server.internal_url(), json=notify_body(f"sse-{number}"))
            assert answer.json()["delivered"] == 1
            pushed = stream.next_of("notification")
            badge = stream.next_of("counts")
            row = pushed.data["notification"]["notification"]
            assert row["notificationId"] == f"sse-{number}"
            assert pushed.id == pushed.data["notification"]["resumeToken"]
            assert pushed.data["sessionId"] == hello.data["sessionId"]
            assert badge.data["counts"]["counts"]["unread"] == number + 1
    assert sent == ["LiveNotification", "CountsPush"] * 3
