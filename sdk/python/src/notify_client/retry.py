"""When to try a call again, and how long to wait first.

The rules, from the service's backend reliability notes: a producer's call
must never hold up the caller (often inside a database transaction) for
longer than its deadline. So every call has one total deadline; each attempt
gets only what is left of it; a wait that would cross it is not started (the
last error is raised at once instead); and only the codes that mean "try
later" are retried. Waits are exponential with full jitter (a random wait
between 0 and the cap, so many producers retrying together spread out),
except when the server names its own wait (RetryInfo or ``Retry-After``,
sent with RESOURCE_EXHAUSTED by the rate limiter): that is honoured as given.

This module does no I/O and reads no clock of its own, so the sync and the
async client share it and tests drive it with a fake clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from connectrpc.code import Code

from notify_client.errors import NotifyError

__all__ = ["RETRYABLE", "Attempts", "RetryPolicy"]

RETRYABLE = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED})

# Below this much time left an attempt cannot succeed; give up instead.
_MIN_ATTEMPT_SECONDS = 0.001


@dataclass(frozen=True)
class RetryPolicy:
    """How a call retries. ``deadline`` (seconds) bounds the whole call, waits included."""

    deadline: float = 5.0
    max_attempts: int = 6
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0
    retryable: frozenset[Code] = field(default=RETRYABLE)

    def __post_init__(self) -> None:
        if self.deadline <= 0 or self.max_attempts < 1:
            raise ValueError("deadline must be > 0 and max_attempts >= 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("need 0 <= initial_backoff <= max_backoff")

    def backoff_cap(self, failures: int) -> float:
        """The longest jittered wait after the ``failures``-th failed attempt (1-based)."""
        return min(self.max_backoff, self.initial_backoff * self.multiplier ** (failures - 1))


class Attempts:
    """The retry state of one call: its deadline, attempts made, the next wait."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random,
        deadline: float | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._end = clock() + (policy.deadline if deadline is None else deadline)
        self.made = 0

    def remaining(self) -> float:
        return self._end - self._clock()

    def timeout_ms(self) -> int:
        """The budget of the next attempt: all that is left of the deadline."""
        self.made += 1
        return max(1, int(self.remaining() * 1000))

    def wait_before_retry(self, error: NotifyError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise ``error``."""
        if error.code not in self._policy.retryable or self.made >= self._policy.max_attempts:
            return None
        if error.retry_after is not None:
            wait = error.retry_after
        else:
            wait = self._rng.uniform(0.0, self._policy.backoff_cap(self.made))
        if wait + _MIN_ATTEMPT_SECONDS >= self.remaining():
            return None
        return wait
