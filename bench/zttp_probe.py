"""Reproduces docs/benchmarks.md's *zttp* table: the budgets in zttp's HTTP/2 core.

Not a project dependency and not part of ``make bench``::

    .venv/bin/pip install zttp==0.0.35 && .venv/bin/python -m bench.zttp_probe

A server-role connection is driven by zttp's own client role in this
process (no sockets): sequential requests, client resets, and many streams
open at once, each until the server raises.
"""

from __future__ import annotations

import importlib
from typing import Any


def _pump(source: Any, target: Any) -> None:
    data = source.data_to_send()
    if data:
        target.receive_data(data)


def _drain(connection: Any, z: Any) -> list[Any]:
    events = []
    while (event := connection.next_event()) is not z.NEED_DATA:
        events.append(event)
    return events


def _pair(z: Any) -> tuple[Any, Any]:
    server, client = z.Connection(z.SERVER, 2), z.Connection(z.CLIENT, 2)
    client.initiate_connection()
    server.initiate_connection()
    for _ in range(2):  # prefaces, then the SETTINGS acknowledgements
        _pump(client, server)
        _pump(server, client)
        _drain(server, z)
        _drain(client, z)
    return server, client


def sequential(z: Any, total: int) -> str:
    server, client = _pair(z)
    for done in range(total):
        try:
            client.send_request(b"POST", b"/x", b"2", [(b"host", b"probe")]).end_message()
            _pump(client, server)
            for event in _drain(server, z):
                if isinstance(event, z.Request):
                    stream = server.stream(event.stream_id)
                    stream.send_response(200, [])
                    stream.end_message([])
            _pump(server, client)
            _drain(client, z)
        except z.ProtocolError as error:
            return f"request {done + 1} of {total}: {error}"
    return f"all {total} served"


def resets(z: Any, total: int) -> str:
    server, client = _pair(z)
    for done in range(total):
        try:
            client.send_request(b"POST", b"/x", b"2", [(b"host", b"probe")]).reset(8)
            _pump(client, server)
            _drain(server, z)
        except z.ProtocolError as error:
            return f"reset {done + 1} of {total}: {error}"
    return f"all {total} resets taken"


def concurrent(z: Any, total: int) -> str:
    server, client = _pair(z)
    for _ in range(total):
        client.send_request(b"POST", b"/x", b"2", [(b"host", b"probe")]).send_data(b"x")
    _pump(client, server)
    served = 0
    try:
        while (event := server.next_event()) is not z.NEED_DATA:
            served += isinstance(event, z.Request)
    except z.ProtocolError as error:
        return f"{served} of {total} open streams served, then: {error}"
    return f"{served} of {total} open streams served"


def main() -> None:
    try:
        z = importlib.import_module("zttp._zttp")
    except ImportError:
        raise SystemExit("pip install zttp==0.0.35 first") from None
    print("sequential requests:", sequential(z, 5000))
    print("client resets:      ", resets(z, 300))
    print("streams at once:    ", concurrent(z, 1000))


if __name__ == "__main__":
    main()
