"""Delivery survives crashes and shares work, with real notifyd processes on one PostgreSQL:
SIGKILL in the middle of 1,000 slow emails loses none (each Message-ID arrives once, at
most twice for the sends in flight at the kill), and two processes deliver 1,000 emails
without sending any twice."""

from __future__ import annotations

import asyncio
import collections
import signal
from typing import Any

import asyncpg
import httpx
import pytest

from tests.delivery_support import SmtpSink, smtp_server
from tests.e2e.test_process import Notifyd
from tests.pg import PostgresCluster
from tests.support import INTERNAL_SVC

COUNT = 1000


@pytest.fixture
def dsn(pg_database: tuple[PostgresCluster, str]) -> str:
    cluster, name = pg_database
    return cluster.dsn(name)


def settings(dsn: str, port: int, sender: str = "notify@example.com") -> dict[str, str]:
    return {
        "NOTIFY_STORE_DRIVER": "postgres",
        "NOTIFY_POSTGRES_DSN": dsn,
        "NOTIFY_SHUTDOWN_TIMEOUT": "10s",
        "NOTIFY_RATE_LIMIT_PRODUCER": "off",
        "NOTIFY_RATE_LIMIT_RECIPIENTS": "off",
        "NOTIFY_EMAIL_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "NOTIFY_EMAIL_FROM": sender,
        # A killed process's claims are free again soon after.
        "NOTIFY_DELIVERY_LEASE": "2s",
    }


async def start(**env: str) -> tuple[Notifyd, str]:
    process = Notifyd(**env)
    started = await asyncio.to_thread(process.wait_for_log, "notify started")
    return process, f"http://127.0.0.1:{started['internal_port']}{INTERNAL_SVC}/Notify"


async def stop(process: Notifyd) -> None:
    """SIGTERM: in-flight sends finish and are recorded before the process exits."""
    process.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.proc.wait, 30) == 0
    await asyncio.to_thread(process.stop)


async def notify_many(url: str, notification_id: str) -> None:
    users = [f"user-{i:04d}" for i in range(COUNT)]
    body: dict[str, Any] = {
        "tenantId": "acme",
        "notificationId": notification_id,
        "userIds": users,
        "channels": ["DELIVERY_CHANNEL_EMAIL"],
        "title": "Weekly digest",
        "addresses": {u: {"byChannel": {"email": f"{u}@example.com"}} for u in users},
    }
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(url, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["pending"] == COUNT


async def delivered_rows(dsn: str) -> tuple[set[str], int]:
    conn = await asyncpg.connect(dsn)
    try:
        ids = {str(r[0]) for r in await conn.fetch(
            "SELECT id FROM notifications WHERE channel = 2 AND status = 2"
        )}  # fmt: skip
        queued = await conn.fetchval("SELECT count(*) FROM notify_outbox")
    finally:
        await conn.close()
    return ids, int(queued)


async def test_sigkill_mid_send_loses_nothing(dsn: str) -> None:
    sink = SmtpSink(delay=0.005)
    async with smtp_server(sink, auth=False):
        first, url = await start(**settings(dsn, sink.port))
        try:
            await notify_many(url, "digest-1")
            await sink.wait_unique(100)
            first.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.proc.wait, 10)
        finally:
            await asyncio.to_thread(first.stop)
        seen_at_kill = len(set(sink.message_ids()))
        assert seen_at_kill < COUNT  # killed in the middle, not after the end
        second, _ = await start(**settings(dsn, sink.port))
        try:
            await sink.wait_unique(COUNT)
        finally:
            await stop(second)
    ids, queued = await delivered_rows(dsn)
    assert len(ids) == COUNT
    assert queued == 0
    seen = collections.Counter(sink.message_ids())
    assert set(seen) == {f"<{row_id}@example.com>" for row_id in ids}
    assert max(seen.values()) <= 2
    resent = sum(1 for n in seen.values() if n == 2)
    print(f"\nkilled after {seen_at_kill} emails; {resent} sent twice after the restart")


async def test_two_processes_never_send_one_entry_twice(dsn: str) -> None:
    sink = SmtpSink(delay=0.01)
    async with smtp_server(sink, auth=False):
        a, url = await start(**settings(dsn, sink.port, "a@example.com"))
        b, _ = await start(**settings(dsn, sink.port, "b@example.com"))
        try:
            await notify_many(url, "digest-2")
            await sink.wait_unique(COUNT)
        finally:
            await stop(a)
            await stop(b)
    ids, queued = await delivered_rows(dsn)
    assert (len(ids), queued) == (COUNT, 0)
    assert len(sink.messages) == COUNT  # each Message-ID exactly once
    by_sender = collections.Counter(str(m["From"]) for m in sink.messages)
    assert set(by_sender) == {"a@example.com", "b@example.com"}  # both took a share
    print(f"\nshares: {dict(by_sender)}")
