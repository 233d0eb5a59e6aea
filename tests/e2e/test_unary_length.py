"""A large unary answer over HTTP/1.1 is sent with its length; a small one stays chunked.

The client is a raw socket, so the framing checked is exactly what the
server wrote: the head, then either ``content-length`` bytes or chunks.
Several answers share one kept-alive connection, so a wrong length would
misframe the next answer.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from google.protobuf import json_format

from tests.support import CLIENT_SVC, ServerThread, notify_body

USER = "user-length"
ROWS = 12
BODY_TEXT = "é" * 1500  # 3,000 bytes of UTF-8 per row: a page well past 16 KiB


class Answer:
    def __init__(self, status: bytes, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class RawClient:
    """HTTP/1.1 over one socket, reading answers framed either way."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def post(self, method: str, body: bytes, content_type: str) -> Answer:
        head = (
            f"POST {CLIENT_SVC}/{method} HTTP/1.1\r\nhost: test\r\n"
            f"authorization: Bearer dev:{USER}:acme\r\n"
            f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        self._sock.sendall(head + body)
        status_line, *lines = self._until(b"\r\n\r\n").split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines)
        if b"content-length" in headers:
            return Answer(status_line, headers, self._exactly(int(headers[b"content-length"])))
        assert headers.get(b"transfer-encoding") == b"chunked", headers
        chunks = b""
        while size := int(self._until(b"\r\n"), 16):
            chunks += self._exactly(size)
            assert self._exactly(2) == b"\r\n"
        assert self._exactly(2) == b"\r\n"  # the empty trailer section
        return Answer(status_line, headers, chunks)

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        assert chunk, f"connection closed with {self._buffer[:200]!r} unread"
        self._buffer += chunk

    def _until(self, mark: bytes) -> bytes:
        while mark not in self._buffer:
            self._fill()
        found, _, self._buffer = self._buffer.partition(mark)
        return found

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        found, self._buffer = self._buffer[:size], self._buffer[size:]
        return found


@pytest.fixture
def client(server: ServerThread, http: httpx.Client) -> Iterator[RawClient]:
    for number in range(ROWS):
        body = notify_body(f"length-{number}", USER, body=BODY_TEXT)
        assert http.post(server.internal_url(), json=body).status_code == 200
    raw = RawClient(server.ports.client)
    yield raw
    raw.close()


def test_a_large_json_page_has_its_length_and_the_next_answer_follows(client: RawClient) -> None:
    for _ in range(2):  # the second answer parses only if the first was framed exactly
        page = client.post("GetNotifications", b'{"limit": 50}', "application/json")
        assert page.status.startswith(b"HTTP/1.1 200"), page.status
        assert b"transfer-encoding" not in page.headers
        assert int(page.headers[b"content-length"]) == len(page.body) > 16 * 1024
        rows = pb.GetNotificationsResponse()
        json_format.Parse(page.body, rows)
        assert [row.body for row in rows.notifications] == [BODY_TEXT] * ROWS


def test_a_large_binary_page_has_its_length(client: RawClient) -> None:
    request = pb.GetNotificationsRequest(limit=50).SerializeToString()
    page = client.post("GetNotifications", request, "application/proto")
    assert page.status.startswith(b"HTTP/1.1 200"), page.status
    assert int(page.headers[b"content-length"]) == len(page.body) > 16 * 1024
    assert len(pb.GetNotificationsResponse.FromString(page.body).notifications) == ROWS


def test_small_answers_and_errors_stay_chunked_on_the_same_connection(client: RawClient) -> None:
    counts = client.post("GetCounts", b"{}", "application/json")
    assert counts.status.startswith(b"HTTP/1.1 200")
    assert counts.headers.get(b"transfer-encoding") == b"chunked"
    assert b'"unread":12' in counts.body.replace(b" ", b"")
    refused = client.post("GetNotifications", b'{"limit": "many"}', "application/json")
    assert refused.status.startswith(b"HTTP/1.1 400"), refused.status
    assert b"invalid_argument" in refused.body
    page = client.post("GetNotifications", b'{"limit": 50}', "application/json")
    assert int(page.headers[b"content-length"]) == len(page.body)
