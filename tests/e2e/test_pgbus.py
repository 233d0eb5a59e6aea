"""PgBus between two in-process replicas on a real PostgreSQL: the edges.

A bus connection that drops and cannot come back at once (the database
refuses new connections meanwhile): /readyz says so, and once it is back its
streams get what they missed, once. A fan-out far beyond NOTIFY's 8,000
bytes crosses replicas. A Notify to users nobody watches never waits.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from tests.pg import PostgresCluster
from tests.support import ConnectStream, ServerThread, dev_auth, eventually, postgres_replica


async def sql(dsn: str, statement: str, *args: object) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


def watched_by(cluster: PostgresCluster, name: str, user: str) -> set[str]:
    async def read() -> set[str]:
        conn = await asyncpg.connect(cluster.dsn(name))
        try:
            rows = await conn.fetch(
                "SELECT replica_id FROM notify_presence WHERE user_id = $1", user
            )
        finally:
            await conn.close()
        return {r["replica_id"] for r in rows}

    return asyncio.run(read())


def replica_id(server: ServerThread) -> str:
    assert server.server is not None
    return server.server.bus.replica_id


def notify(http: httpx.Client, server: ServerThread, name: str, *users: str) -> dict[str, int]:
    response = http.post(
        server.internal_url(),
        json={"tenantId": "acme", "notificationId": name, "userIds": list(users or ["alice"]),
              "channels": ["DELIVERY_CHANNEL_IN_APP"], "title": name},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def next_notification(stream: ConnectStream) -> str:
    while "notification" not in (event := stream.next()):
        pass
    return str(event["notification"]["notification"]["notificationId"])


def metric(http: httpx.Client, server: ServerThread, name: str) -> float:
    for line in http.get(server.metrics_url("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(name)


def test_a_bus_drop_is_reported_then_caught_up_once(
    pg_database: tuple[PostgresCluster, str],
) -> None:
    cluster, name = pg_database
    a = postgres_replica(cluster, name, bus_reply_wait=0.2)
    b = postgres_replica(cluster, name, bus_reply_wait=0.2)
    http = httpx.Client(timeout=20)
    stream = ConnectStream(http, a.client_url("StreamEvents"), dev_auth("alice", "acme"), {})
    admin = cluster.dsn("postgres")
    try:
        stream.next()
        eventually(lambda: replica_id(a) in watched_by(cluster, name, "alice"), what="presence")
        assert notify(http, b, "before")["delivered"] == 1
        assert next_notification(stream) == "before"
        assert metric(http, a, "notify_bus_connected") == 1

        # The listener is killed and may not come back until the database allows it.
        asyncio.run(sql(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        killed = asyncio.run(
            sql(
                admin,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                f"notify-bus-{replica_id(a)}",
            )
        )
        assert killed == 1
        eventually(lambda: http.get(a.metrics_url("/readyz")).status_code == 503, what="not ready")
        assert "bus" in http.get(a.metrics_url("/readyz")).json()["reason"]
        assert metric(http, a, "notify_bus_connected") == 0
        # Stored while nobody on replica a could hear: not delivered yet.
        assert notify(http, b, "missed-1") == {"delivered": 0, "pending": 1, "failed": 0}
        assert notify(http, b, "missed-2")["pending"] == 1

        asyncio.run(sql(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        assert next_notification(stream) == "missed-1"
        assert next_notification(stream) == "missed-2"
        eventually(lambda: http.get(a.metrics_url("/readyz")).status_code == 200, what="ready")
        assert notify(http, b, "after")["delivered"] == 1
        assert next_notification(stream) == "after"  # nothing twice in between
        assert metric(http, a, "notify_bus_reconnects_total") == 1
        assert metric(http, a, "notify_bus_catch_ups_total") == 1
        assert metric(http, a, "notify_bus_caught_up_rows_total") == 2
        page = http.post(a.client_url("GetNotifications"), headers=dev_auth("alice", "acme"),
                         json={}).json()  # fmt: skip
        statuses = {n["notificationId"]: n["status"] for n in page["notifications"]}
        assert statuses["missed-1"] == statuses["missed-2"] == "DELIVERY_STATUS_DELIVERED"
    finally:
        asyncio.run(sql(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        stream.close()
        http.close()
        a.stop()
        b.stop()


def test_a_fan_out_beyond_one_notify_payload_crosses_replicas(
    pg_database: tuple[PostgresCluster, str],
) -> None:
    cluster, name = pg_database
    a = postgres_replica(cluster, name)
    b = postgres_replica(cluster, name)
    http = httpx.Client(timeout=20)
    users = [f"user-{i:04d}-{'x' * 40}" for i in range(600)]
    streams = [
        ConnectStream(http, a.client_url("StreamEvents"), dev_auth(user, "acme"), {})
        for user in (users[0], users[-1])
    ]
    try:
        for stream in streams:
            stream.next()
        for user in (users[0], users[-1]):
            eventually(lambda u=user: bool(watched_by(cluster, name, u)), what="presence")
        assert notify(http, b, "wide", *users) == {"delivered": 2, "pending": 598, "failed": 0}
        for stream in streams:
            assert next_notification(stream) == "wide"
    finally:
        for stream in streams:
            stream.close()
        http.close()
        a.stop()
        b.stop()


def test_a_notify_to_users_nobody_watches_does_not_wait(
    pg_database: tuple[PostgresCluster, str],
) -> None:
    cluster, name = pg_database
    a = postgres_replica(cluster, name, bus_reply_wait=5.0)
    http = httpx.Client(timeout=20)
    try:
        began = time.monotonic()
        for index in range(5):
            assert notify(http, a, f"quiet-{index}", "nobody")["pending"] == 1
        assert time.monotonic() - began < 2.5  # five waits of the 5 s bound would be 25 s
    finally:
        http.close()
        a.stop()
