"""A Notify's NotificationsCreated goes out in the store's commit, once, on a real PostgreSQL.

A LISTEN connection of the test's own, on the bus channel, decodes what a
notifyd sends. The announcement arrives once (the bus's sender does not
repeat it), its rows are already readable when it arrives, and what the
sender sends after the write (the counts, a data-change hint used as a
marker) comes after it. It needs no sender at all: it is the store's
connection that sends it. A retried Notify announces nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
import uuid

import asyncpg
import httpx
import pytest

from notify.core.events import BusEvent, DataChangeAcked, DataChangePublished, InboxChanged
from notify.realtime.buscodec import (
    REGISTRY,
    Announced,
    Decoded,
    Reassembler,
    parse_header,
    payloads,
)
from notify.realtime.pgbus import CHANNEL, PgBus
from tests.pg import PostgresCluster
from tests.support import ConnectStream, ServerThread, dev_auth, postgres_replica


@dataclasses.dataclass(frozen=True)
class Heard:
    sender: str
    event: Decoded
    # For an announcement: which of its rows another connection could read on arrival.
    readable: frozenset[str] = frozenset()


class BusListener:
    """LISTENs on the bus channel from a thread of its own; ``heard`` gets every event."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.heard: queue.Queue[Heard] = queue.Queue()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),))

    def __enter__(self) -> BusListener:
        self._thread.start()
        assert self._ready.wait(10), "the listener did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        payloads: asyncio.Queue[str] = asyncio.Queue()
        listen = await asyncpg.connect(self._dsn)
        reader = await asyncpg.connect(self._dsn)
        try:
            await listen.add_listener(CHANNEL, lambda *args: payloads.put_nowait(args[3]))
            self._ready.set()
            reassembler = Reassembler()
            stopping = asyncio.create_task(self._stop.wait())
            while True:
                getting = asyncio.create_task(payloads.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    return
                header, body = parse_header(getting.result())
                text = reassembler.add(header, body)
                if text is None:
                    continue
                event = REGISTRY.decode(text)
                readable: frozenset[str] = frozenset()
                if isinstance(event, Announced):
                    ids = [uuid.UUID(r.row_id) for r in event.refs]
                    found = await reader.fetch(
                        "SELECT id::text FROM notifications WHERE id = ANY($1::uuid[])", ids
                    )
                    readable = frozenset(r[0] for r in found)
                self.heard.put(Heard(header.sender, event, readable))
        finally:
            await listen.close()
            await reader.close()

    def mark(self) -> None:
        """Sends a marker of the test's own (sender "test"): a harmless DataChangeAcked."""
        text = REGISTRY.encode(DataChangeAcked("acme", "nobody", "no-session", "marker"))
        (payload,) = payloads(text, sender="test", seq=1, to="")

        async def send() -> None:
            conn = await asyncpg.connect(self._dsn)
            try:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            finally:
                await conn.close()

        asyncio.run(send())

    def until(self, marker: type[BusEvent], sender: str) -> list[Heard]:
        """Everything heard up to and including the first ``marker`` from ``sender``."""
        found: list[Heard] = []
        while True:
            heard = self.heard.get(timeout=20)
            found.append(heard)
            if heard.sender == sender and isinstance(heard.event, marker):
                return found


def notify(http: httpx.Client, server: ServerThread, name: str, *users: str) -> dict[str, int]:
    response = http.post(
        server.internal_url(),
        json={"tenantId": "acme", "notificationId": name, "userIds": list(users),
              "channels": ["DELIVERY_CHANNEL_IN_APP"], "title": name},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def marker(http: httpx.Client, server: ServerThread, key: str) -> None:
    """A data-change hint: it goes through the bus's sender, after everything before it."""
    response = http.post(
        server.internal_url("PublishDataChange"),
        json={"tenantId": "acme", "userIds": ["nobody"], "idempotencyKey": key,
              "subjectRef": "task:1"},
    )  # fmt: skip
    assert response.status_code == 200, response.text


def replica_id(server: ServerThread) -> str:
    assert server.server is not None
    return server.server.bus.replica_id


def test_a_notify_is_announced_once_in_its_commit_before_what_the_sender_sends(
    pg_database: tuple[PostgresCluster, str],
) -> None:
    cluster, name = pg_database
    server = postgres_replica(cluster, name)
    http = httpx.Client(timeout=20)
    stream = ConnectStream(http, server.client_url("StreamEvents"), dev_auth("alice", "acme"), {})
    try:
        with BusListener(cluster.dsn(name)) as bus:
            stream.next()  # the handshake: alice is live here
            me = replica_id(server)
            assert notify(http, server, "n-1", "alice", "bob") == {
                "delivered": 1, "pending": 1, "failed": 0,
            }  # fmt: skip
            marker(http, server, "after-n-1")
            heard = bus.until(DataChangePublished, me)
        announced = [h for h in heard if isinstance(h.event, Announced)]
        assert len(announced) == 1  # once: the sender did not send it again
        (created,) = announced
        assert created.sender == me
        assert isinstance(created.event, Announced)
        ids = {r.row_id for r in created.event.refs}
        assert {(r.tenant_id, r.user_id) for r in created.event.refs} == {
            ("acme", "alice"), ("acme", "bob"),
        }  # fmt: skip
        assert created.readable == ids  # committed before it was heard
        # The counts the sender told after the write come after the announcement.
        kinds = [type(h.event) for h in heard if h.sender == me]
        assert kinds == [Announced, InboxChanged, DataChangePublished]
    finally:
        stream.close()
        http.close()
        server.stop()


def test_a_retried_notify_announces_nothing(pg_database: tuple[PostgresCluster, str]) -> None:
    cluster, name = pg_database
    server = postgres_replica(cluster, name)
    http = httpx.Client(timeout=20)
    try:
        with BusListener(cluster.dsn(name)) as bus:
            me = replica_id(server)
            assert notify(http, server, "n-1", "alice")["pending"] == 1
            marker(http, server, "first")
            first = bus.until(DataChangePublished, me)
            assert [type(h.event) for h in first] == [Announced, DataChangePublished]
            assert notify(http, server, "n-1", "alice")["pending"] == 1  # the same row again
            marker(http, server, "retry")
            assert [type(h.event) for h in bus.until(DataChangePublished, me)] == [
                DataChangePublished
            ]
    finally:
        http.close()
        server.stop()


def test_the_announcement_comes_with_the_commit_not_from_the_sender(
    pg_database: tuple[PostgresCluster, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, name = pg_database
    server = postgres_replica(cluster, name)
    assert server.server is not None
    bus = server.server.bus
    assert isinstance(bus, PgBus)
    handed_to_sender: list[str] = []

    async def cut_off(batch: list[str]) -> None:
        handed_to_sender.extend(batch)  # and never sent

    monkeypatch.setattr(bus, "_send", cut_off)
    http = httpx.Client(timeout=20)
    try:
        with BusListener(cluster.dsn(name)) as listener:
            assert notify(http, server, "n-1", "alice")["pending"] == 1
            listener.mark()
            heard = listener.until(DataChangeAcked, "test")
        assert [(h.sender, type(h.event)) for h in heard] == [
            (bus.replica_id, Announced),
            ("test", DataChangeAcked),
        ]
        assert not [p for p in handed_to_sender if "NotificationsCreated" in p]
    finally:
        http.close()
        server.stop()
