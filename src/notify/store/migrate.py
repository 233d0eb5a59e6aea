"""Versioned SQL migrations, shipped in the package and applied in order.

Each ``migrations/NNNN_name.sql`` runs once, in its own transaction, and is
recorded in ``notify_schema_migrations``. A session advisory lock serialises
replicas that start at once: the first applies, the others wait and then find
nothing left to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

logger = logging.getLogger("notify.store.migrate")

# Any constant works; this one spells "notify" in ASCII.
ADVISORY_LOCK_ID = 0x6E6F74696679

_APPLIED = "SELECT version FROM notify_schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    folder = resources.files("notify.store") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(int(version), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Applies every pending migration; returns those it applied."""
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS notify_schema_migrations (
                   version    integer     PRIMARY KEY,
                   name       text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now()
               )"""
        )
        done = {
            r["version"] for r in await conn.fetch("SELECT version FROM notify_schema_migrations")
        }
        applied: list[Migration] = []
        for migration in bundled_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO notify_schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            logger.info(
                "applied migration",
                extra={"version": migration.version, "migration": migration.name},
            )
            applied.append(migration)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
