"""NOTIFY_WORKERS: one notifyd, N serving processes on the same ports.

Real processes over real sockets on a real PostgreSQL: two workers share the
three ports (the kernel spreads new connections over them), a Notify taken
by one reaches streams on the other, a SIGKILLed worker is started again and
serves, SIGTERM drains both and exits 0, the workers die with the
supervisor, and the supervisor's /metrics totals equal the calls made.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from notify.config import ConfigError, cpu_count, load_config, parse_workers
from notify.workermetrics import MetricsMerger, exposition, parse
from notify.workers import RestartPolicy
from tests.e2e.test_process import Notifyd, drain, run_config_error
from tests.pg import PostgresCluster
from tests.support import CLIENT_SVC, INTERNAL_SVC, ConnectStream, EndOfStream, dev_auth, eventually

TIMEOUT = 30.0
NOTIFY = f"{INTERNAL_SVC}/Notify"
MAX_TRIES = 200  # new connections tried before giving up on reaching every worker


@pytest.fixture
def dsn(pg_database: tuple[PostgresCluster, str]) -> str:
    cluster, name = pg_database
    return cluster.dsn(name)


class Service:
    """``notifyd`` with NOTIFY_WORKERS=2: the supervisor's ports and each worker's."""

    def __init__(self, dsn: str, **env: str) -> None:
        self.process = Notifyd(
            NOTIFY_WORKERS="2",
            NOTIFY_STORE_DRIVER="postgres",
            NOTIFY_POSTGRES_DSN=dsn,
            NOTIFY_SHUTDOWN_TIMEOUT="5s",
            NOTIFY_LIVE_HEARTBEAT_INTERVAL="1h",
            NOTIFY_BUS_REPLY_WAIT="2s",
            NOTIFY_RATE_LIMIT_PRODUCER="off",
            NOTIFY_RATE_LIMIT_CLIENT="off",
            NOTIFY_RATE_LIMIT_RECIPIENTS="off",
            **env,
        )
        started = self.process.wait_for_log("notify started", timeout=TIMEOUT)
        self.started = started
        self.client = f"http://127.0.0.1:{started['client_port']}"
        self.internal = f"http://127.0.0.1:{started['internal_port']}"
        self.metrics = f"http://127.0.0.1:{started['metrics_port']}"
        # Workers buffer their info lines for up to 200 ms; the supervisor writes at once.
        eventually(lambda: len(self.workers()) == 2, TIMEOUT, "both workers' start lines")

    def workers(self) -> dict[int, dict[str, Any]]:
        """The newest "notify worker started" line of each worker index."""
        newest: dict[int, dict[str, Any]] = {}
        for line in list(self.process.log):
            entry = json.loads(line)
            if entry.get("msg") == "notify worker started":
                newest[entry["worker"]] = entry
        return newest

    def worker_metric(self, index: int, name: str, **labels: str) -> float:
        port = self.workers()[index]["metrics_port"]
        return total(httpx.get(f"http://127.0.0.1:{port}/metrics").text, name, **labels)

    def metric(self, name: str, **labels: str) -> float:
        return total(httpx.get(f"{self.metrics}/metrics").text, name, **labels)

    def notify(self, notification_id: str, user: str = "alice") -> dict[str, Any]:
        """One Notify on a new connection (so the kernel picks a worker afresh)."""
        response = httpx.post(
            f"{self.internal}{NOTIFY}",
            json={
                "tenantId": "acme",
                "notificationId": notification_id,
                "userIds": [user],
                "channels": ["DELIVERY_CHANNEL_IN_APP"],
                "title": notification_id,
            },
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def notify_until_every_worker_served(self, prefix: str, user: str = "alice") -> list[str]:
        """Notifies on new connections until each worker took at least one; their ids."""
        sent: list[str] = []
        while not all(self.worker_metric(i, "notify_rpc_requests_total", **OK_NOTIFY) > 0
                      for i in self.workers()):  # fmt: skip
            assert len(sent) < MAX_TRIES, "the kernel never picked one of the workers"
            sent.append(f"{prefix}-{len(sent)}")
            self.notify(sent[-1], user)
        return sent

    def stop(self) -> None:
        if self.process.proc.poll() is None:
            self.process.proc.send_signal(signal.SIGTERM)
            self.process.proc.wait(timeout=TIMEOUT)
        self.process.stop()


OK_NOTIFY = {"procedure": NOTIFY, "code": "ok"}


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def service(dsn: str) -> Iterator[Service]:
    running = Service(dsn)
    yield running
    running.stop()


def gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by init counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class Streams:
    """Streams of one user, each on its own connection, until both workers hold some."""

    def __init__(self, service: Service, user: str = "alice") -> None:
        self.clients: list[httpx.Client] = []
        self.streams: list[ConnectStream] = []
        while not all(service.worker_metric(i, "notify_streams_open") > 0
                      for i in service.workers()):  # fmt: skip
            assert len(self.streams) < MAX_TRIES, "the kernel never picked one of the workers"
            client = httpx.Client(timeout=TIMEOUT)
            self.clients.append(client)
            stream = ConnectStream(
                client, f"{service.client}{CLIENT_SVC}/StreamEvents", dev_auth(user, "acme"), {}
            )
            self.streams.append(stream)
            stream.next()  # the handshake: the session is open on its worker

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        for client in self.clients:
            client.close()


def test_two_workers_serve_all_three_ports_and_metrics_add_up(service: Service) -> None:
    workers = service.workers()
    assert sorted(workers) == [0, 1]
    assert len({w["pid"] for w in workers.values()}) == 2
    assert all(w["client_port"] == service.started["client_port"] for w in workers.values())
    assert service.started["workers"] == 2
    # The supervisor alone says "notify started"; the workers say "notify worker started".
    starts = [json.loads(line) for line in service.process.log]
    assert [e for e in starts if e.get("msg") == "notify started"] == [service.started]

    assert httpx.get(f"{service.metrics}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service.metrics}/readyz").json() == {"status": "ready"}
    sent = service.notify_until_every_worker_served("m")

    # Each worker counted some of the calls; the supervisor's /metrics has them all, once.
    per_worker = [service.worker_metric(i, "notify_rpc_requests_total", **OK_NOTIFY)
                  for i in (0, 1)]  # fmt: skip
    assert all(count > 0 for count in per_worker)
    assert sum(per_worker) == len(sent)
    text = httpx.get(f"{service.metrics}/metrics").text
    assert total(text, "notify_rpc_requests_total", **OK_NOTIFY) == len(sent)
    assert total(text, "notify_rpc_duration_seconds_count", **OK_NOTIFY) == len(sent)
    assert total(text, "notify_notifications_stored_total", status="pending") \
        == len(sent)  # fmt: skip
    assert total(text, "notify_build_info") == 1  # one service, not one per worker
    assert total(text, "notify_bus_connected") == 1
    assert total(text, "notify_workers") == 2
    assert total(text, "notify_workers_running") == 2
    assert total(text, "notify_store_pool_connections", state="size") >= 2  # both pools

    # The client port: every row is there, whichever worker stored it and serves the page.
    page = httpx.post(
        f"{service.client}{CLIENT_SVC}/GetNotifications",
        headers=dev_auth("alice", "acme"),
        json={"limit": 100},
    ).json()
    assert sorted(n["notificationId"] for n in page["notifications"]) == sorted(sent)


def test_notify_through_either_worker_reaches_streams_on_both(service: Service) -> None:
    streams = Streams(service)
    try:
        assert service.metric("notify_streams_open") == len(streams.streams)
        sent: list[str] = []
        while not all(service.worker_metric(i, "notify_rpc_requests_total", **OK_NOTIFY) > 0
                      for i in (0, 1)):  # fmt: skip
            assert len(sent) < MAX_TRIES
            sent.append(f"x-{len(sent)}")
            answer = service.notify(sent[-1])
            assert answer.get("delivered") == 1, answer  # one row, live on some stream
        for stream in streams.streams:
            got = [stream.next()["notification"]["notification"]["notificationId"]
                   for _ in sent]  # fmt: skip
            assert sorted(got) == sorted(sent)  # each exactly once, on every stream
    finally:
        streams.close()


def test_a_killed_worker_is_started_again_and_serves(service: Service) -> None:
    before = service.notify_until_every_worker_served("before")
    assert service.metric("notify_rpc_requests_total", **OK_NOTIFY) == len(before)
    victim = service.workers()[0]
    os.kill(victim["pid"], signal.SIGKILL)

    eventually(lambda: service.workers()[0]["pid"] != victim["pid"], TIMEOUT, "a new worker 0")
    eventually(
        lambda: httpx.get(f"{service.metrics}/readyz").status_code == 200, TIMEOUT, "ready again"
    )
    service.process.wait_for_log("worker restarted", timeout=TIMEOUT)
    after = service.notify_until_every_worker_served("after")
    assert service.worker_metric(0, "notify_rpc_requests_total", **OK_NOTIFY) > 0
    # The dead worker's counts stay in the totals: counters never go backwards.
    assert service.metric("notify_rpc_requests_total", **OK_NOTIFY) == len(before) + len(after)
    assert service.metric("notify_worker_restarts_total") == 1
    assert service.metric("notify_workers_running") == 2


def test_sigterm_drains_both_workers_and_exits_0(service: Service) -> None:
    streams = Streams(service)
    pids = [w["pid"] for w in service.workers().values()]
    service.process.proc.send_signal(signal.SIGTERM)
    try:
        for stream in streams.streams:
            with pytest.raises(EndOfStream) as ended:
                drain(stream.next)
            assert ended.value.code == "unavailable"  # clients reconnect elsewhere
        assert service.process.proc.wait(timeout=5 + 5) == 0  # within the shutdown timeout
    finally:
        streams.close()
    assert all(gone(pid) for pid in pids)
    assert service.process.wait_for_log("notify stopped")["clean"] is True
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", service.started["client_port"]), 2).close()


def test_workers_die_with_the_supervisor(service: Service) -> None:
    pids = [w["pid"] for w in service.workers().values()]
    service.process.proc.kill()
    service.process.proc.wait(timeout=TIMEOUT)
    eventually(lambda: all(gone(pid) for pid in pids), TIMEOUT, "workers gone")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", service.started["internal_port"]), 2).close()


def test_a_worker_that_cannot_start_fails_the_start_with_exit_1() -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there: the database is unreachable
    process = Notifyd(
        NOTIFY_WORKERS="2",
        NOTIFY_STORE_DRIVER="postgres",
        NOTIFY_POSTGRES_DSN=f"postgresql://notify@127.0.0.1:{port}/notify",
        NOTIFY_POSTGRES_CONNECT_TIMEOUT="500ms",
    )
    try:
        assert process.proc.wait(timeout=TIMEOUT) == 1
    finally:
        process.stop()
    # The worker's own one line says why; the supervisor says which worker stopped the start.
    assert any(line.startswith("notifyd: cannot reach PostgreSQL") for line in process.log)
    entries = [json.loads(line) for line in process.log if line.startswith("{")]
    assert any(e["msg"] == "worker exited while starting" for e in entries)
    assert not any(e["msg"] == "notify started" for e in entries)


@pytest.mark.parametrize("variable", ["NOTIFY_INTERNAL_PORT", "NOTIFY_METRICS_PORT"])
def test_a_port_in_use_is_one_line_exit_1(variable: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"NOTIFY_CLIENT_PORT": "0", "NOTIFY_INTERNAL_PORT": "0",
                 "NOTIFY_METRICS_PORT": "0", variable: str(port)}  # fmt: skip
        result = run_config_error(
            NOTIFY_AUTH_DEV_MODE="true", NOTIFY_WORKERS="2", NOTIFY_STORE_DRIVER="postgres",
            NOTIFY_POSTGRES_DSN="postgresql://notify@127.0.0.1:1/notify", **ports,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"notifyd: cannot listen on 127.0.0.1:{port} ({variable}): the port is already in use"
    ]


def test_memory_store_with_several_workers_is_one_line_naming_both_variables() -> None:
    result = run_config_error(NOTIFY_AUTH_DEV_MODE="true", NOTIFY_WORKERS="2")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "NOTIFY_WORKERS" in lines[0]
    assert "NOTIFY_STORE_DRIVER" in lines[0]


@pytest.mark.parametrize("value", ["0", "65", "two", "-1", "1.5"])
def test_workers_must_be_a_count_from_1_to_64_or_auto(value: str) -> None:
    with pytest.raises(ConfigError, match="NOTIFY_WORKERS"):
        load_config({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_WORKERS": value})


def test_auto_is_the_cpu_count() -> None:
    assert cpu_count() == len(os.sched_getaffinity(0))
    assert parse_workers("auto") == parse_workers(" AUTO ") == min(cpu_count(), 64)
    config = load_config({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_WORKERS": "auto",
                          "NOTIFY_STORE_DRIVER": "postgres",
                          "NOTIFY_POSTGRES_DSN": "postgresql://h/db"})  # fmt: skip
    assert config.workers == min(cpu_count(), 64)
    assert load_config({"NOTIFY_AUTH_DEV_MODE": "true"}).workers == 1


def test_the_memory_bus_cannot_join_workers() -> None:
    with pytest.raises(ConfigError, match=r"NOTIFY_WORKERS.*NOTIFY_BUS"):
        load_config({"NOTIFY_AUTH_DEV_MODE": "true", "NOTIFY_WORKERS": "2",
                     "NOTIFY_STORE_DRIVER": "postgres", "NOTIFY_POSTGRES_DSN": "postgresql://h/d",
                     "NOTIFY_BUS": "memory"})  # fmt: skip


def test_restarts_back_off_and_a_crash_loop_gives_up() -> None:
    now = [0.0]
    policy = RestartPolicy(lambda: now[0], window=60, max_restarts=3, first_delay=0.5,
                           max_delay=1.5)  # fmt: skip
    delays = []
    for at in (0.0, 10.0, 20.0):
        now[0] = at
        delays.append(policy.next_delay())
    assert delays == [0.5, 1.0, 1.5]  # doubling, capped
    now[0] = 59.0
    assert policy.next_delay() is None  # a fourth within the minute: crash loop
    now[0] = 60.0  # the first restart has left the window; two are still in it
    assert policy.next_delay() == 1.5
    now[0] = 200.0  # quiet for a while: back to the first delay
    assert policy.next_delay() == 0.5


WORKER_A = """\
# TYPE notify_rpc_requests_total counter
notify_rpc_requests_total{code="ok"} 3.0
# TYPE notify_streams_open gauge
notify_streams_open{device_type="browser"} 2.0
# TYPE notify_build_info gauge
notify_build_info{driver="postgres",version="0.1.0"} 1.0
# TYPE notify_outbox_entries gauge
notify_outbox_entries{channel="email"} 7.0
# TYPE notify_bus_connected gauge
notify_bus_connected 1.0
# TYPE notify_delivery_latency_seconds histogram
notify_delivery_latency_seconds_bucket{le="0.01"} 1.0
notify_delivery_latency_seconds_bucket{le="+Inf"} 2.0
notify_delivery_latency_seconds_count 2.0
notify_delivery_latency_seconds_sum 0.5
"""
WORKER_B = """\
# TYPE notify_rpc_requests_total counter
notify_rpc_requests_total{code="ok"} 4.0
notify_rpc_requests_total{code="invalid_argument"} 1.0
# TYPE notify_streams_open gauge
notify_streams_open{device_type="browser"} 1.0
# TYPE notify_build_info gauge
notify_build_info{driver="postgres",version="0.1.0"} 1.0
# TYPE notify_outbox_entries gauge
notify_outbox_entries{channel="email"} 7.0
# TYPE notify_bus_connected gauge
notify_bus_connected 0.0
# TYPE notify_delivery_latency_seconds histogram
notify_delivery_latency_seconds_bucket{le="0.01"} 0.0
notify_delivery_latency_seconds_bucket{le="+Inf"} 1.0
notify_delivery_latency_seconds_count 1.0
notify_delivery_latency_seconds_sum 0.25
"""


def test_merge_adds_counts_but_not_service_wide_gauges() -> None:
    merger = MetricsMerger()
    a, b = parse(WORKER_A), parse(WORKER_B)
    merger.observed(1, a)
    merger.observed(2, b)
    text = exposition(merger.merged([a, b])).decode()
    assert total(text, "notify_rpc_requests_total", code="ok") == 7
    assert total(text, "notify_rpc_requests_total", code="invalid_argument") == 1  # kept
    assert total(text, "notify_streams_open") == 3
    assert total(text, "notify_build_info") == 1
    assert total(text, "notify_outbox_entries", channel="email") == 7  # one shared table
    assert total(text, "notify_bus_connected") == 0  # one worker is off the bus
    assert total(text, "notify_delivery_latency_seconds_bucket", le="0.01") == 1
    assert total(text, "notify_delivery_latency_seconds_bucket", le="+Inf") == 3
    assert total(text, "notify_delivery_latency_seconds_sum") == 0.75

    # Worker 2 exits: its counts stay, its gauges go; a restarted worker starts at 0.
    merger.retire(2)
    text = exposition(merger.merged([a])).decode()
    assert total(text, "notify_rpc_requests_total", code="ok") == 7
    assert total(text, "notify_rpc_requests_total", code="invalid_argument") == 1
    assert total(text, "notify_delivery_latency_seconds_count") == 3
    assert total(text, "notify_streams_open") == 2
    assert total(text, "notify_bus_connected") == 1
