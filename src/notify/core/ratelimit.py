"""Token buckets per key, on an injected clock: the service's rate limits.

A limit "N per unit" lets a key burst N at once and refills N every unit,
continuously. Buckets live in memory, one per key seen recently (at most
``max_keys``; the least recently used is forgotten first, which only ever
errs towards letting a forgotten key through). With several replicas each
enforces its own share: see README's Security section.

Written here rather than taken from ``limits``: its in-memory storage reads
the wall clock directly (tests could not drive it), takes a lock per hit and
runs an expiry thread, and its moving window keeps every hit of every key;
a bucket is two floats.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from notify.core.clock import Clock
from notify.core.errors import ResourceExhausted

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Rate:
    """``amount`` per ``per`` seconds; amount 0 means no limit."""

    amount: int
    per: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``100/s``, ``3000/m``, ``10/h``, or ``off``/``0`` for no limit."""
        value = text.strip().lower()
        if value in ("off", "0", "none"):
            return cls(0, 1.0)
        amount, sep, unit = value.partition("/")
        if not sep or unit not in _UNITS or not amount.isdigit() or int(amount) < 1:
            raise ValueError(f"{text!r} is not a rate like 100/s, 3000/m or off")
        return cls(int(amount), _UNITS[unit])

    @property
    def enabled(self) -> bool:
        return self.amount > 0

    def __str__(self) -> str:
        if not self.enabled:
            return "off"
        unit = next(u for u, seconds in _UNITS.items() if seconds == self.per)
        return f"{self.amount}/{unit}"


class RateLimited(ResourceExhausted):
    """A key spent its budget; ``retry_after`` seconds until ``cost`` is available again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, rate: Rate, clock: Clock, *, what: str, max_keys: int = 100_000) -> None:
        self.rate = rate
        self._clock = clock
        self._what = what
        self._max_keys = max_keys
        self._refill = rate.amount / rate.per if rate.enabled else 0.0
        # key -> (tokens, monotonic time they were counted at)
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()

    def take(self, key: object, cost: int = 1) -> None:
        """Spends ``cost`` tokens of ``key``'s bucket, or raises RateLimited."""
        if not self.rate.enabled:
            return
        now = self._clock.monotonic()
        capacity = float(self.rate.amount)
        tokens, then = self._buckets.pop(key, (capacity, now))
        tokens = min(capacity, tokens + (now - then) * self._refill)
        if cost > capacity:
            self._remember(key, tokens, now)
            raise RateLimited(
                f"{self._what}: {cost} at once is more than the limit of {self.rate} allows",
                retry_after=self.rate.per,
            )
        if tokens < cost:
            self._remember(key, tokens, now)
            wait = (cost - tokens) / self._refill
            raise RateLimited(
                f"{self._what}: rate limit of {self.rate} reached; retry in "
                f"{math.ceil(wait * 1000) / 1000:g}s",
                retry_after=wait,
            )
        self._remember(key, tokens - cost, now)

    def _remember(self, key: object, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
