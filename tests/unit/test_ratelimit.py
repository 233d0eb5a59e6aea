"""Token buckets on an injected clock."""

from __future__ import annotations

import pytest

from notify.core.clock import ManualClock
from notify.core.ratelimit import Rate, RateLimited, RateLimiter


def test_rates_parse_and_print() -> None:
    assert Rate.parse("100/s") == Rate(100, 1.0)
    assert Rate.parse(" 3000/M ") == Rate(3000, 60.0)
    assert Rate.parse("10/h") == Rate(10, 3600.0)
    assert not Rate.parse("off").enabled
    assert not Rate.parse("0").enabled
    assert str(Rate.parse("3000/m")) == "3000/m"
    for bad in ("100", "x/s", "-1/s", "1/d", "1.5/s", "/s"):
        with pytest.raises(ValueError, match="not a rate"):
            Rate.parse(bad)


def test_a_burst_then_a_steady_refill() -> None:
    clock = ManualClock()
    limiter = RateLimiter(Rate(3, 1.0), clock, what="calls")
    for _ in range(3):
        limiter.take("a")
    with pytest.raises(RateLimited) as limited:
        limiter.take("a")
    assert limited.value.retry_after == pytest.approx(1 / 3)
    limiter.take("b")  # another key has its own bucket
    clock.advance(1 / 3)
    limiter.take("a")  # one token refilled
    with pytest.raises(RateLimited):
        limiter.take("a")
    clock.advance(10)
    for _ in range(3):  # refills up to the burst, never beyond
        limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")


def test_a_cost_larger_than_the_burst_is_refused_without_spending() -> None:
    clock = ManualClock()
    limiter = RateLimiter(Rate(10, 60.0), clock, what="recipients")
    with pytest.raises(RateLimited, match="more than the limit"):
        limiter.take("t", cost=11)
    limiter.take("t", cost=10)
    with pytest.raises(RateLimited) as limited:
        limiter.take("t", cost=5)
    assert limited.value.retry_after == pytest.approx(30.0)


def test_off_never_limits_and_keys_are_bounded() -> None:
    clock = ManualClock()
    unlimited = RateLimiter(Rate(0, 1.0), clock, what="calls")
    for _ in range(10_000):
        unlimited.take("a")
    bounded = RateLimiter(Rate(1, 60.0), clock, what="calls", max_keys=2)
    bounded.take("a")
    bounded.take("b")
    bounded.take("c")  # "a", least recently used, is forgotten
    bounded.take("a")  # so it starts full again: bounded memory errs towards letting through
    with pytest.raises(RateLimited):
        bounded.take("c")
