"""A list with the two deque methods short queues use: smaller than a deque when nearly empty.

An empty CPython ``deque`` allocates a block of 64 slots (760 bytes as
tracemalloc counts it) before it holds anything; an empty list is 56 bytes
and grows with what it holds. For a queue that is empty or holds a few items
almost all the time, and is bounded (a live session's queue, an HTTP/2
connection's settings), the list is as fast and a tenth of the memory; its
``popleft`` moves the rest, so it is not for long queues that stay long.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class SmallDeque(list[T]):
    """``popleft`` and ``appendleft`` on a list: O(n) at the left, for short contents."""

    __slots__ = ()

    def popleft(self) -> T:
        return self.pop(0)

    def appendleft(self, item: T) -> None:
        self.insert(0, item)
