"""The dispatcher: sends what the outbox holds, through the external providers, durably.

Notify writes an external row (email, webhook) and its outbox entry in one
commit and returns; nothing here runs on its path. Each provider gets a loop
of its own that claims due entries under a lease (the store guarantees that
no two dispatchers, in this process or any other, hold one entry at once),
sends at most ``concurrency`` of them at a time, and records each outcome:

- DELIVERED with the provider's message id;
- a transient failure (SMTP 4xx, connection errors, timeouts, HTTP
  408/429/5xx) is requeued after a jittered exponential backoff (a receiver's
  Retry-After is a floor), until ``max_attempts`` sends or ``max_age_ms``
  after the entry first fell due;
- a permanent failure, or a budget spent, is FAILED with the reason.

A crash between a send and its record leaves the entry leased; once the
lease runs out another dispatcher sends it again, with the same stable id
(Message-ID, webhook-id), so delivery is at least once and receivers can
dedupe. ``close`` stops claiming, lets in-flight sends finish for a while,
and gives back the leases of those that did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from notify.config import Config
from notify.core.clock import Clock
from notify.core.errors import NotifyError
from notify.core.model import Status
from notify.core.ports import Delivery, Provider, Receipt
from notify.delivery.backoff import Backoff
from notify.metrics import Metrics
from notify.store import OutboxEntry, SendResult, Store

logger = logging.getLogger("notify.dispatcher")

# How long close() waits for cancelled sends to unwind before releasing their leases.
CANCEL_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    backoff: Backoff
    max_attempts: int = 8
    max_age_ms: int = 24 * 3600 * 1000
    concurrency: int = 16
    lease_ms: int = 60_000
    # One send never runs longer than this (providers have their own, shorter timeouts).
    send_timeout_s: float = 30.0
    # How often an idle loop looks for work written by other replicas, retries
    # come due, or leases of dead dispatchers run out.
    poll_interval_s: float = 1.0

    @classmethod
    def from_config(cls, config: Config) -> DispatchPolicy:
        return cls(
            Backoff(config.delivery_backoff),
            max_attempts=config.delivery_max_attempts,
            max_age_ms=int(config.delivery_max_age * 1000),
            concurrency=config.delivery_concurrency,
            lease_ms=int(config.delivery_lease * 1000),
        )


class Dispatcher:
    def __init__(
        self,
        store: Store,
        providers: Sequence[Provider],
        clock: Clock,
        metrics: Metrics,
        policy: DispatchPolicy,
    ) -> None:
        self._store = store
        self._providers = list(providers)
        self._clock = clock
        self._metrics = metrics
        self._policy = policy
        # This process's lease token: results are recorded only while it holds the entry.
        self.token = str(uuid.uuid4())
        self._wake = {p.name: asyncio.Event() for p in self._providers}
        self._inflight: dict[asyncio.Task[None], OutboxEntry] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def channels(self) -> list[str]:
        return [p.channel.name.lower() for p in self._providers]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._run(p), name=f"notify-dispatch-{p.name}")
            for p in self._providers
        ]

    def poke(self) -> None:
        """New entries were queued: every loop looks now."""
        for event in self._wake.values():
            event.set()

    async def tick(self) -> int:
        """Claims what is due now for every provider and sends it to the end (for tests
        and tools; the running loops do the same continuously). Returns the entries handled."""
        handled = 0
        for provider in self._providers:
            entries = await self._claim(provider, self._policy.concurrency)
            await asyncio.gather(*(self._send_one(provider, e) for e in entries))
            handled += len(entries)
        return handled

    async def drain(self) -> None:
        """Waits until every send in flight now (and any started meanwhile) is recorded."""
        while self._inflight:
            await asyncio.wait(list(self._inflight))

    async def close(self, grace: float = 10.0) -> None:
        """Stops claiming; in-flight sends get ``grace`` seconds to end, the rest are released."""
        self._closing = True
        self.poke()
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = list(self._inflight)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            left = [self._inflight[t].row.id for t in still if t in self._inflight]
            for task in still:
                task.cancel()
            if still:
                # A cancelled SMTP send may wait to say QUIT; its result would be
                # ignored anyway once its lease is given back below.
                await asyncio.wait(still, timeout=CANCEL_WAIT_S)
            if left:
                with contextlib.suppress(NotifyError):
                    await self._store.release_outbox(self.token, left)

    async def observe(self) -> None:
        """Sets the outbox gauges (entries, oldest due age) per channel."""
        now = self._clock.now_ms()
        depth = await self._store.outbox_depth(now)
        for provider in self._providers:
            found = depth.get(provider.channel)
            channel = provider.channel.name.lower()
            entries = found.entries if found else 0
            oldest = (now - found.oldest_due_ms) / 1000 if found and found.oldest_due_ms else 0.0
            self._metrics.outbox_entries.labels(channel=channel).set(entries)
            self._metrics.outbox_oldest_due_age.labels(channel=channel).set(oldest)

    # ------------------------------------------------------------ the loop

    async def _claim(self, provider: Provider, limit: int) -> list[OutboxEntry]:
        return await self._store.claim_outbox(
            provider.channel, self._clock.now_ms(), limit, self._policy.lease_ms, self.token
        )

    async def _run(self, provider: Provider) -> None:
        wake = self._wake[provider.name]
        mine: set[asyncio.Task[None]] = set()
        last_observed = 0.0
        while not self._closing:
            wake.clear()
            free = self._policy.concurrency - len(mine)
            claimed = 0
            try:
                if free > 0:
                    entries = await self._claim(provider, free)
                    claimed = len(entries)
                    for entry in entries:
                        task = asyncio.get_running_loop().create_task(
                            self._send_one(provider, entry)
                        )
                        self._inflight[task] = entry
                        mine.add(task)
                        task.add_done_callback(lambda t: self._finished(t, mine, wake))
                if time.monotonic() - last_observed >= self._policy.poll_interval_s:
                    last_observed = time.monotonic()
                    await self.observe()
            except NotifyError as exc:  # the store is away: try again later
                logger.warning("dispatcher could not claim", extra={"reason": exc.message})
            if claimed and claimed == free:
                continue  # more may be due: claim again once a slot is free
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._policy.poll_interval_s):
                    await wake.wait()

    def _finished(
        self, task: asyncio.Task[None], mine: set[asyncio.Task[None]], wake: asyncio.Event
    ) -> None:
        """A finished send frees its slot and wakes its loop."""
        mine.discard(task)
        self._inflight.pop(task, None)
        wake.set()

    async def _send_one(self, provider: Provider, entry: OutboxEntry) -> None:
        row = entry.row
        attempts = row.attempts + 1
        started = time.perf_counter()
        if not row.address and not row.channel.to_devices:
            receipt = Receipt(Status.FAILED, reason=f"no {row.channel.address_key} address")
            attempts = row.attempts
        else:
            try:
                async with asyncio.timeout(self._policy.send_timeout_s):
                    (receipt,) = await provider.send([Delivery(row, row.address)])
            except TimeoutError:
                receipt = Receipt(Status.PENDING, reason="timed out")
            except Exception as exc:  # a provider bug must not lose the entry
                logger.warning(
                    "provider raised", extra={"provider": provider.name, "error": repr(exc)}
                )
                receipt = Receipt(Status.PENDING, reason=f"provider error: {type(exc).__name__}")
            self._metrics.delivery_send_duration.labels(provider=provider.name).observe(
                time.perf_counter() - started
            )
        result = self._result(entry, attempts, receipt)
        try:
            recorded = await self._store.finish_outbox(self.token, [result])
        except NotifyError as exc:
            # Unrecorded: the lease runs out and the entry is sent again (at least once).
            logger.warning("could not record a send", extra={"reason": exc.message})
            return
        if not recorded:
            return  # the lease was lost meanwhile: its new holder records instead
        outcome = {Status.DELIVERED: "delivered", Status.FAILED: "failed"}.get(
            result.status, "retried"
        )
        self._metrics.delivery_sends.labels(provider=provider.name, outcome=outcome).inc()
        if result.status is not Status.PENDING:
            self._metrics.notifications_stored.labels(
                channel=row.channel.name.lower(), status=result.status.name.lower()
            ).inc()
            self._metrics.delivery_attempts.labels(provider=provider.name).observe(attempts)

    def _result(self, entry: OutboxEntry, attempts: int, receipt: Receipt) -> SendResult:
        now = self._clock.now_ms()
        row_id = entry.row.id
        if receipt.status is Status.DELIVERED:
            return SendResult(
                row_id,
                Status.DELIVERED,
                attempts,
                at_ms=receipt.at_ms or now,
                provider_message_id=receipt.provider_message_id,
            )
        if receipt.status is Status.FAILED:
            return SendResult(
                row_id, Status.FAILED, attempts, at_ms=now, reason=receipt.reason[:1000]
            )
        retry_at = now + self._policy.backoff.wait_ms(attempts, receipt.retry_after_ms)
        if attempts >= self._policy.max_attempts:
            why = f"gave up after {attempts} attempts: {receipt.reason}"
            return SendResult(row_id, Status.FAILED, attempts, at_ms=now, reason=why[:1000])
        if retry_at > entry.first_due_ms + self._policy.max_age_ms:
            why = f"gave up after {attempts} attempts (too old to retry): {receipt.reason}"
            return SendResult(row_id, Status.FAILED, attempts, at_ms=now, reason=why[:1000])
        return SendResult(
            row_id, Status.PENDING, attempts, reason=receipt.reason[:1000], retry_at_ms=retry_at
        )
