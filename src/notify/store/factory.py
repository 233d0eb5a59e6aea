"""Opens the store driver the configuration names: the only module that knows them.

Drivers are imported lazily, so the memory store never loads asyncpg.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from notify.config import Config
from notify.store import Store

logger = logging.getLogger("notify.store")
T = TypeVar("T")

FIRST_DELAY = 0.2
MAX_DELAY = 2.0
# The attempt that starts at the deadline still gets this long to connect, so
# a database that comes up just in time is not turned away.
LAST_ATTEMPT = 0.25


class StoreStartupError(Exception):
    """The store could not be opened; the message is one line for the operator."""


async def open_store(config: Config) -> Store:
    if config.store_driver == "memory":
        from notify.store.memory import MemoryStore

        return MemoryStore()
    return await _open_postgres(config)


async def migrate_database(config: Config) -> list[str]:
    """Applies pending migrations (``notifyd migrate``); returns the names applied."""
    if config.store_driver != "postgres":
        raise StoreStartupError("migrate needs NOTIFY_STORE_DRIVER=postgres")
    from notify.store.migrate import migrate
    from notify.store.postgres import PostgresStore

    store = await _open_postgres(dataclasses.replace(config, postgres_automigrate=False))
    assert isinstance(store, PostgresStore)
    try:
        async with store.pool.acquire() as conn:
            applied = await migrate(conn)
    finally:
        await store.close()
    return [f"{m.version:04d}_{m.name}" for m in applied]


async def _open_postgres(config: Config) -> Store:
    """Connects (and migrates), retrying with backoff for NOTIFY_POSTGRES_CONNECT_TIMEOUT."""
    import asyncpg

    from notify.store.postgres import PostgresStore

    async def attempt(budget: float) -> Store:
        async with asyncio.timeout(budget):
            return await PostgresStore.connect(
                config.postgres_dsn,
                max_size=config.postgres_max_connections,
                automigrate=config.postgres_automigrate,
            )

    try:
        return await retry_until(
            attempt,
            config.postgres_connect_timeout,
            retry_on=(TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError),
        )
    except RetriesExhausted as exc:
        raise StoreStartupError(
            f"cannot reach PostgreSQL after {config.postgres_connect_timeout:g}s: {exc.reason}"
        ) from None


class RetriesExhausted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def retry_until(
    attempt: Callable[[float], Awaitable[T]],
    within: float,
    *,
    retry_on: tuple[type[BaseException], ...],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Calls ``attempt(budget)`` until it succeeds or ``within`` seconds have passed.

    Gives up at the deadline, not before: each attempt gets the time left as
    its budget, the pause before the next is cut short to land on the
    deadline, and the attempt made there gets LAST_ATTEMPT to finish.
    """
    deadline = clock() + within
    delay = FIRST_DELAY
    while True:
        try:
            return await attempt(max(deadline - clock(), LAST_ATTEMPT))
        except retry_on as exc:
            reason = _describe(exc)
        remaining = deadline - clock()
        if remaining <= 0:
            raise RetriesExhausted(reason)
        logger.warning("PostgreSQL not reachable yet, retrying", extra={"reason": reason})
        await sleep(min(delay, remaining))
        delay = min(delay * 2, MAX_DELAY)


def _describe(exc: BaseException) -> str:
    """One line that names the problem without echoing the DSN (it may hold a password)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
