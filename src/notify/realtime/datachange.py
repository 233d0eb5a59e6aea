"""Data-change hints: at-least-once to every live session, until acked.

PublishDataChange starts a *round* for (tenant, idempotency_key): every live
session of the named users gets the event, and each session that has not
called AckDataChange gets it again every ``retry_interval``, at most
``max_attempts`` more times; then the round gives up on it. A repeated publish
of a key whose round is running, or ended less than ``remember_for`` ago,
starts nothing. Nothing is stored: a hint is only useful to sessions that are
open now.

Rounds are per replica: each runs the rounds of its own sessions (the relay
hands it the bus's DataChangePublished and DataChangeAcked events), so a
redelivery never crosses the bus.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from notify.core.clock import Clock, SystemClock
from notify.core.commands import DataChangeCommand
from notify.realtime.hub import DataChangePush, Hub, Session

# How many finished keys are remembered for de-duplication, at most.
_REMEMBERED_KEYS = 100_000


@dataclass(slots=True)
class _Round:
    event: DataChangePush
    reached: int
    pending: dict[str, Session] = field(default_factory=dict)
    attempts: int = 0
    timer: asyncio.TimerHandle | None = None


class DataChangeRounds:
    def __init__(
        self,
        hub: Hub,
        *,
        retry_interval: float,
        max_attempts: int,
        on_redeliver: Callable[[int], None] = lambda n: None,
        on_give_up: Callable[[int], None] = lambda n: None,
        clock: Clock | None = None,
    ) -> None:
        self._hub = hub
        self._clock: Clock = clock or SystemClock()
        self._retry_interval = retry_interval
        self._max_attempts = max_attempts
        self._on_redeliver = on_redeliver
        self._on_give_up = on_give_up
        self._running: dict[tuple[str, str], _Round] = {}
        self._finished: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self.remember_for = retry_interval * (max_attempts + 1) + 60.0

    def __len__(self) -> int:
        return len(self._running)

    def publish(self, command: DataChangeCommand) -> int:
        """Starts a round for this replica's sessions; returns how many it reached at first."""
        tenant_id = command.tenant_id
        key = (tenant_id, command.idempotency_key)
        running = self._running.get(key)
        if running is not None:
            return running.reached
        finished = self._finished.get(key)
        if finished is not None and self._clock.monotonic() - finished[0] < self.remember_for:
            return finished[1]
        event = DataChangePush(command.idempotency_key, command.subject_ref, command.subject_type)
        pending: dict[str, Session] = {}
        for user_id in command.user_ids:
            for session in self._hub.sessions_of(tenant_id, user_id):
                if session.offer(event):
                    pending[session.id] = session
        round_ = _Round(event, reached=len(pending), pending=pending)
        if pending:
            self._running[key] = round_
            round_.timer = asyncio.get_running_loop().call_later(
                self._retry_interval, self._retry, key
            )
        else:
            self._finish(key, round_)
        return round_.reached

    def ack(self, session: Session, idempotency_key: str) -> None:
        """Stops redelivery of that key to that session (the caller checked ownership)."""
        key = (session.tenant_id, idempotency_key)
        round_ = self._running.get(key)
        if round_ is None or round_.pending.pop(session.id, None) is None:
            return
        if not round_.pending:
            self._finish(key, round_)

    def close(self) -> None:
        for key, round_ in list(self._running.items()):
            self._finish(key, round_)

    def _retry(self, key: tuple[str, str]) -> None:
        round_ = self._running.get(key)
        if round_ is None:
            return
        round_.attempts += 1
        redelivered = 0
        for session_id, session in list(round_.pending.items()):
            if session.offer(round_.event):
                redelivered += 1
            else:
                del round_.pending[session_id]  # closed: nothing left to retry
        self._on_redeliver(redelivered)
        if not round_.pending:
            self._finish(key, round_)
        elif round_.attempts >= self._max_attempts:
            self._on_give_up(len(round_.pending))
            self._finish(key, round_)
        else:
            round_.timer = asyncio.get_running_loop().call_later(
                self._retry_interval, self._retry, key
            )

    def _finish(self, key: tuple[str, str], round_: _Round) -> None:
        if round_.timer is not None:
            round_.timer.cancel()
        self._running.pop(key, None)
        self._finished[key] = (self._clock.monotonic(), round_.reached)
        self._finished.move_to_end(key)
        while len(self._finished) > _REMEMBERED_KEYS:
            self._finished.popitem(last=False)
