"""Delivery: emails/s and webhooks/s to local receivers, and what email costs Notify.

``email``/``pg_email`` and ``webhook``/``pg_webhook`` start a receiver on
127.0.0.1 in a thread of this process (aiosmtpd, or a small HTTP/1.1 server
answering 200), a notifyd configured to send to it (memory store, or a
throwaway PostgreSQL cluster), then Notify N users in calls of 500 and time
from the first call until the receiver has N distinct Message-IDs /
webhook-ids: the dispatcher's end-to-end rate, outbox claim, send and record
included. ``email_cost`` measures Notify req/s (32 keep-alive connections,
one user per call, closed loop) with channels [in-app] and then [in-app,
email] on one notifyd without an email provider, so the second pays exactly
the outbox write and nothing is sent meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bench import h1
from bench.measurements import Figure, Report, Settings, with_server
from bench.pgcluster import database
from bench.server import Notifyd, cpu_meter
from bench.wrk import NOTIFY_PATH

WEBHOOK_SECRET = "whsec_YmVuY2ggd2ViaG9vayBzZWNyZXQgb2YgMzIgYnl0ZXMh"
BATCH = 500
WAIT_S = 300.0


class _Receiver:
    """Counts distinct message ids; ``done`` is set once ``wanted`` have arrived."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.total = 0
        self.wanted = 0
        self.done = threading.Event()
        self.port = 0

    def got(self, message_id: str) -> None:
        self.total += 1
        self.ids.add(message_id)
        if self.wanted and len(self.ids) >= self.wanted:
            self.done.set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        for line in content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.got(line.split(b":", 1)[1].strip().decode())
                break
        return "250 OK"

    async def handle_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.got(headers.get("webhook-id", ""))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()


@contextlib.contextmanager
def _receiver(kind: str) -> Iterator[_Receiver]:
    """The receiver on its own event loop in a thread, so it never waits for the bench."""
    receiver = _Receiver()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        if kind == "email":
            server = await loop.create_server(lambda: SMTP(receiver), "127.0.0.1", 0)
        else:
            server = await asyncio.start_server(receiver.handle_http, "127.0.0.1", 0)
        receiver.port = server.sockets[0].getsockname()[1]
        ready.set()
        await stop.wait()
        server.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield receiver
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def _env(kind: str, port: int) -> dict[str, str]:
    if kind == "email":
        return {
            "NOTIFY_EMAIL_SMTP_URL": f"smtp://127.0.0.1:{port}",
            "NOTIFY_EMAIL_FROM": "bench@example.com",
        }
    return {"NOTIFY_WEBHOOK_SECRET": WEBHOOK_SECRET, "NOTIFY_WEBHOOK_ALLOW_PRIVATE": "true"}


async def _notify_batches(server: Notifyd, kind: str, port: int, count: int) -> None:
    conn = h1.Connection("127.0.0.1", server.ports.internal)
    channel = "DELIVERY_CHANNEL_EMAIL" if kind == "email" else "DELIVERY_CHANNEL_WEBHOOK"
    try:
        for start in range(0, count, BATCH):
            users = [f"user-{i}" for i in range(start, min(count, start + BATCH))]
            payload = {
                "tenantId": "bench",
                "notificationId": f"{kind}-{start}",
                "userIds": users,
                "channels": [channel],
                "title": "Build finished",
                "body": "Your build finished; open it to see the test report.",
                "addresses": {u: {"byChannel": {kind: _address(kind, port, u)}} for u in users},
            }
            response = await conn.post_json(NOTIFY_PATH, payload, {})
            if response.status != 200:
                raise RuntimeError(f"Notify answered {response.status}: {response.body[:200]!r}")
    finally:
        await conn.close()


def _address(kind: str, port: int, user: str) -> str:
    return f"{user}@example.com" if kind == "email" else f"http://127.0.0.1:{port}/{user}"


def _throughput(settings: Settings, kind: str, pg: bool) -> Report:
    count = 300 if settings.quick else 3000
    unit = "emails/s" if kind == "email" else "webhooks/s"
    name = f"{'pg_' if pg else ''}{kind}"
    where = "PostgreSQL (fsync on)" if pg else "memory store"
    report = Report(name, f"{kind} delivery to a local receiver, {where}")
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if pg:
            db = stack.enter_context(database())
            env.update(db.env)
        receiver = stack.enter_context(_receiver(kind))
        receiver.wanted = count
        env.update(_env(kind, receiver.port))

        def body(server: Notifyd) -> None:
            started = time.monotonic()
            with cpu_meter(server.pid) as cpu:
                asyncio.run(_notify_batches(server, kind, receiver.port, count))
                accepted = time.monotonic() - started
                arrived = receiver.done.wait(WAIT_S)
            elapsed = time.monotonic() - started
            store = "PostgreSQL" if pg else "memory"
            report.figures.append(Figure(f"{kind} to receiver, {store}", count / elapsed, unit))
            report.details.append(
                f"{count:,} rows in {-(-count // BATCH)} Notify calls of up to {BATCH} users, "
                f"accepted in {accepted:.2f} s; all received after {elapsed:.2f} s "
                f"(default NOTIFY_DELIVERY_CONCURRENCY, 16 sends in flight); notifyd used "
                f"{cpu.cores:.2f} cores ({cpu.user_cores:.2f} user), the machine "
                f"{cpu.machine_cores:.2f}"
            )
            delivered = server.metric_sum(
                "notify_delivery_sends_total", provider=kind, outcome="delivered"
            )
            report.check(f"every row arrived ({len(receiver.ids):,} of {count:,})", arrived)
            report.check(
                f"no message arrived twice ({receiver.total:,} received)",
                receiver.total == len(receiver.ids),
            )
            report.check(
                f"notify_delivery_sends_total delivered = {int(delivered):,}",
                delivered >= len(receiver.ids) - 16,
            )

        return with_server(settings, report, body, env=env)
    return report


