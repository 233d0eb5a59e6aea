"""Time, injected: the service, the hub and the tests read one Clock.

Wall time (epoch milliseconds) stamps rows and heartbeats; monotonic time
measures intervals (de-duplication windows). Tests pass a ManualClock to
make "the same millisecond" or "an hour later" happen on demand instead of
patching module globals or sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time in epoch milliseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...


class SystemClock:
    """The real clocks."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = now_ms
        self._monotonic = 0.0

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Moves both clocks forward."""
        if seconds < 0:
            raise ValueError("a clock never goes back")
        self._now_ms += round(seconds * 1000)
        self._monotonic += seconds

    def set_ms(self, now_ms: int) -> None:
        """Pins wall time (it may step back, as real wall clocks do); monotonic is untouched."""
        self._now_ms = now_ms
