"""Small containers for what every connection and stream holds: a list, not a deque.

An empty CPython ``deque`` allocates a block of 64 slots, 760 bytes as
tracemalloc counts it, whether it ever holds anything or not. An HTTP/2
connection carrying one gRPC stream held 27 of them, 20 KiB of its 55 KiB of
Python heap: h2's two ``Settings`` (one deque per setting, 15 in all),
hpack's two header tables, hypercorn's events (one per connection, two per
stream) and each stream's receive queue (three deques and an event),
connect-python's disconnect event for a server stream, and the reader's
drain waiters. Each of these holds nothing or a handful of items, for which
a list is smaller (56 bytes empty) and as fast: ``LeanEvent``,
``LeanQueue`` and ``LeanEventWrapper`` are asyncio's and hypercorn's
classes over ``notify.core.smalldeque.SmallDeque``.

``LeanEventWrapper`` uses nothing private, so it applies on every Python.

``LeanEvent`` and ``LeanQueue`` set the private attributes that asyncio's
own ``__init__`` sets, which is why ``notify.http.patches`` installs them
only on the CPython versions they were checked against (``STDLIB_CHECKED``);
elsewhere the libraries keep their deques, and only memory differs.
"""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any, TypeVar

from notify.core.smalldeque import SmallDeque

T = TypeVar("T")

# The CPython versions whose asyncio.Event/Queue/FlowControlMixin internals
# (the attributes set below) these classes were read against.
STDLIB_CHECKED = ((3, 11),)


def stdlib_checked(version: tuple[int, ...] = tuple(sys.version_info[:2])) -> bool:
    return version in STDLIB_CHECKED


class LeanEvent(asyncio.Event):
    """``asyncio.Event`` whose waiters are a ``SmallDeque``."""

    def __init__(self) -> None:  # asyncio.Event.__init__, with the lighter container
        self._waiters: Any = SmallDeque()
        self._value = False


class LeanQueue(asyncio.Queue[T]):
    """``asyncio.Queue`` over ``SmallDeque``s: for queues bounded to a few items."""

    def __init__(self, maxsize: int = 0) -> None:  # asyncio.Queue.__init__, lighter
        self._maxsize = maxsize
        self._getters: Any = SmallDeque()
        self._putters: Any = SmallDeque()
        self._unfinished_tasks = 0
        self._finished = LeanEvent()
        self._finished.set()
        self._init(maxsize)

    def _init(self, maxsize: int) -> None:
        self._queue: Any = SmallDeque()


class LeanEventWrapper:
    """hypercorn's asyncio ``IOEvent`` (its ``EventWrapper``), in two small objects.

    hypercorn's own wraps an ``asyncio.Event``: three objects, a dict and a
    deque. This is the same event (``set`` wakes every waiter, ``clear``
    only resets the flag) with a slotted flag and a list of waiting futures.
    hypercorn takes the class from ``WorkerContext.event_class``, a seam the
    listener sets.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: SmallDeque[asyncio.Future[None]] = SmallDeque()

    async def clear(self) -> None:
        self._value = False

    async def wait(self) -> None:
        if self._value:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            self._waiters.remove(waiter)

    async def set(self) -> None:
        if self._value:
            return
        self._value = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def is_set(self) -> bool:
        return self._value


def lean_stream_protocol(
    reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop
) -> asyncio.StreamReaderProtocol:
    """A ``StreamReaderProtocol`` whose drain waiters are a ``SmallDeque``."""
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    if stdlib_checked():
        protocol._drain_waiters = SmallDeque()  # type: ignore[attr-defined]
    return protocol


def module_with(module: types.ModuleType, **overrides: Any) -> types.ModuleType:
    """A stand-in for ``module`` that has ``overrides`` and delegates every other name.

    For a library that calls ``asyncio.Queue(...)`` through its module
    reference: its ``asyncio`` global becomes this, and nothing else changes.
    """

    class _Module(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(module, name)

    stand_in = _Module(module.__name__, module.__doc__)
    for name, value in overrides.items():
        setattr(stand_in, name, value)
    return stand_in