def email(settings: Settings) -> Report:
    return _throughput(settings, "email", pg=False)


def pg_email(settings: Settings) -> Report:
    return _throughput(settings, "email", pg=True)


def webhook(settings: Settings) -> Report:
    return _throughput(settings, "webhook", pg=False)


def pg_webhook(settings: Settings) -> Report:
    return _throughput(settings, "webhook", pg=True)


async def _closed_loop(server: Notifyd, channels: list[str], tag: str, seconds: float) -> int:
    stop_at = time.monotonic() + seconds
    done = 0

    async def worker(index: int) -> None:
        nonlocal done
        conn = h1.Connection("127.0.0.1", server.ports.internal)
        n = 0
        try:
            while time.monotonic() < stop_at:
                n += 1
                user = f"user-{(index * 7919 + n) % 1000}"
                payload: dict[str, Any] = {
                    "tenantId": "bench",
                    "notificationId": f"{tag}-{index}-{n}",
                    "userIds": [user],
                    "channels": channels,
                    "title": "Build finished",
                    "body": "ok",
                    "addresses": {user: {"byChannel": {"email": f"{user}@example.com"}}},
                }
                response = await conn.post_json(NOTIFY_PATH, payload, {})
                if response.status != 200:
                    raise RuntimeError(f"Notify answered {response.status}")
                done += 1
        finally:
            await conn.close()

    await asyncio.gather(*(worker(i) for i in range(32)))
    return done


def email_cost(settings: Settings) -> Report:
    return _email_cost(settings, pg=False)


def pg_email_cost(settings: Settings) -> Report:
    with database() as db:
        return _email_cost(settings, pg=True, env=db.env)


def _email_cost(settings: Settings, *, pg: bool, env: dict[str, str] | None = None) -> Report:
    name = "pg_email_cost" if pg else "email_cost"
    where = "PostgreSQL" if pg else "memory"
    report = Report(name, f"Notify req/s on {where}: in-app only vs in-app + email (outbox write)")
    seconds = settings.duration_s
    rounds = 1 if settings.quick else 3

    def body(server: Notifyd) -> None:
        rates: dict[str, list[float]] = {"in-app": [], "in-app + email": []}
        asyncio.run(_closed_loop(server, ["DELIVERY_CHANNEL_IN_APP"], "warm", settings.warmup_s))
        for r in range(rounds):  # alternated, so drift hits both alike
            for label, channels in (
                ("in-app", ["DELIVERY_CHANNEL_IN_APP"]),
                ("in-app + email", ["DELIVERY_CHANNEL_IN_APP", "DELIVERY_CHANNEL_EMAIL"]),
            ):
                tag = f"{'e' if len(channels) > 1 else 'a'}{r}"  # new ids: no call is a retry
                done = asyncio.run(_closed_loop(server, channels, tag, seconds))
                rates[label].append(done / seconds)
        plain = statistics.median(rates["in-app"])
        with_email = statistics.median(rates["in-app + email"])
        report.figures.append(Figure(f"Notify ({where}), in-app only", plain, "req/s"))
        report.figures.append(Figure(f"Notify ({where}), in-app + email", with_email, "req/s"))
        report.details.append(
            f"32 connections, 1 user per call, {rounds} alternated round(s) of {seconds} s each "
            f"(median shown); email costs {100 * (1 - with_email / plain):.1f} % of Notify "
            "throughput (one more row and its outbox entry per call); rounds: "
            + "; ".join(f"{k} " + ", ".join(f"{v:,.0f}" for v in rates[k]) for k in rates)
        )
        calls = sum(round(rate * seconds) for runs in rates.values() for rate in runs)
        stored = server.metric_sum("notify_notifications_stored_total", channel="in_app")
        report.check(
            f"every measured call stored a new in-app row: {int(stored):,} rows "
            f"(warm-up included) for {calls:,} calls",
            stored >= calls,
        )

    # No email provider: the rows and their outbox entries are written, nothing is sent.
    return with_server(settings, report, body, env=env)
