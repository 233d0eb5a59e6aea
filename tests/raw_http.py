"""HTTP/1.1 over one bare socket: what the server wrote, read as it is framed.

For tests that must see the framing itself (a ``content-length`` or chunks)
or that must know every object in the process came from the server, not an
HTTP client library. Answers are read one after another on the same
kept-alive connection, so a wrongly framed answer breaks the next one.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Answer:
    status: bytes  # the status line
    headers: dict[bytes, bytes]  # names lowercased
    body: bytes


class RawHttp1:
    """POSTs over one connection and reads each answer by its length or its chunks."""

    def __init__(self, port: int, authorization: str) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._authorization = authorization
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RawHttp1:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def post(self, path: str, body: bytes, content_type: str) -> Answer:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: test\r\nauthorization: {self._authorization}\r\n"
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
