"""Exponential backoff with full jitter, with the randomness injected.

Full jitter (a uniform wait between 0 and the exponential bound) spreads the
retries of many sends that failed together, so a receiver coming back is not
hit by all of them at once. Tests pass a fixed ``random`` to know the waits.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable

# No single wait is longer than this, however many attempts came before.
MAX_WAIT_S = 600.0


class Backoff:
    def __init__(
        self,
        base_s: float,
        *,
        cap_s: float = MAX_WAIT_S,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._base = base_s
        self._cap = cap_s
        self._random = random

    def bound_ms(self, attempt: int) -> int:
        """The longest wait after the ``attempt``-th failed send (1-based)."""
        return int(min(self._cap, self._base * 2 ** max(0, attempt - 1)) * 1000)

    def wait_ms(self, attempt: int, retry_after_ms: int = 0) -> int:
        """A jittered wait; a receiver's Retry-After (capped too) is a floor."""
        jittered = int(self._random() * self.bound_ms(attempt))
        return max(jittered, min(retry_after_ms, int(self._cap * 1000)))
