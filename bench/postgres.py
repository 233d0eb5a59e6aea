"""The PostgreSQL store: Notify throughput, a 1,000-user Notify, a 100,000-row inbox.

Each measurement starts a throwaway cluster (bench.pgcluster: fsync on) and
a notifyd with ``NOTIFY_STORE_DRIVER=postgres`` on it (the default pool of
16 connections; notifyd applies the migrations on start), and counts rows
in the database itself for its sanity checks.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field

import asyncpg

from bench import h1, wrk
from bench.measurements import (
    NOTIFY_USERS,
    READER,
    TENANT,
    Figure,
    Report,
    Settings,
    cpu_line,
    load_get_notifications,
    with_server,
    wrk_figures,
)
from bench.pgcluster import Database, database
from bench.server import Notifyd, cpu_meter
from bench.stats import percentile
from notify.core.ids import new_id
from notify.core.model import Channel, Notification, Status
from notify.store import pgcolumns as columns
from notify.store.postgres import _INSERT as STORE_INSERT

FANOUT_USER = "fan-user-"
POOL_SIZE = 16  # notifyd's default NOTIFY_POSTGRES_MAX_CONNECTIONS
# The rows a late request may still be committing when wrk stops.
SETTLE_S = 0.3


# -- pg_notify: Notify throughput on PostgreSQL (wrk) --------------------------


def pg_notify(settings: Settings) -> Report:
    report = Report("pg_notify", "Notify on PostgreSQL (fsync on), Connect JSON / HTTP/1.1 (wrk)")
    with database() as db:
        report.details.append(db.describe())

        def body(server: Notifyd) -> None:
            url = server.internal_url
            tag = f"p{os.getpid()}-{int(time.time())}"
            common = {"connections": settings.connections, "threads": settings.wrk_threads}
            warm = wrk.notify_script(tag + "w", NOTIFY_USERS)
            wrk.run_wrk(server, url, warm, duration_s=settings.warmup_s, **common)
            time.sleep(SETTLE_S)
            rows_before = _rows(db)
            script = wrk.notify_script(tag, NOTIFY_USERS)
            with db.cpu_meter() as pg_cpu:
                result = wrk.run_wrk(server, url, script, duration_s=settings.duration_s, **common)
            time.sleep(SETTLE_S)
            rows = _rows(db) - rows_before
            report.figures += wrk_figures("Notify on PostgreSQL, Connect/HTTP1.1", result, 5000)
            report.details.append(
                f"{result.requests:,} requests in {result.duration_s:.1f} s, "
                f"{settings.connections} connections, {settings.wrk_threads} wrk thread(s), "
                f"1 user per call; p90 {result.p90_ms:.2f} ms, max {result.max_ms:.1f} ms"
            )
            report.details.append(
                cpu_line(report, result.server_cpu, "wrk", result.wrk_cpu_cores, pg_cpu)
            )
            report.details.append(_pool_line(server, settings))
            report.check(f"non-2xx responses: {result.errors_status}", result.errors_status == 0)
            report.check(f"socket errors: {result.errors_socket}", result.errors_socket == 0)
            report.check(
                f"every request stored a row in PostgreSQL: {rows:,} rows in the table for "
                f"{result.requests:,} completed requests (<= {settings.connections} more in "
                "flight)",
                result.requests <= rows <= result.requests + settings.connections,
            )
            # The same INSERT straight from asyncpg, without notifyd: PostgreSQL's own
            # ceiling on this machine, to tell which of the two set the figure above.
            seconds = max(2, settings.duration_s // 2)
            client_before = time.process_time()
            with db.cpu_meter() as pg_alone:
                inserts = asyncio.run(_insert_directly(db.dsn, seconds, tag + "d"))
            client_cores = (time.process_time() - client_before) / seconds
            report.figures.append(Figure("  same INSERT from asyncpg alone", inserts, "req/s"))
            report.details.append(
                f"PostgreSQL alone: the store's INSERT (one row, one transaction) from an asyncpg "
                f"pool of {POOL_SIZE} with {settings.connections} callers for {seconds} s, "
                f"notifyd idle: {inserts:,.0f} inserts/s; PostgreSQL {pg_alone[0][1]:.2f} cores, "
                f"this client {client_cores:.2f}"
            )

        return with_server(settings, report, body, env=db.env)


async def _insert_directly(dsn: str, seconds: float, tag: str) -> float:
    """Inserts/s of the PostgreSQL store's own INSERT, the way notifyd issues it."""
    pool = await asyncpg.create_pool(
        dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, statement_cache_size=256
    )
    assert pool is not None
    done = 0
    end = time.monotonic() + seconds

    async def caller(number: int) -> None:
        nonlocal done
        sequence = 0
        while time.monotonic() < end:
            sequence += 1
            created = time.time_ns() // 1_000_000
            row = Notification(
                id=new_id(created), tenant_id=TENANT, user_id=f"user-{sequence % NOTIFY_USERS}",
                notification_id=f"{tag}-{number}-{sequence}", channel=Channel.IN_APP,
                subject_ref="", subject_type="", title="Build finished", body="ok",
                status=Status.PENDING, created_at_ms=created,
            )  # fmt: skip
            async with pool.acquire() as conn:
                # Every column, as the store converts them (the table grew since).
                await conn.fetch(STORE_INSERT, *columns.to_arrays([row]))
            done += 1

    started = time.monotonic()
    try:
        await asyncio.gather(*(caller(number) for number in range(32)))
    finally:
        await pool.close()
    return done / (time.monotonic() - started)


