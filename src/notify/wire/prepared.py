"""Answers a handler encodes itself, handed to whichever codec answers the call.

Some answers are far cheaper to write from the domain rows than through a
protobuf message (a page of rich rows: no Struct per row's ``data``, no
message per action, and each row's bytes reused from ``RowBytes``). The
handler returns a placeholder message and registers, for that very message,
one function per codec name that writes the whole answer; the codec
connect-python picked for the call (from the request's content type) asks
for its own. Encoding is deferred to the codec, so the handler never has to
guess the codec from headers, and an answer is encoded once, in one codec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TypeVar

from google.protobuf.message import Message

Writers = Mapping[str, Callable[[], bytes]]
M = TypeVar("M", bound=Message)

_prepared: ContextVar[tuple[Message, Writers] | None] = ContextVar(
    "notify_prepared_answer", default=None
)


def prepare(message: M, writers: Writers) -> M:
    """Registers ``writers`` (codec name -> the answer's bytes) for ``message``; returns it."""
    _prepared.set((message, writers))
    return message


def take(message: Message, codec: str) -> bytes | None:
    """The bytes prepared for ``message`` in ``codec``, or None: encode it as usual."""
    ready = _prepared.get()
    if ready is None or ready[0] is not message:
        return None
    writer = ready[1].get(codec)
    return None if writer is None else writer()
