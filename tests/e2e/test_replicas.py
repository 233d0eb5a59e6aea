"""Many replicas, one truth: three real notifyd processes on one real PostgreSQL.

Every stream of a user, on every replica, gets every notification exactly
once, whichever replica took the Notify; delivery is reported across
replicas; data-change hints and acks cross them; a replica whose bus
connection is killed catches its streams up; a killed replica's clients
resume elsewhere and miss nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from elloloop.notify.v1 import notify_pb2_grpc

from tests.e2e.test_process import Notifyd
from tests.pg import PostgresCluster
from tests.support import CLIENT_SVC, INTERNAL_SVC, ConnectStream, EndOfStream, dev_auth, eventually

TIMEOUT = 20.0


@pytest.fixture
def dsn(pg_database: tuple[PostgresCluster, str]) -> str:
    """A fresh database per test: no presence or rows left by another."""
    cluster, name = pg_database
    return cluster.dsn(name)


def start_replicas(dsn: str, count: int, **env: str) -> list[Replica]:
    settings = {
        "NOTIFY_STORE_DRIVER": "postgres",
        "NOTIFY_POSTGRES_DSN": dsn,
        "NOTIFY_SHUTDOWN_TIMEOUT": "5s",
        "NOTIFY_LIVE_HEARTBEAT_INTERVAL": "1h",  # streams carry only what the tests send
        "NOTIFY_BUS_PRESENCE_TTL": "3s",
        "NOTIFY_RATE_LIMIT_PRODUCER": "off",
        "NOTIFY_RATE_LIMIT_CLIENT": "off",
        "NOTIFY_RATE_LIMIT_RECIPIENTS": "off",
        **env,
    }
    return [Replica(Notifyd(**settings)) for _ in range(count)]


class Replica:
    def __init__(self, process: Notifyd) -> None:
        self.process = process
        started = process.wait_for_log("notify started")
        self.id: str = started["replica"]
        self.client = f"http://127.0.0.1:{started['client_port']}"
        self.client_port: int = started["client_port"]
        self.internal = f"http://127.0.0.1:{started['internal_port']}{INTERNAL_SVC}"
        self.metrics = f"http://127.0.0.1:{started['metrics_port']}"

    def metric(self, http: httpx.Client, name: str) -> float:
        for line in http.get(f"{self.metrics}/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no {name} on {self.id}")

    def stop(self) -> None:
        if self.process.proc.poll() is None:
            self.process.proc.send_signal(signal.SIGTERM)
            self.process.proc.wait(timeout=15)
        self.process.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT) as client:
        yield client


class Stream:
    """One StreamEvents call (Connect over HTTP/1.1, or gRPC), read by a thread into a queue.

    Items are ("n", notification_id, resume_token), ("d", idempotency_key, ""),
    or ("end", code, "") once the stream ends.
    """

    def __init__(
        self, replica: Replica, protocol: str, user: str, tenant: str, resume_token: str = ""
    ) -> None:
        self.protocol = protocol
        self.items: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self.last_token = resume_token
        request: dict[str, Any] = {"resumeToken": resume_token} if resume_token else {}
        self._closers: list[Callable[[], None]] = []
        handshake: queue.Queue[str] = queue.Queue()
        if protocol == "connect":
            client = httpx.Client(timeout=None)
            connect = ConnectStream(
                client, f"{replica.client}{CLIENT_SVC}/StreamEvents", dev_auth(user, tenant),
                request,
            )  # fmt: skip
            network = connect.response.extensions["network_stream"]

            def hang_up() -> None:
                # Unblocks the reading thread at once (closing alone may not).
                network.get_extra_info("socket").shutdown(socket.SHUT_RDWR)

            self._closers += [hang_up, connect.close, client.close]

            def read() -> dict[str, Any]:
                return connect.next()
        else:
            channel = grpc.insecure_channel(f"127.0.0.1:{replica.client_port}")
            call = notify_pb2_grpc.NotificationClientServiceStub(channel).StreamEvents(
                pb.StreamEventsRequest(resume_token=resume_token),
                metadata=[("authorization", f"Bearer dev:{user}:{tenant}")],
            )
            self._closers += [call.cancel, channel.close]

            def read() -> dict[str, Any]:
                from google.protobuf.json_format import MessageToDict

                return MessageToDict(next(call))

        def run() -> None:
            try:
                first = True
                while True:
                    event = read()
                    if first:
                        handshake.put(event["sessionId"])
                        first = False
                    if "notification" in event:
                        n = event["notification"]
                        self.items.put(("n", n["notification"]["notificationId"], n["resumeToken"]))
                    elif "dataChange" in event:
                        self.items.put(("d", event["dataChange"]["idempotencyKey"], ""))
            except EndOfStream as ended:
                self.items.put(("end", ended.code, ""))
            except grpc.RpcError as error:
                self.items.put(("end", str(error.code()), ""))  # type: ignore[attr-defined]
            except Exception as error:
                self.items.put(("end", type(error).__name__, ""))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self.session_id = handshake.get(timeout=TIMEOUT)

    def next(self) -> tuple[str, str, str]:
        item = self.items.get(timeout=TIMEOUT)
        if item[0] == "n":
            self.last_token = item[2]
        return item

    def notifications_until(self, marker: str) -> list[str]:
        """Every notification id up to and including ``marker``."""
        seen: list[str] = []
        while True:
            kind, value, _ = self.next()
            assert kind == "n", (kind, value, seen)
            seen.append(value)
            if value == marker:
                return seen

    def notifications_of(self, wanted: set[str]) -> list[str]:
        """Notification ids until every one of ``wanted`` arrived, in arrival order."""
        seen: list[str] = []
        while not wanted <= set(seen):
            kind, value, _ = self.next()
            assert kind == "n", (kind, value, seen)
            seen.append(value)
        return seen

    def close(self) -> None:
        for close in self._closers:
            with contextlib.suppress(Exception):
                close()
        self._thread.join(timeout=TIMEOUT)


def notify(
    http: httpx.Client, replica: Replica, notification_id: str, user: str = "alice",
    tenant: str = "acme",
) -> dict[str, Any]:  # fmt: skip
    response = http.post(
        f"{replica.internal}/Notify",
        json={
            "tenantId": tenant,
            "notificationId": notification_id,
            "userIds": [user],
            "channels": ["DELIVERY_CHANNEL_IN_APP"],
            "title": notification_id,
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def presence(dsn: str, tenant: str, user: str) -> set[str]:
    async def read() -> set[str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT replica_id FROM notify_presence WHERE tenant_id = $1 AND user_id = $2",
                tenant,
                user,
            )
        finally:
            await conn.close()
        return {r["replica_id"] for r in rows}

    return asyncio.run(read())


def wait_for_presence(dsn: str, replicas: list[Replica], tenant: str = "acme") -> None:
    """Streams count as watched once their replicas' presence rows are written."""
    wanted = {r.id for r in replicas}
    eventually(
        lambda: presence(dsn, tenant, "alice") >= wanted, timeout=TIMEOUT, what="presence rows"
    )


