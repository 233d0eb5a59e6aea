"""Compiling the small functions generated from descriptors and dataclasses.

Several modules turn a field list into straight-line Python once (converters,
row copies, JSON encoders) and ``exec`` it. CPython 3.11 can fail a
``compile`` that runs at the same moment as another one in another thread
("AST constructor recursion depth mismatch"); the service compiles lazily
from its event-loop thread while tests drive it from theirs, so every such
compile goes through one lock.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()


def define(source: str, namespace: dict[str, Any]) -> None:
    """Executes generated ``source`` (definitions only) into ``namespace``."""
    with _lock:
        code = compile(source, "<notify generated>", "exec")
    exec(code, namespace)
