"""Over a real socket: a unary HTTP/1.1 answer is one write; a stream's frames go as they come."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, cast

import pytest

from notify.http import listener
from notify.http.coalesce import CoalescingTransport, WriteBatch
from notify.http.h1 import GuardedHttpToolsProtocol
from notify.http.listener import ConnectionLimits
from tests.support import serving

Scope = dict[str, Any]


class _Recorder:
    """The real transport, with each write it is given recorded."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes], lock: threading.Lock):
        self._transport = transport
        self._writes = writes
        self._lock = lock

    def write(self, data: bytes) -> None:
        with self._lock:
            self._writes.append(bytes(data))
        self._transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        with self._lock:
            self._writes.append(b"".join(parts))  # one writev
        self._transport.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@pytest.fixture
def real_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write the listener's transport proxy hands to the socket (server thread)."""
    writes: list[bytes] = []
    lock = threading.Lock()

    def recording(transport: asyncio.Transport, batch: WriteBatch) -> Any:
        return CoalescingTransport(
            cast(asyncio.Transport, _Recorder(transport, writes, lock)), batch
        )

    monkeypatch.setattr(listener, "CoalescingTransport", recording)
    return writes


async def unary(scope: Scope, receive: Any, send: Any) -> None:
    """What connect-python does for a unary call: the head, then the whole body."""
    await receive()
    body = b'{"path":"%s"}' % scope["path"].encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def stream(scope: Scope, receive: Any, send: Any) -> None:
    """A stream: each frame written in its own step of the loop, as sessions write them."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for number in range(3):
        await send(
            {"type": "http.response.body", "body": b"frame %d\n" % number, "more_body": True}
        )
        await asyncio.sleep(0)  # the next frame comes in a later step
    await send({"type": "http.response.body", "body": b""})


def _exchange(port: int, request: bytes, answers: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while received.count(b"HTTP/1.1 200") < answers or not received.endswith(
            (b"}", b"0\r\n\r\n")
        ):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _get(path: str) -> bytes:
    return b"GET %s HTTP/1.1\r\nhost: test\r\n\r\n" % path.encode()


def test_a_unary_answer_is_one_write_with_head_and_body(real_writes: list[bytes]) -> None:
    with serving(unary) as port:
        answer = _exchange(port, _get("/one"), 1)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'{"path":"/one"}')
    assert real_writes == [answer]


def test_pipelined_requests_are_answered_in_order(real_writes: list[bytes]) -> None:
    with serving(unary) as port:
        answer = _exchange(port, _get("/first") + _get("/second"), 2)
    first, second = answer.index(b'{"path":"/first"}'), answer.index(b'{"path":"/second"}')
    assert first < second
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert b"".join(real_writes) == answer


def test_stream_frames_written_in_separate_steps_stay_separate(real_writes: list[bytes]) -> None:
    with serving(stream) as port:
        answer = _exchange(port, _get("/stream"), 1)
    assert answer.endswith(b"0\r\n\r\n")
    # The head goes with the first frame (same step); every later frame is its own write.
    assert len(real_writes) == 4
    assert real_writes[0].startswith(b"HTTP/1.1 200 OK")
    assert real_writes[0].endswith(b"frame 0\n\r\n")
    assert real_writes[1] == b"8\r\nframe 1\n\r\n"
    assert real_writes[2] == b"8\r\nframe 2\n\r\n"
    assert real_writes[3] == b"0\r\n\r\n"


def test_with_no_write_delay_every_write_goes_out_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes: list[bytes] = []
    lock = threading.Lock()
    made = GuardedHttpToolsProtocol.connection_made

    def recorded(self: GuardedHttpToolsProtocol, transport: asyncio.Transport) -> None:
        made(self, cast(asyncio.Transport, _Recorder(transport, writes, lock)))

    monkeypatch.setattr(GuardedHttpToolsProtocol, "connection_made", recorded)
    with serving(unary, ConnectionLimits(write_delay=0)) as port:
        answer = _exchange(port, _get("/at-once"), 1)
    assert answer.endswith(b'{"path":"/at-once"}')
    assert len(writes) == 2  # the head, then the body: uvicorn's own two writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK")
    assert writes[1] == b'{"path":"/at-once"}'