def _rows(db: Database) -> int:
    return int(db.value("SELECT count(*) FROM notifications"))


def _pool_line(server: Notifyd, settings: Settings) -> str:
    size = _gauge(server.metrics_text(), 'notify_store_pool_connections{state="size"}')
    configured = settings.server_env.get("NOTIFY_POSTGRES_MAX_CONNECTIONS")
    limit = f"max {configured}" if configured else f"max {POOL_SIZE}, the default"
    return f"notifyd's asyncpg pool after the run: {size:.0f} connections ({limit})"


def _gauge(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


# -- pg_fanout: one Notify to 1,000 offline users ------------------------------


@dataclass(slots=True)
class FanoutCalls:
    times_ms: list[float] = field(default_factory=list)
    answers: list[dict[str, int]] = field(default_factory=list)


def pg_fanout(settings: Settings) -> Report:
    users, calls = settings.fanout_users, settings.fanout_calls
    report = Report(
        "pg_fanout",
        f"one Notify to {users:,} offline users (in-app) on PostgreSQL, {calls} calls",
    )
    with database() as db:
        report.details.append(db.describe())

        def body(server: Notifyd) -> None:
            tag = f"f{os.getpid()}-{int(time.time())}"
            asyncio.run(_fanout_calls(server, users, 1, tag + "-warm"))  # prepares statements
            rows_before = _rows(db)
            client_before = time.process_time()
            with db.cpu_meter() as pg_cpu, cpu_meter(server.pid) as server_cpu:
                result = asyncio.run(_fanout_calls(server, users, calls, tag))
            client_cores = (time.process_time() - client_before) / server_cpu.wall
            rows = _rows(db) - rows_before
            median_ms = statistics.median(result.times_ms)
            ordered = sorted(result.times_ms)
            report.figures += [
                Figure(
                    f"Notify to {users:,} users, PostgreSQL", median_ms, "ms", 100, at_least=False
                ),
                Figure("  rows stored per second", users / median_ms * 1000, "rows/s"),
            ]
            pg_cores = pg_cpu[0][1]
            report.details += [
                f"{calls} calls one after another, each with a new notificationId: min "
                f"{ordered[0]:.1f} ms, median {median_ms:.1f} ms, max {ordered[-1]:.1f} ms "
                f"(p90 {percentile(ordered, 90):.1f} ms)",
                f"per call: notifyd CPU {server_cpu.seconds / calls * 1000:.1f} ms, PostgreSQL "
                f"CPU {pg_cores * server_cpu.wall / calls * 1000:.1f} ms",
                cpu_line(report, server_cpu, "this client", client_cores, pg_cpu),
            ]
            wrong = [a for a in result.answers if a != {"pending": users}]
            report.check(
                f"every answer is pending={users}, delivered=0, failed=0 "
                f"({len(result.answers) - len(wrong)} of {len(result.answers)})",
                not wrong,
            )
            report.check(
                f"rows stored: {rows:,} (expected {users * calls:,})", rows == users * calls
            )
            counts = db.query(
                "SELECT count(*) AS users, min(unread) AS low, max(unread) AS high "
                "FROM unread_counts WHERE tenant_id = $1 AND user_id LIKE $2",
                TENANT,
                FANOUT_USER + "%",
            )[0]
            report.check(
                f"unread_counts: {counts['users']:,} users, each with {counts['low']}..."
                f"{counts['high']} unread (expected {users:,} users with {calls + 1})",
                counts["users"] == users and counts["low"] == counts["high"] == calls + 1,
            )

        return with_server(settings, report, body, env=db.env)


async def _fanout_calls(server: Notifyd, users: int, calls: int, tag: str) -> FanoutCalls:
    result = FanoutCalls()
    user_ids = [f"{FANOUT_USER}{number}" for number in range(users)]
    connection = await h1.Connection("127.0.0.1", server.ports.internal).connect()
    try:
        for call in range(calls):
            payload = {
                "tenantId": TENANT,
                "notificationId": f"{tag}-{call}",
                "userIds": user_ids,
                "channels": ["DELIVERY_CHANNEL_IN_APP"],
                "title": "Deploy finished",
                "body": "The release you follow is live.",
            }
            started = time.perf_counter()
            response = await connection.post_json(wrk.NOTIFY_PATH, payload, {})
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise RuntimeError(f"Notify answered {response.status}: {response.body[:200]!r}")
            result.times_ms.append(elapsed * 1000)
            answer = response.json()
            result.answers.append({key: value for key, value in answer.items() if value})
            await asyncio.sleep(0.05)  # calls one after another, not back to back
    finally:
        await connection.close()
    return result


# -- pg_get_notifications: a 100,000-row inbox ---------------------------------

# The real schema's columns, filled the way Notify fills them: UUIDv7-shaped ids
# (48 bits of milliseconds first), one millisecond apart, all PENDING (unread).
# The statement-level trigger adds them to unread_counts in one go.
_SEED = """
INSERT INTO notifications (id, tenant_id, user_id, notification_id, channel, subject_ref,
                           subject_type, title, body, status, created_at_ms)
SELECT (lpad(to_hex($3::bigint + i), 12, '0') || '7' || substr(h, 1, 3) || '8'
        || substr(h, 4, 15))::uuid,
       $1, $2, 'seed-' || i, 1, 'task:' || i, 'task', 'Seeded notification ' || i,
       'A body of a realistic length for an in-app notification.', 1, $3::bigint + i
FROM generate_series(1, $4::int) AS i, LATERAL md5(i::text) AS h
"""


def pg_get_notifications(settings: Settings) -> Report:
    rows = settings.pg_seed_rows
    report = Report(
        "pg_get_notifications",
        f"GetNotifications on PostgreSQL, {rows:,}-row inbox, Connect JSON / HTTP/1.1 (wrk)",
    )
    with database() as db:
        report.details.append(db.describe())

        def body(server: Notifyd) -> None:
            # notifyd has applied the migrations by now; seed straight into its tables.
            started = time.perf_counter()
            oldest_ms = time.time_ns() // 1_000_000 - rows - 60_000
            db.execute(_SEED, TENANT, READER, oldest_ms, rows)
            db.execute("VACUUM (ANALYZE) notifications")  # what autovacuum does to a table at rest
            seeded_s = time.perf_counter() - started
            load_get_notifications(
                server,
                settings,
                report,
                rows=rows,
                seeded_s=seeded_s,
                target=3000,
                label=f"GetNotifications, PostgreSQL, {rows:,} rows",
                newest_id=f"seed-{rows}",
                meter=db.cpu_meter,
            )

        return with_server(settings, report, body, env=db.env)
