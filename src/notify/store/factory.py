"""Opens the store driver the configuration names: the only module that knows them.

Drivers are imported lazily, so the memory store never loads asyncpg.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from notify.config import Config
from notify.store import Store

logger = logging.getLogger("notify.store")


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

    deadline = time.monotonic() + config.postgres_connect_timeout
    delay = 0.2
    while True:
        try:
            return await PostgresStore.connect(
                config.postgres_dsn,
                max_size=config.postgres_max_connections,
                automigrate=config.postgres_automigrate,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = _describe(exc)
            if time.monotonic() + delay > deadline:
                raise StoreStartupError(
                    f"cannot reach PostgreSQL after {config.postgres_connect_timeout:g}s: {reason}"
                ) from None
            logger.warning("PostgreSQL not reachable yet, retrying", extra={"reason": reason})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _describe(exc: BaseException) -> str:
    """One line that names the problem without echoing the DSN (it may hold a password)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
