"""A deliberately tiny HTTP/1.1 client for Connect calls, on asyncio streams.

The bench's own overhead should stay out of the latencies it reports, so
instead of a general-purpose client this speaks just enough HTTP/1.1:
keep-alive POSTs with a Content-Length body, and responses framed by
Content-Length or chunked transfer encoding. ``ConnectStream`` reads a
Connect server-streaming response: enveloped messages (1 flag byte,
4-byte big-endian length, payload) inside the chunked body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

CONNECT_END_STREAM = 0x02


class HTTPError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _request_head(host: str, path: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HTTPError(f"bad status line {status_line!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _read_chunk(reader: asyncio.StreamReader) -> bytes:
    """One chunk of a chunked body; b"" for the last one."""
    size_line = await reader.readline()
    if not size_line:
        raise HTTPError("connection closed inside a chunked body")
    size = int(size_line.split(b";", 1)[0].strip(), 16)
    data = await reader.readexactly(size + 2) if size else b""
    if size == 0:
        await reader.readline()  # the CRLF after the last chunk (no trailers sent)
        return b""
    return data[:-2]


def stream_request(authority: str, path: str, message: Any, headers: dict[str, str]) -> bytes:
    """The whole request of a Connect server-streaming call: head and enveloped JSON."""
    payload = json.dumps(message).encode()
    envelope = b"\x00" + len(payload).to_bytes(4, "big") + payload
    all_headers = {
        "Content-Type": "application/connect+json",
        "Connect-Protocol-Version": "1",
        **headers,
    }
    return _request_head(authority, path, all_headers, len(envelope)) + envelope


class Connection:
    """One keep-alive HTTP/1.1 connection for unary Connect calls, one at a time."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._authority = f"{host}:{port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        if self._reader is None or self._writer is None:
            await self.connect()
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(_request_head(self._authority, path, headers, len(body)) + body)
        status, response_headers = await _read_head(self._reader)
        if "content-length" in response_headers:
            data = await self._reader.readexactly(int(response_headers["content-length"]))
        elif response_headers.get("transfer-encoding", "").lower() == "chunked":
            pieces = []
            while chunk := await _read_chunk(self._reader):
                pieces.append(chunk)
            data = b"".join(pieces)
        else:
            raise HTTPError("response has neither Content-Length nor chunked encoding")
        if response_headers.get("connection", "").lower() == "close":
            await self.close()
            self._reader = self._writer = None
        return Response(status, response_headers, data)

    async def post_json(self, path: str, payload: Any, headers: dict[str, str]) -> Response:
        all_headers = {"Content-Type": "application/json", **headers}
        return await self.post(path, json.dumps(payload).encode(), all_headers)


class ConnectStream:
    """A Connect server-streaming call (JSON codec) over its own HTTP/1.1 connection.

    The body is read in blocks of up to 64 KiB and de-chunked in memory, so a
    burst of frames (a resume replay) costs one ``read`` per block, not two
    awaits per chunk: the client's time stays out of what is measured.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._raw = bytearray()  # chunked body bytes not yet de-chunked
        self._buffer = bytearray()  # de-chunked body: Connect envelopes
        self._body_done = False
        self.status = 0

    async def open(self, path: str, message: Any, headers: dict[str, str]) -> None:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        authority = f"{self._host}:{self._port}"
        self._writer.write(stream_request(authority, path, message, headers))
        self.status, response_headers = await _read_head(self._reader)
        if self.status != 200:
            raise HTTPError(f"stream answered HTTP {self.status}")
        if response_headers.get("transfer-encoding", "").lower() != "chunked":
            raise HTTPError("stream response is not chunked")

    async def next(self) -> tuple[int, Any] | None:
        """The next (flags, decoded JSON) envelope; None once the body ends."""
        assert self._reader is not None
        while True:
            buffer = self._buffer
            if len(buffer) >= 5:
                length = int.from_bytes(buffer[1:5], "big")
                if len(buffer) >= 5 + length:
                    flags = buffer[0]
                    payload = bytes(buffer[5 : 5 + length])
                    del buffer[: 5 + length]
                    return flags, json.loads(payload)
            if self._body_done:
                return None
            data = await self._reader.read(65536)
            if not data:
                raise HTTPError("connection closed inside a chunked body")
            self._raw += data
            self._dechunk()

    def _dechunk(self) -> None:
        raw = self._raw
        start = 0
        while True:
            line_end = raw.find(b"\r\n", start)
            if line_end < 0:
                break
            size = int(bytes(raw[start:line_end]).split(b";", 1)[0].strip(), 16)
            data_start = line_end + 2
            if size == 0:
                self._body_done = True  # no trailers are sent; the final CRLF may follow
                start = len(raw)
                break
            if len(raw) < data_start + size + 2:
                break
            self._buffer += raw[data_start : data_start + size]
            start = data_start + size + 2
        del raw[:start]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._writer = None