@pytest.fixture
def replicas(dsn: str) -> Iterator[list[Replica]]:
    # A generous reply bound: the wait ends as soon as every watching replica
    # answered, and a loaded CI machine must not turn a delivery into "pending".
    started = start_replicas(dsn, 3, NOTIFY_LIVE_RETRY_INTERVAL="1s",
                             NOTIFY_LIVE_RETRY_MAX_ATTEMPTS="1",
                             NOTIFY_BUS_REPLY_WAIT="2s")  # fmt: skip
    yield started
    for replica in started:
        replica.stop()


def open_streams(replicas: list[Replica]) -> list[Stream]:
    return [Stream(r, kind, "alice", "acme") for r in replicas for kind in ("connect", "grpc")]


def test_notify_on_any_replica_reaches_every_stream_once(
    replicas: list[Replica], dsn: str, http: httpx.Client
) -> None:
    streams = open_streams(replicas)
    other_tenant = Stream(replicas[0], "connect", "alice", "globex")
    try:
        wait_for_presence(dsn, replicas)
        for index, replica in enumerate(replicas):
            answer = notify(http, replica, f"n-{index}")
            assert answer == {"delivered": 1, "pending": 0, "failed": 0}
        # Exactly once each. The order across replicas is not promised: a Notify
        # answers as soon as a stream on any replica took the row, so the next
        # Notify, on another replica, can overtake it on the way to a third.
        for stream in streams:
            got = stream.notifications_of({"n-0", "n-1", "n-2"})
            assert sorted(got) == ["n-0", "n-1", "n-2"]
        # Nothing more arrived after them: the next thing each stream sees is this one.
        assert notify(http, replicas[1], "n-last")["delivered"] == 1
        for stream in streams:
            assert stream.notifications_until("n-last") == ["n-last"]
        # The same user id on another tenant got none of it.
        assert notify(http, replicas[2], "g-1", tenant="globex")["delivered"] == 1
        assert other_tenant.notifications_until("g-1") == ["g-1"]
        # Nobody watches this user anywhere: pending, at once.
        assert notify(http, replicas[0], "nobody", user="bob")["pending"] == 1
    finally:
        for stream in [*streams, other_tenant]:
            stream.close()


