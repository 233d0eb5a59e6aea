"""The scheduler: makes time-driven inbox changes happen on time.

Rows for later (deliver_at), snoozes and expiries are kept by the store with
the time they are due (``Store.next_due_ms``). One task per process sleeps
until the earliest of them, or until a write brings an earlier one
(``poke``), then has the Notifier run what is due. It also wakes every
``poll_interval`` so that work written by another replica is picked up; the
store hands each due row to one replica only (PostgreSQL: SKIP LOCKED), so
any number of replicas may run it. On start it runs at once: deadlines missed
while no process ran fire then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from notify.core.clock import Clock
from notify.core.errors import NotifyError
from notify.service.notifier import Notifier

logger = logging.getLogger("notify.scheduler")


class Scheduler:
    def __init__(self, notifier: Notifier, clock: Clock, *, poll_interval: float = 1.0) -> None:
        self._notifier = notifier
        self._clock = clock
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        notifier.on_schedule = self.poke

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="notify-scheduler")

    def poke(self) -> None:
        """Something may be due sooner than the scheduler thinks: look again now."""
        self._wake.set()

    async def tick(self) -> int:
        """Runs everything due now (in batches); returns how many rows changed."""
        total = 0
        while True:
            done = await self._notifier.run_due()
            total += done
            if done == 0:
                return total

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
                due = await self._notifier.next_due_ms()
            except NotifyError as exc:  # the store is away: try again later
                logger.warning("scheduler could not run", extra={"reason": exc.message})
                due = None
            wait = self._poll_interval
            if due is not None:
                wait = min(wait, max(0.0, (due - self._clock.now_ms()) / 1000))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
