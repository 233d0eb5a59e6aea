"""Presence: which replicas have live sessions of which (tenant, user).

A replica that asks over the bus ("who took these rows?") waits only for
the replicas that have sessions of those users, and not at all when none
has: ``expected`` counts them. Each replica keeps its own rows in
``notify_presence`` (written in the background, coalesced, one statement per
flush) and heartbeats ``notify_replicas``; a replica that stops heartbeating
expires after ``ttl`` and its presence rows are deleted with it, so a killed
replica makes others wait (at most the reply bound) only until it expires.

A session opened a moment ago may not be in the table yet: a Notify in that
window still reaches it over the bus, but does not wait for its reply, so
the row is answered (and stored) PENDING and counts as missed on resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator

import asyncpg

logger = logging.getLogger("notify.presence")

Key = tuple[str, str]

_REGISTER = """
INSERT INTO notify_replicas (replica_id, expires_at) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (replica_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
"""
_BEAT = """
UPDATE notify_replicas SET expires_at = now() + make_interval(secs => $2) WHERE replica_id = $1
"""
_EXPIRE = "DELETE FROM notify_replicas WHERE expires_at < now()"
_ADD = """
INSERT INTO notify_presence (tenant_id, user_id, replica_id)
SELECT t, u, $3 FROM unnest($1::text[], $2::text[]) AS k(t, u)
ON CONFLICT DO NOTHING
"""
_REMOVE = """
DELETE FROM notify_presence p USING unnest($1::text[], $2::text[]) AS k(t, u)
WHERE p.tenant_id = k.t AND p.user_id = k.u AND p.replica_id = $3
"""
_FORGET = "DELETE FROM notify_replicas WHERE replica_id = $1"
_EXPECTED = """
SELECT count(DISTINCT p.replica_id) FROM notify_presence p
JOIN unnest($1::text[], $2::text[]) AS k(t, u) ON p.tenant_id = k.t AND p.user_id = k.u
JOIN notify_replicas r ON r.replica_id = p.replica_id
WHERE p.replica_id <> $3 AND r.expires_at > now()
"""


class LocalPresence:
    """This replica's (tenant, user) keys with at least one open session (a refcount)."""

    def __init__(self) -> None:
        self._counts: dict[Key, int] = {}

    def opened(self, key: Key) -> bool:
        """Counts a session in; True when it is the key's first."""
        count = self._counts.get(key, 0)
        self._counts[key] = count + 1
        return count == 0

    def closed(self, key: Key) -> bool:
        """Counts a session out; True when it was the key's last."""
        count = self._counts.get(key, 0)
        if count <= 1:
            self._counts.pop(key, None)
            return count == 1
        self._counts[key] = count - 1
        return False

    def __contains__(self, key: Key) -> bool:
        return key in self._counts

    def __iter__(self) -> Iterator[Key]:
        return iter(list(self._counts))

    def __len__(self) -> int:
        return len(self._counts)


class PresenceTable:
    """This replica's rows in notify_presence, and the count of other watching replicas."""

    def __init__(
        self, pool: asyncpg.Pool, replica_id: str, local: LocalPresence, *, ttl: float
    ) -> None:
        self._pool = pool
        self._replica_id = replica_id
        self._local = local
        self._ttl = ttl
        self._changes: dict[Key, bool] = {}  # the latest wish per key: present or not
        self._wake = asyncio.Event()
        self._resync = True
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._pool.execute(_REGISTER, self._replica_id, self._ttl)
        self._resync = True
        await self._flush()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._writer()), loop.create_task(self._heartbeat())]

    def changed(self, key: Key, present: bool) -> None:
        self._changes[key] = present
        self._wake.set()

    async def expected(self, keys: Iterable[Key]) -> int:
        """How many other live replicas have sessions of any of these keys."""
        tenants, users = _columns(set(keys))
        if not tenants:
            return 0
        return int(await self._pool.fetchval(_EXPECTED, tenants, users, self._replica_id) or 0)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._pool.execute(_FORGET, self._replica_id)

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("presence write failed", extra={"reason": type(exc).__name__})
                self._resync = True  # the next beat writes everything again

    async def _flush(self) -> None:
        async with self._pool.acquire() as conn:
            if self._resync:
                self._changes.clear()
                async with conn.transaction():
                    await conn.execute(_REGISTER, self._replica_id, self._ttl)
                    await conn.execute(
                        "DELETE FROM notify_presence WHERE replica_id = $1", self._replica_id
                    )
                    tenants, users = _columns(self._local)
                    await conn.execute(_ADD, tenants, users, self._replica_id)
                self._resync = False
                return
            changes, self._changes = self._changes, {}
            added = [k for k, present in changes.items() if present]
            removed = [k for k, present in changes.items() if not present]
            if added:
                await conn.execute(_ADD, *_columns(added), self._replica_id)
            if removed:
                await conn.execute(_REMOVE, *_columns(removed), self._replica_id)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                async with self._pool.acquire() as conn:
                    status = await conn.execute(_BEAT, self._replica_id, self._ttl)
                    await conn.execute(_EXPIRE)
                if status.endswith(" 0"):
                    # Expired while the database was away: our rows went with it.
                    self._resync = True
                if self._resync:
                    self._wake.set()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("presence heartbeat failed", extra={"reason": type(exc).__name__})
                self._resync = True


def _columns(keys: Iterable[Key]) -> tuple[list[str], list[str]]:
    tenants: list[str] = []
    users: list[str] = []
    for tenant, user in keys:
        tenants.append(tenant)
        users.append(user)
    return tenants, users