def test_data_change_hints_and_acks_cross_replicas(
    replicas: list[Replica], dsn: str, http: httpx.Client
) -> None:
    streams = open_streams(replicas)
    try:
        wait_for_presence(dsn, replicas)
        published = http.post(
            f"{replicas[0].internal}/PublishDataChange",
            json={"tenantId": "acme", "userIds": ["alice"], "idempotencyKey": "k-1",
                  "subjectRef": "task:1"},
        )  # fmt: skip
        assert published.json() == {"sessions": 6}
        for stream in streams:
            assert stream.next()[:2] == ("d", "k-1")
        # Acked through replica 1 for a session that lives on replica 2.
        acked_stream = streams[4]
        acked = http.post(
            f"{replicas[1].client}{CLIENT_SVC}/AckDataChange",
            headers=dev_auth("alice", "acme"),
            json={"idempotencyKey": "k-1", "sessionId": acked_stream.session_id},
        )
        assert acked.status_code == 200
        # Every other session is redelivered to once, on its own replica.
        for stream in streams:
            if stream is not acked_stream:
                assert stream.next()[:2] == ("d", "k-1")
        notify(http, replicas[0], "after-round")
        for stream in streams:
            assert stream.notifications_until("after-round") == ["after-round"]
        assert sum(r.metric(http, "notify_data_change_redeliveries_total") for r in replicas) == 5
    finally:
        for stream in streams:
            stream.close()


def test_a_killed_bus_connection_loses_nothing(
    replicas: list[Replica], dsn: str, http: httpx.Client
) -> None:
    streams = open_streams(replicas)
    victim = replicas[2]
    try:
        wait_for_presence(dsn, replicas)
        sent: list[str] = []
        done = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=TIMEOUT) as client:
                for i in range(300):
                    notify(client, replicas[i % 2], f"load-{i}")
                    sent.append(f"load-{i}")
            done.set()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(load)
            eventually(lambda: len(sent) >= 50, timeout=TIMEOUT, what="load under way")
            terminated = asyncio.run(terminate_listener(dsn, victim.id))
            assert terminated == 1
            future.result(timeout=60)
        eventually(
            lambda: victim.metric(http, "notify_bus_catch_ups_total") >= 1,
            timeout=TIMEOUT,
            what="the catch-up",
        )
        notify(http, replicas[0], "end")
        for stream in streams:
            got = stream.notifications_until("end")
            assert sorted(got[:-1]) == sorted(sent), stream.protocol
            assert len(got) == len(set(got))
        assert victim.metric(http, "notify_bus_reconnects_total") == 1
        assert victim.metric(http, "notify_bus_catch_ups_total") == 1
        assert http.get(f"{victim.metrics}/readyz").status_code == 200
    finally:
        for stream in streams:
            stream.close()


async def terminate_listener(dsn: str, replica_id: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                f"notify-bus-{replica_id}",
            )
        )
    finally:
        await conn.close()


def test_clients_of_a_killed_replica_resume_elsewhere_and_miss_nothing(
    replicas: list[Replica], dsn: str, http: httpx.Client
) -> None:
    streams = open_streams(replicas)
    victim = replicas[2]
    try:
        wait_for_presence(dsn, replicas)
        sent: list[str] = []

        def load() -> None:
            with httpx.Client(timeout=TIMEOUT) as client:
                for i in range(300):
                    notify(client, replicas[i % 2], f"load-{i}")
                    sent.append(f"load-{i}")

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(load)
            eventually(lambda: len(sent) >= 50, timeout=TIMEOUT, what="load under way")
            victim.process.proc.send_signal(signal.SIGKILL)
            victim.process.proc.wait(timeout=10)
            received: dict[str, list[str]] = {}
            for index, stream in enumerate(streams[4:]):
                got: list[str] = []
                while True:
                    kind, value, _ = stream.next()
                    if kind == "end":
                        break
                    got.append(value)
                received[stream.protocol] = got
                # Reconnect to a live replica with the last token seen.
                streams[4 + index] = Stream(
                    replicas[index], stream.protocol, "alice", "acme", stream.last_token
                )
                stream.close()
            future.result(timeout=60)
        notify(http, replicas[0], "end")
        for stream in streams[:4]:
            got = stream.notifications_until("end")
            assert sorted(got[:-1]) == sorted(sent)
        for stream in streams[4:]:
            got = received[stream.protocol] + stream.notifications_until("end")
            assert sorted(got[:-1]) == sorted(sent), stream.protocol
            assert len(got) == len(set(got)), stream.protocol
    finally:
        for stream in streams:
            stream.close()
