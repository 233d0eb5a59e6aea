"""PostgreSQL failures: unreachable at start, gone while running, a crash of notifyd."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.test_process import Notifyd, run_config_error
from tests.pg import PostgresCluster, free_port
from tests.support import ConnectStream, dev_auth, eventually, notify_body, running_server


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own: these tests stop and start it."""
    own = PostgresCluster()
    own.start()
    own.create_database()
    yield own
    own.destroy()


def count_rows(dsn: str, tenant: str) -> dict[str, int]:
    async def query() -> dict[str, int]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT notification_id, count(*) FROM notifications"
                " WHERE tenant_id = $1 GROUP BY 1",
                tenant,
            )
            return {r[0]: r[1] for r in rows}
        finally:
            await conn.close()

    return asyncio.run(query())


def test_unreachable_at_start_is_one_line_and_exit_1() -> None:
    dsn = f"postgresql://notify:s3cret-password@127.0.0.1:{free_port()}/notify"
    started = time.monotonic()
    result = run_config_error(
        NOTIFY_AUTH_DEV_MODE="true",
        NOTIFY_STORE_DRIVER="postgres",
        NOTIFY_POSTGRES_DSN=dsn,
        NOTIFY_POSTGRES_CONNECT_TIMEOUT="1s",
        NOTIFY_LOG_LEVEL="error",
    )
    assert result.returncode == 1
    assert time.monotonic() - started < 20
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("notifyd: cannot reach PostgreSQL after 1s")
    assert "s3cret-password" not in result.stderr


def test_migrate_command(cluster: PostgresCluster) -> None:
    env = {
        "NOTIFY_AUTH_DEV_MODE": "true",
        "NOTIFY_STORE_DRIVER": "postgres",
        "NOTIFY_POSTGRES_DSN": cluster.dsn(),
    }
    notifyd = str(Path(sys.executable).with_name("notifyd"))
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}, **env}
    first = subprocess.run(
        [notifyd, "migrate"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    assert "applied 0001_notifications, 0002_unread_trigger_without_join" in first.stdout
    second = subprocess.run(
        [notifyd, "migrate"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 0
    assert "nothing (up to date)" in second.stdout


def test_database_restart_under_load(cluster: PostgresCluster) -> None:
    """Stopped: UNAVAILABLE fast, not ready, streams stay open. Back: recovers by itself."""
    http = httpx.Client(timeout=10)
    with running_server(
        store_driver="postgres", postgres_dsn=cluster.dsn(), live_heartbeat_interval=0.1
    ) as server:
        stream = ConnectStream(http, server.client_url("StreamEvents"), dev_auth(), {})
        stream.next()
        ok: list[str] = []
        failed: list[str] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=10) as producer:
                i = 0
                while not stop.is_set() and i < 50_000:
                    notification_id = f"load-{i}"
                    response = producer.post(
                        server.internal_url(),
                        headers={"Connect-Timeout-Ms": "3000"},
                        json=notify_body(notification_id, "user-load"),
                    )
                    (ok if response.status_code == 200 else failed).append(notification_id)
                    if response.status_code != 200:
                        assert response.json()["code"] in ("unavailable", "deadline_exceeded")
                    i += 1

        producer = threading.Thread(target=load)
        producer.start()
        try:
            eventually(lambda: len(ok) >= 20, what="some load before the stop")
            cluster.stop("fast")
            started = time.monotonic()
            down = http.post(server.internal_url(), json=notify_body("while-down"))
            assert time.monotonic() - started < 5
            assert down.status_code == 503
            assert down.json() == {
                "code": "unavailable",
                "message": "the notification store is unavailable; retry shortly",
            }
            page = http.post(server.client_url("GetNotifications"), headers=dev_auth(), json={})
            assert page.json()["code"] == "unavailable"
            ready = http.get(server.metrics_url("/readyz"))
            assert ready.status_code == 503
            assert "unavailable" in ready.json()["reason"]
            # The stream stays open: heartbeats keep coming while the database is away.
            assert "heartbeat" in stream.next()
            assert "heartbeat" in stream.next()
            cluster.start()
            eventually(
                lambda: http.get(server.metrics_url("/readyz")).status_code == 200,
                timeout=30,
                what="readiness",
            )
            ok_before = len(ok)
            back = http.post(server.internal_url(), json=notify_body("after-restart"))
            assert back.json() == {"delivered": 1, "pending": 0, "failed": 0}
            while "notification" not in (event := stream.next()):
                pass
            assert event["notification"]["notification"]["notificationId"] == "after-restart"
            eventually(lambda: len(ok) >= ok_before + 20, timeout=30, what="load to resume")
        finally:
            stop.set()
            producer.join(timeout=30)
            stream.close()
        assert failed, "the stop should have failed some calls"
        stored = count_rows(cluster.dsn(), "acme")
        # Every call answered OK is stored exactly once; nothing appears from nowhere.
        assert all(stored.get(n) == 1 for n in ok)
        assert set(stored) <= {*ok, *failed, "after-restart"}
        assert all(count == 1 for count in stored.values())
    http.close()


def test_sigkill_loses_no_acknowledged_notify(cluster: PostgresCluster) -> None:
    env = {
        "NOTIFY_STORE_DRIVER": "postgres",
        "NOTIFY_POSTGRES_DSN": cluster.dsn(),
    }
    process = Notifyd(**env)
    acknowledged: list[str] = []
    attempted: list[str] = []
    lock = threading.Lock()
    try:
        started = process.wait_for_log("notify started")
        url = f"http://127.0.0.1:{started['internal_port']}/elloloop.notify.v1.NotificationInternalService/Notify"

        def producer(worker: int) -> None:
            with httpx.Client(timeout=10) as client:
                for i in range(100_000):
                    notification_id = f"crash-{worker}-{i}"
                    with lock:
                        attempted.append(notification_id)
                    try:
                        response = client.post(
                            url,
                            json=notify_body(
                                notification_id, f"user-{worker}", f"user-{worker + 1}"
                            ),
                        )
                    except httpx.HTTPError:
                        return  # the server died mid-call: no answer, no promise
                    if response.status_code == 200:
                        with lock:
                            acknowledged.append(notification_id)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(producer, w) for w in range(8)]
            eventually(lambda: len(acknowledged) >= 300, timeout=60, what="acknowledged calls")
            process.proc.send_signal(signal.SIGKILL)
            for future in futures:
                future.result(timeout=60)
    finally:
        process.stop()
    # Restart on the same database: everything acknowledged is there exactly once.
    restarted = Notifyd(**env)
    try:
        restarted.wait_for_log("notify started")
        stored = count_rows(cluster.dsn(), "acme")
    finally:
        restarted.proc.send_signal(signal.SIGTERM)
        restarted.proc.wait(timeout=15)
        restarted.stop()
    # Each Notify names two users: two rows, each stored once.
    assert all(stored.get(n) == 2 for n in acknowledged), "an acknowledged Notify was lost"
    assert set(stored) <= set(attempted)
    assert len(acknowledged) >= 300
