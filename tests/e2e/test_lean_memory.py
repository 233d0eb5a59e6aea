"""An HTTP/2 connection with a live gRPC stream holds no deque: its containers are lists.

A deque allocates 760 bytes before it holds anything, and an HTTP/2
connection carrying one stream held 27 (h2's settings, hpack's tables,
hypercorn's events and queue, connect-python's event, the reader's
waiters, the session's queue): a third of what a phone's connection cost
the server (``notify.http.lean``). The streams' client runs in another
process, so every deque the server's process gains is the server's.
"""

from __future__ import annotations

import collections
import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerThread, running_server

STREAMS = 30
_CLIENT = r"""
import sys
sys.path.insert(0, sys.argv[3])
from tests.e2e.test_live_events import RawGrpcStream
port, count = int(sys.argv[1]), int(sys.argv[2])
streams = [RawGrpcStream(port, f"Bearer dev:user-lean-{i}:acme") for i in range(count)]
for stream in streams:
    while len(stream.data) < 5:  # the handshake heartbeat: the server holds the session
        stream.read(open_window=True)
print("open", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with running_server() as srv:
        yield srv


def _deques() -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if type(thing) is collections.deque)


def _open_streams(port: int, count: int) -> subprocess.Popen[str]:
    root = str(Path(__file__).resolve().parents[2])
    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, str(port), str(count), root],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "open"
    return client


def test_held_grpc_streams_on_their_own_connections_add_no_deques(server: ServerThread) -> None:
    warm = _open_streams(server.ports.client, 2)  # lazily built state: codecs, metric children
    try:
        before = _deques()
        client = _open_streams(server.ports.client, STREAMS)
        try:
            grown = _deques() - before
        finally:
            assert client.stdin is not None
            client.stdin.write("\n")
            client.stdin.close()
            client.wait(timeout=30)
    finally:
        assert warm.stdin is not None
        warm.stdin.write("\n")
        warm.stdin.close()
        warm.wait(timeout=30)
    # 27 per connection before; a stray one of the server's background work may fall in.
    assert grown < STREAMS // 3, f"{grown} deques for {STREAMS} connections"
