"""A throwaway PostgreSQL for the ``pg_*`` measurements, and what they read from it.

The cluster is tests/pg.py's ``PostgresCluster`` (Debian's PostgreSQL,
installed if missing; a temp dir, a free port on 127.0.0.1, fsync and
synchronous_commit on), one per measurement, destroyed when it ends. Its
processes' CPU is measured too, so it is not taken for background load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from bench.server import proc_cpu_times
from tests.pg import PostgresCluster

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Database:
    """One running cluster with the ``notify`` database in it."""

    def __init__(self, cluster: PostgresCluster, started_s: float) -> None:
        self.cluster = cluster
        self.started_s = started_s  # initdb, start and CREATE DATABASE

    @property
    def dsn(self) -> str:
        return self.cluster.dsn()

    @property
    def env(self) -> dict[str, str]:
        """notifyd's settings for this database (pool size: the default, 16)."""
        return {"NOTIFY_STORE_DRIVER": "postgres", "NOTIFY_POSTGRES_DSN": self.dsn}

    def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return asyncio.run(self._query(sql, *args))

    def execute(self, sql: str, *args: Any) -> str:
        return asyncio.run(self._execute(sql, *args))

    def value(self, sql: str, *args: Any) -> Any:
        rows = self.query(sql, *args)
        return rows[0][0] if rows else None

    async def _query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def _execute(self, sql: str, *args: Any) -> str:
        conn = await asyncpg.connect(self.dsn)
        try:
            return str(await conn.execute(sql, *args))
        finally:
            await conn.close()

    def describe(self) -> str:
        """The server version and the durability settings, for the report."""
        rows = self.query(
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
            ["server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers"],
        )
        settings = {row["name"]: row["setting"] for row in rows}
        return (
            f"PostgreSQL {settings.get('server_version')} on 127.0.0.1, fsync "
            f"{settings.get('fsync')}, synchronous_commit {settings.get('synchronous_commit')}, "
            f"wal_sync_method {settings.get('wal_sync_method')}, shared_buffers "
            f"{int(settings.get('shared_buffers', 0)) * 8 // 1024} MiB; a fresh cluster "
            f"(up in {self.started_s:.1f} s), destroyed afterwards"
        )

    # -- CPU ----------------------------------------------------------------

    def cpu_seconds(self) -> float:
        """CPU used so far by the postmaster and its children, the exited ones included."""
        pid_file = self.cluster.data / "postmaster.pid"
        postmaster = int(pid_file.read_text().split("\n", 1)[0])
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime are fields #14-#17 (indices 11-14 after the ")").
        total = sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS
        for child in _children(postmaster):
            with contextlib.suppress(OSError):
                user, system = proc_cpu_times(child)
                total += user + system
        return total

    @contextlib.contextmanager
    def cpu_meter(self) -> Iterator[list[tuple[str, float]]]:
        """Yields a list that gets ("PostgreSQL", cores used over the block) at the end."""
        shares: list[tuple[str, float]] = []
        before, started = self.cpu_seconds(), time.monotonic()
        try:
            yield shares
        finally:
            wall = time.monotonic() - started
            shares.append(("PostgreSQL", (self.cpu_seconds() - before) / wall if wall else 0.0))


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:  # field #4, ppid
                found.append(int(stat.parent.name))
    return found


@contextlib.contextmanager
def database() -> Iterator[Database]:
    """A fresh cluster with an empty ``notify`` database; always destroyed afterwards."""
    started = time.monotonic()
    cluster = PostgresCluster()
    try:
        cluster.start()
        cluster.create_database()
        yield Database(cluster, time.monotonic() - started)
    finally:
        cluster.destroy()
