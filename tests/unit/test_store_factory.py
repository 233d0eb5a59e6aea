"""Start-up retries against an unreachable database give up at the deadline, to the second."""

from __future__ import annotations

import pytest

from notify.store.factory import LAST_ATTEMPT, RetriesExhausted, retry_until


class FakeTime:
    """A clock that only moves when the code under test sleeps or an attempt takes time."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


async def test_instant_failures_are_retried_until_the_deadline_not_before() -> None:
    time = FakeTime()
    attempts: list[tuple[float, float]] = []

    async def refused(budget: float) -> None:
        attempts.append((round(time.now - 100, 6), round(budget, 6)))
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(RetriesExhausted, match="ConnectionRefusedError: connection refused"):
        await retry_until(refused, 5.0, retry_on=(OSError,), clock=time.clock, sleep=time.sleep)
    assert time.now - 100 == pytest.approx(5.0)
    starts = [start for start, _ in attempts]
    # Backoff 0.2, 0.4, 0.8, 1.6 s, then the pause is cut short to land on the deadline.
    assert starts == pytest.approx([0, 0.2, 0.6, 1.4, 3.0, 5.0])
    budgets = [budget for _, budget in attempts]
    assert budgets[:-1] == pytest.approx([5.0 - start for start in starts[:-1]])
    assert budgets[-1] == LAST_ATTEMPT  # the attempt at the deadline still gets a moment


async def test_a_hanging_attempt_gets_the_remaining_time_and_ends_at_the_deadline() -> None:
    time = FakeTime()
    budgets: list[float] = []

    async def hangs(budget: float) -> None:
        budgets.append(budget)
        time.now += budget  # the attempt's own timeout fires
        raise TimeoutError

    with pytest.raises(RetriesExhausted, match="TimeoutError"):
        await retry_until(hangs, 5.0, retry_on=(TimeoutError,), clock=time.clock, sleep=time.sleep)
    assert budgets == [5.0]
    assert time.now - 100 == 5.0


async def test_a_slow_attempt_leaves_the_next_only_what_is_left() -> None:
    time = FakeTime()
    budgets: list[float] = []

    async def slow_then_up(budget: float) -> str:
        budgets.append(round(budget, 6))
        if len(budgets) < 3:
            time.now += 1.5
            raise OSError("reset")
        return "connected"

    got = await retry_until(
        slow_then_up, 4.0, retry_on=(OSError,), clock=time.clock, sleep=time.sleep
    )
    assert got == "connected"
    assert budgets == [4.0, 2.3, 0.4]  # 4 - 1.5 - 0.2 pause; 2.3 - 1.5 - 0.4 pause


async def test_other_errors_are_not_retried() -> None:
    time = FakeTime()

    async def broken(budget: float) -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await retry_until(broken, 5.0, retry_on=(OSError,), clock=time.clock, sleep=time.sleep)
    assert time.now == 100.0
