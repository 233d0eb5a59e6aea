"""Every change this service makes to a third-party library, in one place.

Each entry names the exact version it was written against; ``apply`` checks
the installed versions first and refuses to start on any other, with one
line saying which library and what to do, because a patch (or a use of a
library's internals) silently applied to another release is how subtle
breakage ships. ``apply`` is idempotent and called once by the composition
root before anything is served.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The exact versions the entries below were written and tested against
# (pyproject.toml pins the same).
HYPERCORN = "0.18.0"
CONNECT_PYTHON = "0.9.0"
UVICORN = "0.54.0"
H2 = "4.4.1"
HPACK = "4.2.0"


class PatchError(Exception):
    """An installed library is not the version a patch was written for (one line)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    distribution: str
    version: str
    why: str
    install: Callable[[], None] | None  # None: we only use its internals, unchanged


def _hypercorn_send_buffer() -> None:
    """hypercorn's HTTP/2 send buffer ignores back-pressure.

    hypercorn (0.18.0) lets a stream's writer go on once the send loop pops
    less than the low-water mark, measuring what it *popped*. When the
    client's flow-control window is empty the loop pops zero bytes, and every
    new message wakes it again: the writer is never held back and the buffer
    grows without bound, so a client that stops reading makes the server keep
    everything sent to it (and a slow stream's queue limit never triggers).
    Measuring what is *left* restores the intended back-pressure.
    tests/e2e/test_live_events.py has the stalled-client test. Not reported
    upstream from here (no network); drop this when hypercorn measures the
    remaining buffer in ``StreamBuffer.pop``.
    """
    from hypercorn.protocol import h2 as hypercorn_h2

    low_water = hypercorn_h2.BUFFER_LOW_WATER

    async def pop(self: hypercorn_h2.StreamBuffer, max_length: int) -> bytes:
        length = min(len(self.buffer), max_length)
        data = bytes(self.buffer[:length])
        del self.buffer[:length]
        if len(self.buffer) < low_water:
            await self._paused.set()
        if len(self.buffer) == 0:
            await self._is_empty.set()
        return data

    hypercorn_h2.StreamBuffer.pop = pop  # type: ignore[method-assign]


def _connect_codecs() -> None:
    """connect-python's JSON and binary codecs, replaced by ours.

    connect-python 0.9.0 decodes with protobuf's strict JSON parser: an
    unknown field (which newer clients legitimately send) fails the call as
    a 500 ``unknown``, and malformed JSON or protobuf does too, where Connect
    servers ignore unknown fields and answer bad input with
    ``invalid_argument``. It keeps its codecs in a module-level registry with
    no public hook, so the registry's entries are replaced
    (``notify.api.codec`` has the codecs).
    """
    import connectrpc._codec as connect_codec

    from notify.api.codec import BinaryCodec, JSONCodec

    json_codec = JSONCodec()
    registry: dict[str, Any] = connect_codec._codecs
    registry[connect_codec.CODEC_NAME_JSON] = json_codec
    registry[connect_codec.CODEC_NAME_JSON_CHARSET_UTF8] = json_codec
    registry[connect_codec.CODEC_NAME_PROTO] = BinaryCodec()


def _h2_stream_errors() -> None:
    """A malformed HTTP/2 request fails its own stream (RST_STREAM), not the connection,
    and late frames for a closed stream are dropped: see ``notify.http.h2streams``."""
    from notify.http import h2streams

    h2streams.install()


def _lean_h2_settings() -> None:
    """h2's ``Settings`` keep a deque per setting: 15 per connection, 11 KiB.

    h2 (4.4.1) keeps each setting's current value and the ones awaiting an
    ACK in a ``collections.deque``, through its module's ``collections``
    reference; that reference becomes one whose ``deque`` is a list
    (``notify.http.lean``). tests/unit/test_lean.py runs h2's settings
    exchange over it.
    """
    import collections

    from h2 import settings

    from notify.core.smalldeque import SmallDeque
    from notify.http.lean import module_with

    settings.collections = module_with(collections, deque=SmallDeque)  # type: ignore[attr-defined]


def _lean_hpack_tables() -> None:
    """hpack's header tables start with an empty deque each (two per connection)."""
    from hpack import table

    from notify.core.smalldeque import SmallDeque

    setattr(table, "deque", SmallDeque)  # noqa: B010 (not an attribute mypy knows)


def _lean_stream_queues() -> None:
    """hypercorn's per-stream receive queue and connect-python's per-stream event.

    hypercorn (0.18.0) gives every stream an ``asyncio.Queue`` (three deques
    and an event), and connect-python (0.9.0) every server stream an
    ``asyncio.Event`` for its disconnect watch: ``notify.http.lean``'s
    versions instead, on the CPython versions those were checked against.
    """
    import asyncio

    import connectrpc._server_async as connect_server
    from hypercorn.asyncio import task_group

    from notify.http.lean import LeanEvent, LeanQueue, module_with, stdlib_checked

    if not stdlib_checked():
        return
    task_group.asyncio = module_with(asyncio, Queue=LeanQueue)  # type: ignore[attr-defined]
    setattr(connect_server, "Event", LeanEvent)  # noqa: B010 (not an attribute mypy knows)


_ENTRIES = (
    _Entry("hypercorn", HYPERCORN, "HTTP/2 send-buffer back-pressure", _hypercorn_send_buffer),
    _Entry("hypercorn", HYPERCORN, "per-stream HTTP/2 header errors", _h2_stream_errors),
    _Entry("h2", H2, "per-stream HTTP/2 header errors", None),
    _Entry("h2", H2, "settings kept in lists, not deques", _lean_h2_settings),
    _Entry("hpack", HPACK, "header tables kept in lists, not deques", _lean_hpack_tables),
    _Entry("hypercorn", HYPERCORN, "a lean receive queue per stream", _lean_stream_queues),
    _Entry("connect-python", CONNECT_PYTHON, "a lean disconnect event per stream", None),
    _Entry(
        "hypercorn",
        HYPERCORN,
        "notify.http.listener drives TCPServer, WorkerContext and ASGIWrapper directly",
        None,
    ),
    _Entry(
        "connect-python", CONNECT_PYTHON, "lenient JSON and safe decode errors", _connect_codecs
    ),
    _Entry(
        "uvicorn",
        UVICORN,
        "notify.http.listener drives HttpToolsProtocol and ServerState directly",
        None,
    ),
    _Entry(
        "uvicorn",
        UVICORN,
        "notify.http.h1's BodyWriter reads RequestResponseCycle's response state and flow",
        None,
    ),
)

_applied = False


def check(version_of: Callable[[str], str] = importlib.metadata.version) -> None:
    """Raises PatchError naming the first library whose version does not match."""
    for entry in _ENTRIES:
        try:
            installed = version_of(entry.distribution)
        except importlib.metadata.PackageNotFoundError:
            installed = "none"
        if installed != entry.version:
            raise PatchError(
                f"{entry.distribution} {installed} is installed, but notify's patch "
                f"({entry.why}) is written for {entry.version} exactly: install "
                f"{entry.distribution}=={entry.version} (pyproject.toml pins it), or review "
                "notify/http/patches.py for the new release"
            )


def apply(version_of: Callable[[str], str] = importlib.metadata.version) -> None:
    """Checks every version, then installs every patch (once per process)."""
    global _applied
    check(version_of)
    if _applied:
        return
    for entry in _ENTRIES:
        if entry.install is not None:
            entry.install()
    _applied = True
