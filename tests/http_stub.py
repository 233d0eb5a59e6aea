"""A minimal HTTP/1.1 server on 127.0.0.1 (a free port) for protocol stand-ins.

Each connection carries one request (the answer says ``connection: close``),
so a test sees every request in order and nothing is left open when the
server stops. The handler gets the parsed request and returns (status,
headers, body).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[Request], Awaitable[Answer]]
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def loopback_server(handle: StreamHandler) -> AsyncIterator[int]:
    """Serves ``handle`` on 127.0.0.1 at a free port; yields the port; closes it after."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def http_server(handler: Handler) -> AsyncIterator[str]:
    """Serves ``handler``; yields the base URL (``http://127.0.0.1:PORT``)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, extra, payload = await handler(Request(method, path, headers, body))
            extra_lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: {len(payload)}\r\n"
                f"connection: close\r\n{extra_lines}\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async with loopback_server(serve) as port:
        yield f"http://127.0.0.1:{port}"
